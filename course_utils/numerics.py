"""Numerical tools that the course's machinery and its lessons share.

``numerical_gradient`` is taught in lesson 02 (section 6) and re-exported by
``course_utils.lessons.mlp_numpy``; it lives here because the checker compares learners'
gradients with it too, and the machinery never imports the taught code.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every coordinate i of x.

    Perturbs ``x`` in place and puts every entry back, so ``f`` may read ``x`` by reference (for
    example a model's weight matrix). Use float64: in float32 the rounding error swamps eps^2.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        f_plus = float(f(x))
        x[i] = old - eps
        f_minus = float(f(x))
        x[i] = old  # restore
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad
