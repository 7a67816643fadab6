"""Checks of 02.relu_backward: Backward of ReLU."""
from __future__ import annotations

import numpy as np

from ....lessons.mlp_numpy import relu_backward as ref_relu_backward
from ...asserts import CheckFailure, call, expect_close
from ...registry import question
from ._common import _matches, _on_copies, _plain_mismatch


q = question("02.relu_backward", "Backward of ReLU", answers=["relu_backward"],
             timeout=5)


def _relu_inputs(seed: int, shape: tuple):
    """Seeded (dA, Z) of ``shape``."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.standard_normal(shape)  # dA, Z


def _relu_core(relu_backward, seed: int, shape: tuple) -> None:
    """The learner's ReLU backward against the reference on seeded inputs."""
    dA, Z = _relu_inputs(seed, shape)
    got = _on_copies(relu_backward, dA, Z, name="relu_backward")
    expect_close(got, ref_relu_backward(dA, Z),
                 what=f"relu_backward(dA, Z) for shape {shape}")


_RELU_HINT = ("The slope of ReLU is 1 where its input Z was positive and 0 elsewhere: "
              "the upstream gradient dA passes where Z > 0 and is 0 where Z <= 0.")


@q.case("a (4, 6) batch, against the reference", kind="core", hint=_RELU_HINT)
def _(relu_backward):
    _relu_core(relu_backward, seed=0, shape=(4, 6))


@q.case("a vector of 7, against the reference", kind="core", hint=_RELU_HINT)
def _(relu_backward):
    _relu_core(relu_backward, seed=1, shape=(7,))


@q.case("a (2, 3, 4) array, against the reference", kind="core", hint=_RELU_HINT)
def _(relu_backward):
    _relu_core(relu_backward, seed=2, shape=(2, 3, 4))


def _relu_mistake(relu_backward, dA, Z, mistaken, message: str, what: str) -> None:
    """Pass on the reference; fail with ``message`` on ``mistaken``; else plainly."""
    got = _on_copies(relu_backward, dA, Z, name="relu_backward")
    expected = ref_relu_backward(dA, Z)
    if _matches(got, expected):
        return
    if _matches(got, mistaken):
        raise CheckFailure(message)
    _plain_mismatch(got, expected, what)


@q.case("passes dA where Z > 0 and blocks it where Z < 0", kind="mistake",
        hint="Keep the gradient where the forward input was positive (Z > 0), not "
             "where it was negative.")
def _(relu_backward):
    Z = np.array([[1.5, -2.0, 0.3], [-0.1, 4.0, -3.0]])
    dA = np.array([[0.7, 0.2, 0.4], [0.9, 0.6, 0.8]])
    _relu_mistake(relu_backward, dA, Z, dA * (Z < 0),
                  "the result keeps dA where Z < 0 and zeroes it where Z > 0: the "
                  "mask is inverted.", "relu_backward(dA, Z)")


@q.case("the mask comes from the input Z, not from the sign of dA", kind="mistake",
        hint="Mask with where the ReLU was active in the forward pass (Z > 0), not "
             "with dA > 0: a negative gradient through an active unit must pass.")
def _(relu_backward):
    Z = np.array([[1.0, 2.0, 3.0]])
    dA = np.array([[-0.5, -1.0, 2.0]])
    _relu_mistake(relu_backward, dA, Z, dA * (dA > 0),
                  "with every Z > 0, the negative entries of dA were blocked: the "
                  "mask was taken from dA, not from Z.",
                  "relu_backward(dA, Z) with every Z > 0")


@q.case("multiplies dA by the mask (chain rule), not just the mask", kind="mistake",
        hint="Return the local derivative (the 0/1 mask) times the upstream gradient "
             "dA, not the mask alone.")
def _(relu_backward):
    Z = np.array([[0.5, -0.5], [2.0, 1.0]])
    dA = np.array([[3.0, 7.0], [-2.0, 0.25]])
    _relu_mistake(relu_backward, dA, Z, (Z > 0).astype(float),
                  "the result is the 0/1 mask itself: dA was not multiplied in.",
                  "relu_backward(dA, Z)")


@q.case("at exactly Z = 0 the slope is 0 (Z > 0, not Z >= 0)", kind="mistake",
        hint="Use the strict comparison: at Z = 0 we take the slope 0, as PyTorch "
             "does (>= takes 1).")
def _(relu_backward):
    Z = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    dA = np.array([[5.0, 1.0, 1.0], [1.0, -2.0, 3.0]])
    _relu_mistake(relu_backward, dA, Z, dA * (Z >= 0),
                  "where Z is exactly 0 the gradient passed: the slope at 0 is taken "
                  "as 1.",
                  "relu_backward(dA, Z) where some Z are exactly 0")


@q.case("does not modify dA in place", kind="property",
        hint="Build a new array instead of zeroing entries of dA: the caller still "
             "owns dA.")
def _(relu_backward):
    dA, Z = _relu_inputs(3, (4, 6))
    call(relu_backward, dA, Z, name="relu_backward")
