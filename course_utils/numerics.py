"""Numerical tools that the course's machinery and its lessons share.

``numerical_gradient`` is taught in lesson 02 (Section 5, gradient checking) and
re-exported by ``course_utils.lessons.mlp_numpy``; it lives here because the checker
compares learners' gradients with it too, and the machinery never imports the taught
code.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                       delta: float = 1e-5, *, eps: float | None = None) -> np.ndarray:
    """Central differences (f(x + delta e_i) - f(x - delta e_i)) / (2 delta), every i.

    Perturbs ``x`` in place and puts every entry back, so ``f`` may read ``x`` by
    reference (for example a model's weight matrix). Use float64: in float32 the
    rounding error swamps the delta^2 of the truncation error.

    Args:
        f: maps an array shaped like ``x`` to a number.
        x: the point, any shape; every entry is stepped in turn.
        delta: the finite-difference step (lesson 02 writes it delta).
        eps: the former name of ``delta``, still accepted so that older callers keep
            working; give one of the two.
    Returns:
        The gradient estimate, float64, shaped like ``x``.
    Raises:
        TypeError: when both ``delta`` (other than its default) and ``eps`` are given.

    Example:
        >>> numerical_gradient(lambda v: float((v ** 2).sum()), np.array([1.0, -2.0]))
        array([ 2., -4.])
    """
    if eps is not None:
        if delta != 1e-5:
            raise TypeError("numerical_gradient: give the step as delta or as eps, "
                            "not both")
        delta = eps
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + delta
        f_plus = float(f(x))
        x[i] = old - delta
        f_minus = float(f(x))
        x[i] = old  # restore
        grad[i] = (f_plus - f_minus) / (2 * delta)
    return grad
