"""The ``numpy`` backend: the same mathematics in plain NumPy array operations.

This is the baseline users compare their own NumPy code against, and the
oracle the compiled kernels are tested against.  It favours the obvious
formula over speed; each function mirrors one compiled kernel.
"""

from __future__ import annotations

import contextlib

import numpy as np

from nnjit.activations import LEAKY_SLOPE
from nnjit.layout import Layout
from nnjit.sgd import SGDConfig
from nnjit.validation import check_finite


def _sigmoid(Z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only, so nothing overflows.
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


def _softmax(Z: np.ndarray) -> np.ndarray:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


ACTIVATIONS = {
    "identity": lambda Z: Z,
    "relu": lambda Z: np.maximum(Z, 0),
    "leaky_relu": lambda Z: np.where(Z < 0, LEAKY_SLOPE * Z, Z),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
}

# f'(Z) written from the output A = f(Z).
DERIVATIVES = {
    "identity": lambda A: np.ones_like(A),
    "relu": lambda A: (A > 0).astype(A.dtype),
    "leaky_relu": lambda A: np.where(A > 0, 1, LEAKY_SLOPE).astype(A.dtype),
    "sigmoid": lambda A: A * (1 - A),
    "tanh": lambda A: 1 - A * A,
}


def _binary_cross_entropy(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    # softplus(z) - y z with softplus(z) = max(z, 0) + log1p(exp(-|z|)), grouped
    # so that a confident right answer gives an exact 0, not a cancellation.
    return (np.maximum(Z, 0) - Y * Z) + np.log1p(np.exp(-np.abs(Z)))


def forward(layout: Layout, params: np.ndarray, X: np.ndarray) -> tuple[list, np.ndarray]:
    """Activations ``[X, A_1, ..., A_L]`` and the output logits ``Z_L``."""
    weights, biases = layout.views(params)
    activations = [X]
    Z = X
    for W, b, name in zip(weights, biases, layout.activations, strict=True):
        Z = activations[-1] @ W + b
        activations.append(ACTIVATIONS[name](Z))
    return activations, Z


def row_losses(layout: Layout, Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Per-sample loss, summed over the outputs."""
    if layout.loss == "mse":
        return ((A - Y) ** 2).sum(axis=1)
    if layout.output == "softmax":
        log_probs = Z - Z.max(axis=1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
        return -(Y * log_probs).sum(axis=1)
    # -[y log s(z) + (1 - y) log(1 - s(z))] = softplus(z) - y z
    return _binary_cross_entropy(Z, Y).sum(axis=1)


def output_delta(layout: Layout, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Gradient of the batch mean loss with respect to the output logits."""
    N = A.shape[0]
    if layout.loss == "cross_entropy":
        # softmax + cross-entropy and sigmoid + binary cross-entropy both give
        # (a - y); the softmax form keeps sum(y) for rows that do not sum to 1.
        if layout.output == "softmax":
            return (A * Y.sum(axis=1, keepdims=True) - Y) / N
        return (A - Y) / N
    dA = 2 * (A - Y) / N
    if layout.output == "softmax":
        return A * (dA - (dA * A).sum(axis=1, keepdims=True))
    return dA * DERIVATIVES[layout.output](A)


def weight_penalty(layout: Layout, params: np.ndarray, l2: float) -> float:
    """``(l2 / 2) * sum ||W||^2`` over the weights only."""
    if l2 == 0:
        return 0.0
    weights, _ = layout.views(params)
    with np.errstate(over="ignore"):
        return 0.5 * l2 * sum(float((W * W).sum()) for W in weights)


def backward(
    layout: Layout, params: np.ndarray, activations: list, dZ: np.ndarray, l2: float
) -> np.ndarray:
    """Flat gradient of the batch mean loss plus the L2 term."""
    weights, _ = layout.views(params)
    grad = np.empty_like(params)
    grad_weights, grad_biases = layout.views(grad)
    for layer in reversed(range(layout.n_layers)):
        A_prev = activations[layer]
        grad_weights[layer][:] = A_prev.T @ dZ + l2 * weights[layer]
        grad_biases[layer][:] = dZ.sum(axis=0)
        if layer > 0:
            dZ = (dZ @ weights[layer].T) * DERIVATIVES[layout.activations[layer - 1]](A_prev)
    return grad


class NumpyBackend:
    """Pure-NumPy implementation of the backend interface."""

    name = "numpy"
    kernels_ready = True  # nothing to compile

    def __init__(self, layout: Layout, dtype: np.dtype) -> None:
        self.layout = layout
        self.dtype = dtype

    def output(self, params: np.ndarray, X: np.ndarray, check: bool = False) -> np.ndarray:
        if check:
            check_finite(X, "X", self.dtype)
        return forward(self.layout, params, X)[0][-1]

    def evaluate(
        self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, l2: float, check: bool = False
    ) -> tuple[float, float]:
        """Mean loss plus the L2 term, and the fraction of samples predicted right."""
        if check:
            check_finite(X, "X", self.dtype)
        activations, Z = forward(self.layout, params, X)
        data = float(row_losses(self.layout, Z, activations[-1], Y).mean())
        accuracy = 0.0
        if self.layout.is_classifier:
            accuracy = float(correct_rows(self.layout, activations[-1], Y).mean())
        return data + weight_penalty(self.layout, params, l2), accuracy

    def loss_and_grad(
        self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, l2: float
    ) -> tuple[float, np.ndarray]:
        check_finite(X, "X", self.dtype)
        activations, Z = forward(self.layout, params, X)
        data = float(row_losses(self.layout, Z, activations[-1], Y).mean())
        grad = backward(
            self.layout, params, activations, output_delta(self.layout, activations[-1], Y), l2
        )
        return data + weight_penalty(self.layout, params, l2), grad

    def session(self, batch_size: int, plain: bool = False) -> contextlib.AbstractContextManager:
        """Context for a fit: overflow is reported as a DivergenceError, not as warnings."""
        return np.errstate(over="ignore", invalid="ignore")

    def start_fit(self, params: np.ndarray, batch_size: int) -> dict:
        return {"velocity": np.zeros_like(params)}

    def train_epochs(
        self,
        params: np.ndarray,
        state: dict,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        schedule: tuple[np.ndarray, int],
        cfg: SGDConfig,
        check: bool = False,
    ) -> tuple[int, np.ndarray]:
        """Whole epochs; same contract as the compiled ``train_epochs``."""
        X, Y, orders = data
        if check:
            check_finite(X, "X", self.dtype)
        lrs, batch_size = schedule
        n_batches = -(-X.shape[0] // batch_size)
        stats = np.zeros((lrs.size, 4))
        for e, lr in enumerate(lrs):
            kept = params.copy()
            order = orders[e] if orders.shape[0] > 1 else orders[0]
            epoch_cfg = cfg._replace(lr=lr)
            try:
                *stats[e, :3], finite = self.run_batches(
                    params, state, (X, Y, order), (0, n_batches, batch_size), epoch_cfg
                )
            except BaseException:
                params[:] = kept  # an interrupt never leaves a half-trained epoch
                raise
            stats[e, 3] = weight_penalty(self.layout, params, cfg.l2)
            if not finite or not np.isfinite(params).all():
                params[:] = kept
                return e, stats
        return lrs.size, stats

    def run_batches(
        self,
        params: np.ndarray,
        state: dict,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        batches: tuple[int, int, int],
        cfg: SGDConfig,
    ) -> tuple[float, int, int, bool]:
        """Mini-batches ``first .. stop - 1``; same contract as the compiled epoch."""
        X, Y, order = data
        first, stop, batch_size = batches
        velocity = state["velocity"]
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in range(first, stop):
            rows = order[batch * batch_size : (batch + 1) * batch_size]
            Xb, Yb = X[rows], Y[rows]
            activations, Z = forward(self.layout, params, Xb)
            A = activations[-1]
            loss = float(row_losses(self.layout, Z, A, Yb).mean())
            if not np.isfinite(loss):
                return loss_sum, correct, seen, False
            grad = backward(
                self.layout, params, activations, output_delta(self.layout, A, Yb), cfg.l2
            )
            if cfg.momentum == 0:
                params -= cfg.lr * grad
            else:
                velocity *= cfg.momentum
                velocity += grad
                params -= cfg.lr * (grad + cfg.momentum * velocity if cfg.nesterov else velocity)
            loss_sum += loss * len(rows)
            correct += (
                int(correct_rows(self.layout, A, Yb).sum()) if self.layout.is_classifier else 0
            )
            seen += len(rows)
        return loss_sum, correct, seen, True


def correct_rows(layout: Layout, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Boolean per sample: the classifier's output predicts the target."""
    if layout.output == "softmax":
        return A.argmax(axis=1) == Y.argmax(axis=1)
    return ((A >= 0.5) == (Y >= 0.5)).all(axis=1)
