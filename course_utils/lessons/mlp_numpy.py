"""Vectorized backpropagation for a multilayer perceptron, in NumPy only.

Taught in lesson 02 (backpropagation), which derives each backward rule in matrix
form; the lesson's checks use these functions as the reference. Conventions: a batch is
the rows of ``X``, ``(B, D)``; a linear layer computes ``Z = X @ W + b`` with ``W`` of
shape ``(D_in, D_out)``; every ``*_backward`` takes the gradient of the loss with
respect to the layer's output and returns the gradient with respect to its inputs (and
parameters).

Example:
    >>> model = MLP([784, 256, 10], seed=0)
    >>> logits = model.forward(X)            # doctest: +SKIP
    >>> loss, grads = model.loss_and_grads(X, y)  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

# Taught in lesson 02's Section 5 (gradient checking); it lives in numerics because the
# checker uses it too.
from ..numerics import numerical_gradient  # noqa: F401


# --------------------------------------------------------------------------- layers
def linear_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Z = X W + b: (B, D_in) @ (D_in, D_out) + (D_out,) -> (B, D_out)."""
    return X @ W + b


def linear_backward(dZ: np.ndarray, X: np.ndarray, W: np.ndarray):
    """Gradients of a linear layer from dL/dZ: (dX, dW, db), shaped like (X, W, b).

    dX = dZ W^T (B, D_in); dW = X^T dZ (D_in, D_out), a sum over the batch;
    db = sum_i dZ_i (D_out,).
    """
    dX = dZ @ W.T  # (B, D_out) @ (D_out, D_in) -> (B, D_in)
    dW = X.T @ dZ  # (D_in, B) @ (B, D_out) -> (D_in, D_out)
    db = dZ.sum(axis=0)  # (B, D_out) -> (D_out,)
    return dX, dW, db


def relu_forward(Z: np.ndarray) -> np.ndarray:
    """A = max(0, Z), elementwise."""
    return np.maximum(Z, 0)


def relu_backward(dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """dL/dZ = dL/dA where Z > 0, else 0: a mask by the layer's input (a new array)."""
    return dA * (Z > 0)


def sigmoid_forward(Z: np.ndarray) -> np.ndarray:
    """A = 1 / (1 + e^-Z), computed without overflow for large |Z|."""
    E = np.exp(-np.abs(Z))  # in (0, 1]: never overflows
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


def sigmoid_backward(dA: np.ndarray, A: np.ndarray) -> np.ndarray:
    """dL/dZ = dL/dA * A (1 - A), written with the output A = sigmoid(Z)."""
    return dA * A * (1 - A)


# --------------------------------------------------------------------------- loss
def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable: the row max is subtracted before exp."""
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (B, C), each row's max is 0
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """softmax over the last axis (probabilities; rows sum to 1)."""
    return np.exp(log_softmax(logits))


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    Args:
        logits: (B, C) scores.
        y: (B,) integer labels in [0, C).
    Returns:
        (loss, dlogits): the mean of -log softmax(logits)[i, y_i] (a float) and
        dL/dlogits = (softmax(logits) - onehot(y)) / B, shape (B, C).
    """
    B = logits.shape[0]
    rows = np.arange(B)
    logp = log_softmax(logits)  # (B, C)
    loss = float(-logp[rows, y].mean())
    dlogits = np.exp(logp)  # softmax, (B, C)
    dlogits[rows, y] -= 1
    dlogits /= B  # the 1/B of the mean
    return loss, dlogits


# ---------------------------------------------------------------------- initialisation
def init_weight(fan_in: int, fan_out: int, init: str = "he", rng=None,
                dtype=np.float32) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix drawn from N(0, Var(w)).

    ``init``: "he" Var(w) = 2 / fan_in (He et al., 2015, for ReLU); "xavier"
    Var(w) = 2 / (fan_in + fan_out) (Glorot & Bengio, 2010); "small" a standard
    deviation of 0.01; "large" a standard deviation of 1.
    """
    rng = np.random.default_rng(rng)
    variances = {"he": 2.0 / fan_in, "xavier": 2.0 / (fan_in + fan_out),
                 "small": 0.01 ** 2, "large": 1.0}
    if init not in variances:
        raise ValueError(f"init must be one of {sorted(variances)}, not {init!r}")
    W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(variances[init])
    return W.astype(dtype)  # (fan_in, fan_out)


# --------------------------------------------------------------------------- the model
class MLP:
    """A multilayer perceptron with a hand-written backward: linear, act, ..., linear.

    Parameters live in ``params`` as ``W1, b1, W2, b2, ...``; ``backward`` returns a
    dict of gradients with the same keys and shapes. For inspection (lesson 02's plots),
    ``cache`` holds each layer's (input, pre-activation) from the last ``forward`` and
    ``dZ[k]`` the gradient dL/dZ_k of layer k from the last ``backward``.
    """

    def __init__(self, sizes, activation: str = "relu", init: str = "he", seed: int = 0,
                 dtype=np.float32):
        if activation not in ("relu", "sigmoid"):
            raise ValueError("activation must be 'relu' or 'sigmoid', not "
                             f"{activation!r}")
        self.sizes, self.activation, self.dtype = list(sizes), activation, dtype
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.params[f"W{layer}"] = init_weight(fan_in, fan_out, init, rng, dtype)
            self.params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)
        self.cache: list = []  # (layer input, pre-activation) per layer: last forward
        self.dZ: dict[int, np.ndarray] = {}

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    def __repr__(self) -> str:
        n = sum(p.size for p in self.params.values())
        return (f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
                f"parameters={n:,})")

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Logits (B, C) for inputs X (B, D); keeps what backward needs."""
        self.cache = []
        A = X
        for layer in range(1, self.num_layers + 1):
            W, b = self.params[f"W{layer}"], self.params[f"b{layer}"]
            Z = linear_forward(A, W, b)  # (B, D_layer)
            self.cache.append((A, Z))
            if layer < self.num_layers:  # no activation after the last: the logits
                A = relu_forward(Z) if self.activation == "relu" else sigmoid_forward(Z)
            else:
                A = Z
        return A

    def backward(self, dlogits: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter from dL/dlogits (B, C)."""
        grads: dict[str, np.ndarray] = {}
        self.dZ = {}  # dL/dZ of every layer, kept for inspection (lesson 02 plots them)
        dZ = dlogits
        for layer in range(self.num_layers, 0, -1):
            self.dZ[layer] = dZ
            A_in, _ = self.cache[layer - 1]
            W = self.params[f"W{layer}"]
            dA_in, grads[f"W{layer}"], grads[f"b{layer}"] = linear_backward(dZ, A_in, W)
            if layer > 1:  # the input X needs no gradient
                _, Z_prev = self.cache[layer - 2]
                if self.activation == "relu":
                    dZ = relu_backward(dA_in, Z_prev)
                else:
                    dZ = sigmoid_backward(dA_in, A_in)  # A_in = sigmoid(Z_prev)
        return grads

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray):
        """Forward, mean softmax cross-entropy and backward: (loss, grads)."""
        loss, dlogits = softmax_cross_entropy(self.forward(X), y)
        return loss, self.backward(dlogits)

    def predict(self, X: np.ndarray, batch_size: int = 2048) -> np.ndarray:
        """Predicted classes (B,) for X, in chunks to bound memory."""
        return np.concatenate([self.forward(X[i: i + batch_size]).argmax(axis=1)
                               for i in range(0, len(X), batch_size)])

    def accuracy(self, X: np.ndarray, y: np.ndarray) -> float:
        """Fraction of X classified as y."""
        return float((self.predict(X) == y).mean())


def sgd_step(params: dict, grads: dict, lr: float, momentum: float = 0.0,
             velocity: dict | None = None) -> None:
    """In place: v <- momentum v + g; p <- p - lr v (plain SGD when momentum = 0).

    This is ``torch.optim.SGD``'s form of momentum (Polyak, 1964). ``velocity`` (a dict,
    filled on first use) is needed when ``momentum > 0``.
    """
    for name, grad in grads.items():
        if momentum:
            if velocity is None:
                raise ValueError("momentum > 0 needs a velocity dict")
            v = velocity.get(name)
            velocity[name] = grad.copy() if v is None else momentum * v + grad
            grad = velocity[name]
        params[name] -= lr * grad


# ------------------------------------------------------------------- gradient checking
def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||); 1e-7 or less for a right float64 gradient.

    0 when both are 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)
