"""Checks of lesson 01 (gradient descent): one question per ``q = question(...)``.

The reference answers are ``course_utils.lessons.optim`` (the code the lesson teaches) and, for
the PyTorch step, a reference step with the same optimizer. Core cases compare the
answer's values with the reference on one input each (only they earn credit); a mistake
case recognises one typical mistake, fails only when the answer shows it, and its hint
names it; property cases check the shape, the type and that inputs are left alone.

One module per question; importing them in this order registers the questions in the
order of the lesson's notebook.
"""
from . import mse_gradient  # noqa: F401
from . import gd_step  # noqa: F401
from . import gradient_descent  # noqa: F401
from . import logistic_gradient  # noqa: F401
from . import exponential_decay  # noqa: F401
from . import step_decay  # noqa: F401
from . import cosine_warmup  # noqa: F401
from . import momentum_step  # noqa: F401
from . import torch_train  # noqa: F401
