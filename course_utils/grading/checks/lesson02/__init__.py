"""Checks of lesson 02 (backpropagation): the scalar engine and matrix-form backward.

The oracles are ``course_utils.lessons.autograd`` and
``course_utils.lessons.mlp_numpy``, the code the lesson teaches, ``torch.autograd`` (for
the matrix-form backward passes) and values worked out by hand. Each question has three
kinds of case:

- core: the answer's values against the oracle, on inputs that differ from case to case
  (sizes, seeds, steps); only these earn credit, and no answer that computes nothing
  passes one;
- mistake: one typical mistake, recognised by what it computes (the answer equals the
  mistake's value); its hint names that mistake. A wrong value that is not that mistake
  still fails the case, as a plain mismatch without the hint (a basic failure), so no
  hint blames the wrong thing;
- property: structure and shapes, inputs left unchanged.

One module per question; importing them in this order registers the questions in the
order of the lesson's notebook.
"""
from . import value_truediv  # noqa: F401
from . import value_softplus  # noqa: F401
from . import tanh_layer_backward  # noqa: F401
from . import smoothed_cross_entropy  # noqa: F401
from . import directional_check  # noqa: F401
from . import train_mlp  # noqa: F401
from . import train_moons  # noqa: F401
from . import batchnorm_backward  # noqa: F401
