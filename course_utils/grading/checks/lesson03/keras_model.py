"""Checks of 03.keras_model: The same model in Keras."""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from ...asserts import (CheckFailure, call, expect_close, expect_equal,
                        expect_parameter_count, expect_shape)
from ...registry import question
from ...runner import clean_text, learner_line
from ._common import _randn, _randomize_norms
from .build_model import reference_build_model


q = question("03.keras_model", "The same model in Keras", answers=["build_keras_model"],
             timeout=40)

# The spec's layers as operations: layers.ReLU(), layers.Activation("relu") and an
# activation="relu" argument all read as "ReLU" (see _keras_ops).
KERAS_LAYERS = ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Conv2D",
                "BatchNormalization", "ReLU", "MaxPooling2D", "Flatten", "Dropout",
                "Dense"]
_ACTIVATIONS = {"relu": "ReLU", "softmax": "Softmax", "sigmoid": "Sigmoid",
                "tanh": "Tanh"}
KERAS_BATCH = 4  # every forward pass uses this batch size: a Keras error reads the same


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def _keras_error(exc: BaseException) -> str:
    """A Keras or TensorFlow error as a short text that reads the same in every case:
    no colour codes, no "Arguments received by" dump, no numbered names
    (keras_tensor_12)."""
    text = clean_text(str(exc), 3000).split("Arguments received by")[0]
    return clean_text(re.sub(r"keras_tensor_\d+", "keras_tensor", text), 600)


def _keras_built(build_keras_model, **kw):
    """The learner's Keras model, or a basic failure (the same text in every case)."""
    keras = _keras()
    keras.utils.set_random_seed(0)
    try:
        model = call(build_keras_model, **kw)
    except (CheckFailure, NotImplementedError):
        raise
    except Exception as exc:  # Keras finds a wrong layer argument or shape on building
        where = learner_line(exc)
        raise CheckFailure(f"It raised {type(exc).__name__}: {_keras_error(exc)}"
                           + (f"\nat {where}" if where else ""), basic=True) from None
    what = f"build_keras_model({', '.join(f'{k}={v}' for k, v in kw.items())})"
    if model is None:
        raise CheckFailure(f"{what} returned None: return the model you build (is "
                           "there a `return`?).", basic=True)
    if not isinstance(model, keras.Model):
        raise CheckFailure(f"{what} should return a keras.Model (Sequential or "
                           f"functional), got a {type(model).__name__}.", basic=True)
    return model


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return _ACTIVATIONS.get(name.lower(), f"Activation({name})")


def _keras_ops(model) -> list[str]:
    """The model's layers as operations: an activation layer or argument is a step of
    its own."""
    ops = []
    for layer in model.layers:
        name = type(layer).__name__
        if name == "InputLayer":
            continue
        if name == "Activation":
            ops.append(_activation_name(layer.activation))
            continue
        ops.append(name)
        act = getattr(layer, "activation", None)
        if name in ("Conv2D", "Dense") and act is not None \
                and getattr(act, "__name__", "") != "linear":
            ops.append(_activation_name(act))
    return ops


def _keras_forward(model, X):
    """``model(X, training=False)`` as NumPy; a Keras error is one basic failure."""
    try:
        return np.asarray(model(X, training=False))
    except Exception as exc:  # a Keras or TensorFlow error about the learner's model
        raise CheckFailure(f"your model, called on a batch of shape {tuple(X.shape)} "
                           f"(channels last), raised {type(exc).__name__}: "
                           f"{_keras_error(exc)}",
                           basic=True) from None


def _keras_same_logits(build_keras_model, num_classes: int, seed: int) -> None:
    """The learner's Keras model, given the PyTorch spec's weights, computes its
    logits."""
    from ....lessons.cnn import copy_torch_weights_to_keras, nchw_to_nhwc

    kw = {} if num_classes == 10 else {"num_classes": num_classes}
    model = _keras_built(build_keras_model, **kw)
    torch.manual_seed(seed)
    ref = _randomize_norms(reference_build_model(num_classes), seed).eval()
    if not model.weights:
        raise CheckFailure("your model has no weights yet: Keras creates them once it "
                           "knows the input shape, so start the model with an Input "
                           "layer.",
                           basic=True)
    try:
        copy_torch_weights_to_keras(ref, model, (1, 28, 28))
    except ValueError as exc:
        raise CheckFailure("the weights of the PyTorch spec do not fit your model: "
                           f"{exc}",
                           basic=True) from None
    X = _randn(KERAS_BATCH, 1, 28, 28, seed=seed).abs()  # NCHW, for the reference
    got = _keras_forward(model, nchw_to_nhwc(X))
    with torch.no_grad():
        expected = ref(X).numpy()
    what = f"build_keras_model({', '.join(f'{k}={v}' for k, v in kw.items())})"
    expect_close(got, expected, rtol=1e-3, atol=1e-3,
                 what=f"the logits of {what} (with the spec's weights, inference)")


@q.case("computes what the PyTorch spec computes", kind="core",
        hint="Same layers in the same order as the PyTorch model: with the spec's "
             "weights your model then gives the same logits.")
def _(build_keras_model):
    _keras_same_logits(build_keras_model, 10, seed=1)


@q.case("the same on other weights and images", kind="core",
        hint="The same function as the PyTorch spec, for any weights: check the order "
             "of BatchNorm and ReLU and the BatchNormalization settings.")
def _(build_keras_model):
    _keras_same_logits(build_keras_model, 10, seed=2)


@q.case("the same with num_classes=7", kind="core",
        hint="The last Dense layer has num_classes units.")
def _(build_keras_model):
    _keras_same_logits(build_keras_model, 7, seed=3)


@q.case("returns a keras.Model", kind="property",
        hint="Return the model you build: a keras.Sequential of the layers, or a "
             "functional keras.Model from its inputs to its outputs.")
def _(build_keras_model):
    _keras_built(build_keras_model)


@q.case("channels-last input (28, 28, 1)", kind="property",
        hint="Keras images are NHWC (channels last): the input shape is (28, 28, 1), "
             "not PyTorch's (1, 28, 28).")
def _(build_keras_model):
    model = _keras_built(build_keras_model)
    try:
        shape = tuple(model.input_shape)
    except (AttributeError, ValueError):
        raise CheckFailure("your model has no input shape: start it with an Input "
                           "layer of the image shape.") from None
    expect_equal(shape, (None, 28, 28, 1), what="model.input_shape")


@q.case("output shape (B, 10), logits", kind="property",
        hint="The last Dense layer has num_classes units and no activation: return "
             "logits and train with from_logits=True.")
def _(build_keras_model):
    model = _keras_built(build_keras_model)
    X = np.random.default_rng(0).random((KERAS_BATCH, 28, 28, 1), dtype=np.float32)
    out = _keras_forward(model, X)
    expect_shape(out, (KERAS_BATCH, 10), what=f"model(X {X.shape})")
    if np.allclose(out.sum(axis=1), 1.0, atol=1e-4) and (out >= 0).all():
        raise CheckFailure("the outputs are probabilities (they sum to 1): remove the "
                           "softmax activation.")
    ops = _keras_ops(model)
    if ops and ops[-1] != "Dense":
        raise CheckFailure(f"the model ends with {ops[-1]} after the last Dense layer: "
                           "the outputs must be logits, with no activation.")


@q.case("the layers, in order",
        hint="Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D twice, then "
             "Flatten, Dropout, Dense (no activation: logits).")
def _(build_keras_model):
    got = _keras_ops(_keras_built(build_keras_model))
    if got != KERAS_LAYERS:
        raise CheckFailure(f"build_keras_model() has the layers {got} (an activation "
                           "argument counts as its own step),\nexpected "
                           f"{KERAS_LAYERS}.")


@q.case("padding 'same' and no conv bias",
        hint="Each Conv2D keeps the image size (padding \"same\") and has no bias "
             "(use_bias=False), as in the PyTorch spec (padding=1, bias=False).")
def _(build_keras_model):
    convs = [layer for layer in _keras_built(build_keras_model).layers
             if type(layer).__name__ == "Conv2D"]
    got = [(layer.filters, tuple(layer.kernel_size), layer.padding, layer.use_bias)
           for layer in convs]
    expect_equal(got, [(16, (3, 3), "same", False), (32, (3, 3), "same", False)],
                 what="the Conv2D (filters, kernel_size, padding, use_bias)")


@q.case("BatchNormalization with PyTorch's settings",
        hint="PyTorch's BatchNorm defaults in Keras' terms: epsilon 1e-5 and momentum "
             "0.9 (Keras' momentum is one minus PyTorch's; Keras' own defaults are "
             "0.99 and 1e-3).")
def _(build_keras_model):
    norms = [layer for layer in _keras_built(build_keras_model).layers
             if type(layer).__name__ == "BatchNormalization"]
    eps, mom = [layer.epsilon for layer in norms], [layer.momentum for layer in norms]
    if not norms or any(abs(e - 1e-5) > 1e-9 for e in eps) \
            or any(abs(m - 0.9) > 1e-9 for m in mom):
        raise CheckFailure(f"BatchNormalization has epsilon {eps} and momentum {mom}; "
                           "the spec uses PyTorch's defaults: epsilon=1e-5, "
                           "momentum=0.9.")


@q.case("dropout "
        "rate 0.25", hint="Dropout's rate is the fraction of units DROPPED: a quarter.")
def _(build_keras_model):
    drops = [layer.rate for layer in _keras_built(build_keras_model).layers
             if type(layer).__name__ == "Dropout"]
    expect_equal(drops, [0.25], what="the dropout rates")


@q.case("trainable parameter count 20,538",
        hint="Same as the PyTorch spec: 144 + 4,608 + 2*(16+32) + 15,690 trainable "
             "(BatchNorm's moving mean/variance are not trainable).")
def _(build_keras_model):
    expect_parameter_count(_keras_built(build_keras_model), 20_538,
                           what="build_keras_model()")
