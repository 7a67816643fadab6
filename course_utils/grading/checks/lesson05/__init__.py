"""Checks of lesson 05, self-attention and the Transformer: one question per
``question(...)``.

Reference oracles: PyTorch itself (``F.scaled_dot_product_attention`` with a bool mask,
a float mask, ``is_causal`` and ``enable_gqa``; ``nn.MultiheadAttention`` with copied
weights; complex multiplication for the paper's rotary embeddings; ``sum(p.numel())`` of
a model built on the meta device), ``torch.autograd`` in float64 for the backward of
attention, the slopes of Press et al. (2022) for ALiBi, and the full recomputation of a
model for the key-value cache. None of them uses the lesson's library
(``course_utils.lessons.attention``): the checks do not depend on the code the lesson
teaches.

Each question has core cases (the values against the oracle on several inputs: only they
earn credit), property cases and mistake cases. A mistake case recognises one typical
mistake by what it computes and names it in its message and hint; a wrong answer that is
not that mistake fails the case plainly (a basic failure: no hint that blames the wrong
thing), or the case says that it cannot judge yet.

One module per question; importing them in this order registers the questions in the
order of the exercise notebook.
"""
from . import causal_padding_mask  # noqa: F401
from . import alibi_bias  # noqa: F401
from . import padded_attention  # noqa: F401
from . import llama_parameter_count  # noqa: F401
from . import rope_half_layout  # noqa: F401
from . import grouped_query_attention  # noqa: F401
from . import kv_cache_step  # noqa: F401
from . import attention_backward  # noqa: F401
from ._common import NOT_JUDGED  # noqa: F401,E402 - used by the tests of these checks
from .alibi_bias import mistaken_alibi_bias, reference_alibi_bias  # noqa: F401,E402
from .attention_backward import (mistaken_attention_backward,  # noqa: F401,E402
                                 reference_attention_backward)
from .causal_padding_mask import (mistaken_causal_padding_mask,  # noqa: F401,E402
                                  reference_causal_padding_mask)
from .grouped_query_attention import (mha_reference, mistaken_gqa,  # noqa: F401,E402
                                      reference_grouped_query_attention)
from .kv_cache_step import (TinyAttentionLM,  # noqa: F401,E402
                            reference_kv_cache_step)
from .llama_parameter_count import (Llama, mistaken_count,  # noqa: F401,E402
                                    reference_llama_parameter_count)
from .padded_attention import (mistaken_padded_attention,  # noqa: F401,E402
                               reference_padded_attention)
from .rope_half_layout import (mistaken_rope_half_layout,  # noqa: F401,E402
                               reference_rope_half_layout, rope_half, rope_pairs)
