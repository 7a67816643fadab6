"""Checks of lesson 03, convolutional networks: one question per ``question(...)``.

Reference oracles: ``torch.nn.functional`` (conv2d, max_pool2d: called here, never in
the learner's call), ``torch.nn.Conv2d`` output sizes, the spec models built here
(their weights are copied into the learner's model and the logits compared), a
reference training step on the same optimizer, and Keras itself.

Each question has core cases (the values against the oracle on several inputs: only
they earn credit), property cases and mistake cases. A mistake case first checks the
same setting without the detail it looks for (its control); when the answer is
already wrong there, the case says that it cannot judge yet (a basic failure: its
hint, which names one mistake, is not shown).

One module per question; importing them in this order registers the questions in the
order of the lesson's notebook.
"""
from . import conv_output_size  # noqa: F401
from . import conv2d_forward  # noqa: F401
from . import maxpool_forward  # noqa: F401
from . import build_model  # noqa: F401
from . import train_step  # noqa: F401
from . import fix_flatten  # noqa: F401
from . import keras_model  # noqa: F401
from ._common import NOT_JUDGED  # noqa: F401,E402 - used by the tests of these checks
from .build_model import reference_build_model  # noqa: F401,E402
from .fix_flatten import reference_fixed_net  # noqa: F401,E402
