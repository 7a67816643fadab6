"""Checks of lesson 04, recurrent networks: one question per ``question(...)``.

Reference oracles: PyTorch itself (``F.cross_entropy``,
``torch.nn.utils.clip_grad_norm_``, ``torch.multinomial`` with the same generator,
``nn.LSTMCell`` and ``nn.LSTM`` with copied weights), ``torch.autograd`` in float64 for
the backward through time, models counted on seeded synthetic text, and a reference
training step on the same optimizer. None of them uses the lesson's library
(``course_utils.lessons.rnn``): the checks do not depend on the code the lesson teaches.

Each question has core cases (the values against the oracle on several inputs: only they
earn credit), property cases and mistake cases. A mistake case recognises one typical
mistake by what it computes and names it in its message and hint; a wrong answer that is
not that mistake fails the case plainly (a basic failure: no hint that blames the wrong
thing), or the case says that it cannot judge yet.

One module per question; importing them in this order registers the questions in the
order of the exercise notebook.
"""
from . import masked_perplexity  # noqa: F401
from . import interpolated_bigram  # noqa: F401
from . import clip_global_norm  # noqa: F401
from . import sample_top_p  # noqa: F401
from . import lstm_forget_bias  # noqa: F401
from . import lstm_cell  # noqa: F401
from . import rnn_last_step_bptt  # noqa: F401
from . import lstm_tbptt_step  # noqa: F401
from ._common import NOT_JUDGED  # noqa: F401,E402 - used by the tests of these checks
from .clip_global_norm import reference_clip_global_norm  # noqa: F401,E402
from .interpolated_bigram import (markov_text,  # noqa: F401,E402
                                  reference_interpolated_bigram)
from .lstm_cell import reference_lstm_cell  # noqa: F401,E402
from .lstm_tbptt_step import CharLSTM, reference_step  # noqa: F401,E402
from .masked_perplexity import reference_masked_perplexity  # noqa: F401,E402
from .rnn_last_step_bptt import reference_rnn_last_step_bptt  # noqa: F401,E402
from .sample_top_p import nucleus, reference_sample_top_p  # noqa: F401,E402
