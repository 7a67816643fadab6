"""Checks of lesson 07, quantization: one question per ``question(...)``.

Reference oracles: the definitions, computed in integers or in float64 and tested
against the libraries that implement them (PyTorch's PerChannelMinMaxObserver and
quantize_per_channel, fuse_conv_bn_eval, oneDNN's quantized linear,
_fake_quantize_learnable_per_tensor_affine, SciPy's numerical integration), on small
seeded tensors and modules (nothing is downloaded). None of them uses the lesson's
library (``course_utils.lessons.quant``): the checks do not depend on the code the
lesson teaches.

Each question has core cases (the values against the oracle on several inputs: only they
earn credit), property cases and mistake cases. A mistake case recognises one typical
mistake by what it computes and names it in its message and hint; a wrong answer that is
not that mistake fails the case plainly (a basic failure: no hint that blames the wrong
thing), or the case says that it cannot judge yet.

One module per question; importing them in this order registers the questions in the
order of the exercise notebook.
"""
from . import quantized_size  # noqa: F401
from . import per_channel_qparams  # noqa: F401
from . import pack_int4  # noqa: F401
from . import clipped_gaussian_mse  # noqa: F401
from . import fold_batchnorm  # noqa: F401
from . import int8_linear_zero_point  # noqa: F401
from . import fixed_point_requant  # noqa: F401
from . import lsq_fake_quant  # noqa: F401
from ._common import NOT_JUDGED, watching  # noqa: F401,E402
from .clipped_gaussian_mse import (clipping_error, mistaken_mse,  # noqa: F401,E402
                                   reference_mse)
from .fixed_point_requant import (accumulators, float_requant,  # noqa: F401,E402
                                  quantize_multiplier, reference_requant)
from .fold_batchnorm import images, layers  # noqa: F401,E402
from .fold_batchnorm import reference_output as fold_reference  # noqa: F401,E402
from .int8_linear_zero_point import (cancelling_inputs,  # noqa: F401,E402
                                     layer_inputs, reference_accumulator)
from .int8_linear_zero_point import (  # noqa: F401,E402
    reference_output as int8_reference)
from .lsq_fake_quant import reference_lsq, values  # noqa: F401,E402
from .pack_int4 import int4_values, reference_pack, reference_unpack  # noqa: F401,E402
from .per_channel_qparams import reference_qparams, weights  # noqa: F401,E402
from .quantized_size import (block, cnn, mistaken_sizes, mlp,  # noqa: F401,E402
                             reference_quantized_size)
