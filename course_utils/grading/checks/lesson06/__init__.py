"""Checks of lesson 06, transfer learning and fine-tuning: one question per
``question(...)``.

Reference oracles: the definitions, computed in float64 and tested against the libraries
that implement them (sentence-transformers' Pooling, scikit-learn's accuracy_score and
f1_score, transformers' get_linear_schedule_with_warmup, peft's LoRA layers, its
merge_and_unload and its count of trainable parameters), on tiny BERTs built from a
``transformers`` BertConfig with seeded random weights (nothing is downloaded). None of
them uses the lesson's library (``course_utils.lessons.finetune``): the checks do not
depend on the code the lesson teaches.

Each question has core cases (the values against the oracle on several inputs: only they
earn credit), property cases and mistake cases. A mistake case recognises one typical
mistake by what it computes and names it in its message and hint; a wrong answer that is
not that mistake fails the case plainly (a basic failure: no hint that blames the wrong
thing), or the case says that it cannot judge yet.

One module per question; importing them in this order registers the questions in the
order of the exercise notebook.
"""
from . import mean_max_pool  # noqa: F401
from . import accuracy_f1  # noqa: F401
from . import freeze_except  # noqa: F401
from . import warmup_linear_decay  # noqa: F401
from . import lora_merge  # noqa: F401
from . import layerwise_lr_optimizer  # noqa: F401
from . import layer_drift  # noqa: F401
from . import lora_trainable_share  # noqa: F401
from . import inject_lora  # noqa: F401
from ._common import (NOT_JUDGED, bert_config, tiny_bert,  # noqa: F401,E402
                      tiny_classifier)
from .accuracy_f1 import reference_accuracy_f1  # noqa: F401,E402
from .freeze_except import reference_count, reference_flags  # noqa: F401,E402
from .inject_lora import inspect, lora_parameter_count, target_names  # noqa: F401,E402
from .layer_drift import (encoders, mistaken_layer_drift,  # noqa: F401,E402
                          reference_layer_drift)
from .layerwise_lr_optimizer import settings  # noqa: F401,E402
from .lora_merge import reference_lora_output  # noqa: F401,E402
from .lora_trainable_share import (bert_parameters,  # noqa: F401,E402
                                   reference_lora_trainable_share)
from .mean_max_pool import reference_mean_max_pool  # noqa: F401,E402
from .warmup_linear_decay import (hugging_face_rates,  # noqa: F401,E402
                                  reference_factor, reference_rates)
