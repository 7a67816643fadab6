"""Checks of lesson 01 (gradient descent): one question per ``q = question(...)``.

Every question asks for a step the lesson explained but did not code: a rate read off
the data's Hessian, the two schedules of seed 001 written correctly, a batch size chosen
from the noise of the per-example gradients, a PyTorch training step, Adam from its
definition and Nesterov momentum in Sutskever's form. The reference answers are
written in the check modules (or are PyTorch itself: the schedulers,
``torch.optim.Adam``, ``SGD(nesterov=True)``). Core cases compare the answer's values
with the reference on one input each (only they earn credit); a mistake case recognises
one typical mistake, fails only when the answer shows it, and its hint names it;
property cases check the shape, the type and that inputs are left alone.

One module per question; importing them in this order registers the questions in the
order of the exercise notebook, from warm-up to hard.
"""
from . import max_stable_lr  # noqa: F401
from . import exponential_schedule  # noqa: F401
from . import multistep_decay  # noqa: F401
from . import batch_size_for_noise  # noqa: F401
from . import torch_train  # noqa: F401
from . import adam_step  # noqa: F401
from . import nesterov_step  # noqa: F401
