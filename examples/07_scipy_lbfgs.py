"""Training with scipy's optimisers: Andrew Ng's ex4 network through L-BFGS-B.

The classic: exercise 4 of Ng's machine-learning course trains a 400-25-10
sigmoid network on 20x20 digits by handing ``nnCostFunction`` (cost and
unrolled gradient) to an optimiser (``fmincg``; in Python,
``scipy.optimize.minimize(..., jac=True)``).  The cost is the sigmoid
cross-entropy summed over the 10 outputs and averaged over the m samples, plus
``lambda/(2m)`` times the squared weights, biases excluded.  Ports go wrong in
the unrolling of the parameters, in regularising the bias column, or in a
gradient that does not match the cost: L-BFGS then stops early, after many
function evaluations per iteration, at a cost well above the minimum.

nnjit's ``loss_and_grad(params, X, y, l2)`` has exactly the signature scipy
wants, and nnjit's sigmoid cross-entropy and L2 are Ng's cost with
``l2 = lambda / m``.  The same network here is [64, 25, 10] on scikit-learn's
8x8 digits.

Needs scikit-learn and scipy.  Run ``python 07_scipy_lbfgs.py`` (or ``--quick``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save_figure, say

import nnjit
from nnjit.data import digits

LAMBDA = 1.0  # Ng's regularisation parameter


def accuracy(net: nnjit.Network, X: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(net.forward(X).argmax(axis=1) == labels))


def recorder(costs: list[float], fun: Callable[[np.ndarray], tuple]) -> Callable:
    """A ``minimize`` callback that appends the cost at the end of each iteration."""

    def callback(intermediate_result: Any) -> None:
        # scipy >= 1.11 passes the current result; older versions only the parameters.
        cost = getattr(intermediate_result, "fun", None)
        costs.append(float(fun(intermediate_result)[0] if cost is None else cost))

    return callback


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    max_iter = 10 if args.quick else 50  # ex4 runs fmincg for 50 iterations
    try:
        from scipy.optimize import minimize

        X_train, y_train, X_test, y_test = digits(seed=0)
    except ImportError as error:
        print(f"skipped: {error}")
        return 0
    Y_train = np.eye(10)[y_train]
    m = len(X_train)
    l2 = LAMBDA / m
    net = nnjit.Network([64, 25, 10], "sigmoid", "sigmoid", "cross_entropy", seed=0)
    start_params = net.params.copy()
    say(
        f"{m} training and {len(X_test)} held-out 8x8 digits; network [64, 25, 10], sigmoid "
        f"hidden and output layers, cross-entropy, Ng's lambda={LAMBDA:g} -> l2 = lambda/m = "
        f"{l2:.2e}; L-BFGS-B for at most {max_iter} iterations."
    )

    costs = []
    start = time.perf_counter()
    result = minimize(
        net.loss_and_grad,
        start_params,
        args=(X_train, Y_train, l2),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter},
        callback=recorder(costs, lambda p: net.loss_and_grad(p, X_train, Y_train, l2)),
    )
    elapsed = time.perf_counter() - start
    net.params = result.x
    print()
    say(
        f"minimize: {result.nit} iterations, {result.nfev} cost evaluations, "
        f"{elapsed:.2f} s; message: {result.message}"
    )
    say(
        f"Cost {costs[0] if costs else result.fun:.3f} after the first iteration, "
        f"{result.fun:.4f} at the end. Training accuracy {accuracy(net, X_train, y_train):.1%}, "
        f"held-out accuracy {accuracy(net, X_test, y_test):.1%}."
    )

    # The classic porting bug: the cost is regularised but the gradient is not.
    def inconsistent(params: np.ndarray) -> tuple[float, np.ndarray]:
        cost, _ = net.loss_and_grad(params, X_train, Y_train, l2)
        _, grad = net.loss_and_grad(params, X_train, Y_train, 0.0)
        return cost, grad

    wrong_costs = []
    wrong = minimize(
        inconsistent,
        start_params,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter},
        callback=recorder(wrong_costs, inconsistent),
    )
    per_iteration = wrong.nfev / max(wrong.nit, 1), result.nfev / max(result.nit, 1)
    print()
    say(
        "The same run with a gradient that forgets the regularisation term (the cost keeps "
        f"it): {wrong.nit} iterations, {wrong.nfev} cost evaluations "
        f"({per_iteration[0]:.1f} per iteration against {per_iteration[1]:.1f}), final cost "
        f"{wrong.fun:.4f} against {result.fun:.4f}; message: {wrong.message}."
    )
    if per_iteration[0] > 1.5 * per_iteration[1] and wrong.fun > result.fun:
        say(
            "A gradient that does not belong to the cost sends the line searches the wrong "
            "way, they need several tries per iteration, and the run stalls at a higher cost: "
            "check a gradient with nnjit.gradcheck before handing it to an optimiser."
        )
    else:
        say(
            "In so few iterations the wrong gradient has not yet stalled the run; without "
            "--quick it needs several cost evaluations per iteration and stalls at a higher "
            "cost."
        )

    plt = pyplot()
    if plt is not None:
        fig = plt.figure(figsize=(11, 4.6))
        ax = fig.add_subplot(1, 2, 1)
        ax.plot(range(1, len(costs) + 1), costs, "o-", markersize=3, label="loss_and_grad")
        ax.plot(
            range(1, len(wrong_costs) + 1),
            wrong_costs,
            "x-",
            markersize=3,
            color="C3",
            label="gradient without the L2 term",
        )
        ax.legend()
        ax.set_xlabel("L-BFGS-B iteration")
        ax.set_ylabel("cost (cross-entropy + L2)")
        ax.set_yscale("log")
        ax.set_title("Cost per iteration")
        ax.grid(True, alpha=0.3)
        weights = net.weights[0]
        units = fig.add_gridspec(5, 5, left=0.58, right=0.95, bottom=0.08, top=0.86)
        limit = np.abs(weights).max()
        for j in range(25):
            cell = fig.add_subplot(units[j // 5, j % 5])
            cell.imshow(weights[:, j].reshape(8, 8), cmap="gray", vmin=-limit, vmax=limit)
            cell.set_xticks([])
            cell.set_yticks([])
        fig.text(0.765, 0.9, "The 25 hidden units: input weights as 8x8 images", ha="center")
        save_figure(
            fig,
            "07_scipy_lbfgs.png",
            "Ng's ex4 network trained by scipy.optimize.minimize(method='L-BFGS-B')",
            tight=False,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
