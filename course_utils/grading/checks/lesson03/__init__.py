"""Checks of lesson 03, convolutional networks: one question per ``question(...)``.

Reference oracles: PyTorch's own ``padding="same"`` and TensorFlow's documented rule
(itself tested against Keras), the receptive-field recursion
(itself tested against autograd), autograd through ``F.conv2d`` (called here, never in
the learner's call), the spec models built here (their weights are copied into the
learner's model and the logits compared), a reference training step on the same
optimizer, and Keras itself.

Each question has core cases (the values against the oracle on several inputs: only
they earn credit), property cases and mistake cases. A mistake case first checks the
same setting without the detail it looks for (its control); when the answer is
already wrong there, the case says that it cannot judge yet (a basic failure: its
hint, which names one mistake, is not shown).

One module per question; importing them in this order registers the questions in the
order of the lesson's notebook.
"""
from . import same_padding  # noqa: F401
from . import receptive_field  # noqa: F401
from . import build_model  # noqa: F401
from . import train_step  # noqa: F401
from . import keras_model  # noqa: F401
from . import build_resnet  # noqa: F401
from . import conv2d_backward  # noqa: F401
from ._common import NOT_JUDGED  # noqa: F401,E402 - used by the tests of these checks
from .build_model import reference_build_model  # noqa: F401,E402
from .build_resnet import reference_build_resnet  # noqa: F401,E402
from .conv2d_backward import reference_conv2d_backward  # noqa: F401,E402
from .receptive_field import reference_receptive_field  # noqa: F401,E402
from .same_padding import reference_same_padding  # noqa: F401,E402
