"""Checking a gradient: how do I know my backprop is right?

The classic question: a hand-written network trains, but badly, and the author
cannot tell whether the learning rate, the data or the backprop is to blame.
A wrong sign in one derivative does not crash anything; the loss may even fall
for a while, because the other layers still get correct gradients.  The cure is
a gradient check: compare the analytic gradient with central finite differences
``(L(p + eps) - L(p - eps)) / (2 eps)`` of the loss, one parameter at a time.
Right gradients agree to 1e-6 or better in float64; a bug shows up as an error
of order 1, and the per-layer errors say where it is.

This script checks nnjit's network with ``nnjit.gradcheck``, then a NumPy
backprop written as a user would, once correct and once with the derivative of
tanh written the wrong way round (``A**2 - 1`` instead of ``1 - A**2``).

Run ``python 03_checking_a_gradient.py`` (or with ``--quick``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from _common import parse_args, pyplot, save_figure, say

import nnjit

SIZES = [4, 5, 3]
NAMES = ("W1", "b1", "W2", "b2")
# Relative errors below this mean the gradient is right: rounding in the finite
# differences alone gives 1e-10 to 1e-6 in float64; a bug gives errors of order 1.
PASS = 1e-5


def user_backprop(
    W1: np.ndarray,
    b1: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
    X: np.ndarray,
    labels: np.ndarray,
    flipped: bool = False,
) -> tuple[float, list[np.ndarray]]:
    """A hand-written 2-layer tanh/softmax network: mean cross-entropy and its gradient."""
    N = X.shape[0]
    A1 = np.tanh(X @ W1 + b1)
    Z2 = A1 @ W2 + b2
    Z2 = Z2 - Z2.max(axis=1, keepdims=True)
    P = np.exp(Z2) / np.exp(Z2).sum(axis=1, keepdims=True)
    loss = -np.log(P[np.arange(N), labels]).mean()

    dZ2 = P.copy()
    dZ2[np.arange(N), labels] -= 1
    dZ2 /= N
    dW2 = A1.T @ dZ2
    db2 = dZ2.sum(axis=0)
    dA1 = dZ2 @ W2.T
    if flipped:
        dZ1 = dA1 * (A1**2 - 1)  # the bug: tanh'(z) is 1 - tanh(z)**2
    else:
        dZ1 = dA1 * (1 - A1**2)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return float(loss), [dW1, db1, dW2, db2]


def numerical_gradient(
    loss: Callable[[], float], arrays: list[np.ndarray], eps: float = 1e-6
) -> list[np.ndarray]:
    """Central finite differences of ``loss()`` with respect to every entry of ``arrays``."""
    grads = []
    for array in arrays:
        grad = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + eps
            upper = loss()
            array[index] = saved - eps
            lower = loss()
            array[index] = saved
            grad[index] = (upper - lower) / (2 * eps)
        grads.append(grad)
    return grads


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


class HandWrittenGradient(nnjit.Network):
    """nnjit's network and loss, but ``loss_and_grad`` runs the hand-written backprop.

    That lets ``nnjit.gradcheck`` judge the user's gradient against finite
    differences of nnjit's loss.
    """

    def __init__(self, net: nnjit.Network, flipped: bool) -> None:
        super().__init__(net.sizes, net.hidden[0], net.output, net.loss_name)
        self.params = net.params
        self.flipped = flipped

    def loss_and_grad(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float = 0.0
    ) -> tuple[float, np.ndarray]:
        shadow = nnjit.Network(self.sizes, self.hidden[0], self.output, self.loss_name)
        shadow.params = params
        (W1, W2), (b1, b2) = shadow.weights, shadow.biases
        loss, grads = user_backprop(W1, b1, W2, b2, X, y, self.flipped)
        # Write the gradient into the same flat layout as nnjit's parameters.
        for view, grad in zip((W1, b1, W2, b2), grads, strict=True):
            view[:] = grad
        return loss, shadow.params.copy()


def main(argv: list[str] | None = None) -> int:
    parse_args(argv, __doc__)  # the check is quick in any mode
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, SIZES[0]))
    labels = rng.integers(0, SIZES[-1], size=8)
    net = nnjit.Network(SIZES, hidden="tanh", output="softmax", loss="cross_entropy", seed=0)
    say(
        f"A {'-'.join(map(str, SIZES))} network, tanh hidden layer, softmax cross-entropy, at "
        f"its random initial weights, on {len(X)} random samples."
    )

    print("\n1. nnjit's own gradient:")
    error = nnjit.gradcheck(net, X, labels)
    verdict = "right" if error < PASS else "WRONG"
    say(
        f"nnjit.gradcheck(net, X, labels) = {error:.1e}, below {PASS:.0e}: the gradient is "
        f"{verdict}.",
        indent=3,
    )

    print("\n2. A hand-written NumPy backprop, checked entry by entry with finite differences")
    print(f"   (relative error per array; above {PASS:.0e} the gradient is wrong):")
    W1, W2 = (W.copy() for W in net.weights)
    b1, b2 = (b.copy() for b in net.biases)
    arrays = [W1, b1, W2, b2]
    numeric = numerical_gradient(lambda: user_backprop(*arrays, X, labels)[0], arrays)
    results = {}
    for flipped in (False, True):
        _, analytic = user_backprop(*arrays, X, labels, flipped)
        errors = [relative_error(a, n) for a, n in zip(analytic, numeric, strict=True)]
        results[flipped] = analytic
        title = "tanh' = A**2 - 1 (sign flipped)" if flipped else "tanh' = 1 - A**2 (correct)"
        verdict = "CAUGHT" if max(errors) > PASS else "passes"
        row = " ".join(f"{name} {e:.0e}" for name, e in zip(NAMES, errors, strict=True))
        print(f"   {title:32} {row} -> {verdict}")
    say(
        "The errors point at the layer: only W1 and b1 are wrong, because the flipped "
        "derivative is the one of the hidden layer; W2 and b2 still agree to rounding.",
        indent=3,
    )
    _, nnjit_grad = net.loss_and_grad(net.params, X, labels)
    shadow = nnjit.Network(SIZES, "tanh", "softmax", "cross_entropy")
    shadow.params = nnjit_grad
    nnjit_arrays = [shadow.weights[0], shadow.biases[0], shadow.weights[1], shadow.biases[1]]
    agreement = max(np.abs(a - b).max() for a, b in zip(results[False], nnjit_arrays, strict=True))
    say(
        "The correct hand-written gradient and nnjit's loss_and_grad differ by at most "
        f"{agreement:.1e}: same conventions (mean over samples, weights of shape (n_in, n_out)).",
        indent=3,
    )

    print("\n3. nnjit.gradcheck on the hand-written gradients:")
    for flipped in (False, True):
        error = nnjit.gradcheck(HandWrittenGradient(net, flipped), X, labels)
        name = "sign-flipped backprop" if flipped else "correct backprop"
        verdict = "CAUGHT: wrong gradient" if error > PASS else "right"
        say(f"{name:22} gradcheck = {error:.1e} -> {verdict}", indent=3)
    say(
        "Check at random weights, not after training: near a minimum the gradient is tiny and "
        "rounding in the loss dominates the finite differences.",
    )

    plt = pyplot()
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharex=True, sharey=True)
        everything = np.concatenate([g.ravel() for g in numeric])
        limit = 1.1 * np.abs(everything).max()
        for ax, flipped in zip(axes, (False, True), strict=True):
            ax.plot([-limit, limit], [-limit, limit], "k-", alpha=0.3, label="analytic = numeric")
            for name, a, n in zip(NAMES, results[flipped], numeric, strict=True):
                ax.plot(n.ravel(), a.ravel(), "o", alpha=0.75, label=name)
            ax.set_xlabel("finite-difference gradient")
            ax.set_title("sign flipped in tanh': W1, b1 off the line" if flipped else "correct")
            ax.grid(True, alpha=0.3)
            ax.set_aspect("equal")
        axes[0].set_ylabel("hand-written backprop gradient")
        axes[0].set_xlim(-limit, limit)
        axes[0].set_ylim(-limit, limit)
        axes[0].legend(loc="upper left")
        save_figure(fig, "03_checking_a_gradient.png", "Gradient check: every dot is one parameter")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
