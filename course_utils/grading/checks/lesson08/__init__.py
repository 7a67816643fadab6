"""Checks of lesson 08, knowledge distillation: one question per ``question(...)``.

Reference oracles: the definitions, in float64 NumPy (the softmax at a temperature, the
loss of Hinton, Vinyals & Dean 2015), PyTorch's autograd of the same loss written with
``torch.nn.functional`` (the gradients), reference training steps with PyTorch's
optimizers, and a copy of the teacher in eval mode run in one forward. None of them
uses the lesson's library (``course_utils.lessons.distill``): the tests check that the
oracles agree with it.

Each question has core cases (the values against the oracle on several inputs: only they
earn credit), property cases and mistake cases. A mistake case recognises one typical
mistake by what it computes and names it in its message and hint; a wrong answer that is
not that mistake fails the case plainly (a basic failure: no hint that blames the wrong
thing).

One module per question; importing them in this order registers the questions in the
order of the exercise notebook.
"""
from . import softmax_temperature  # noqa: F401
from . import distillation_loss  # noqa: F401
from . import distillation_grad  # noqa: F401
from . import logit_matching_limit  # noqa: F401
from . import teacher_logits  # noqa: F401
from . import distill_step  # noqa: F401
from . import class_bias  # noqa: F401
from . import seeds_needed  # noqa: F401
from ._common import (NOT_JUDGED, autograd_grad, labels, logits,  # noqa: F401,E402
                      reference_loss, softmax, torch_loss)
from .class_bias import (errors, inputs as bias_inputs,  # noqa: F401,E402
                         mistaken_biases, reference_bias)
from .distill_step import OPTIMIZERS, batches, reference_run  # noqa: F401,E402
from .distillation_grad import mistaken_grad  # noqa: F401,E402
from .distillation_loss import mistaken_loss  # noqa: F401,E402
from .logit_matching_limit import (exact_gradient, mistaken_limit,  # noqa: F401,E402
                                   reference_limit)
from .seeds_needed import PILOTS, mistaken_seeds, reference_seeds  # noqa: F401,E402
from .teacher_logits import cnn_teacher, mlp_teacher, reference_logits  # noqa: F401,E402
