"""Scaling features: why does gradient descent diverge, or crawl, on [x, x²]?

The classic question: fit ``y = x²`` for x in 1..5 by gradient descent on the
features ``[x, x²]``.  The exact answer is a linear model (weight 1 on x², 0 on
x, bias 0), yet the hand-written loop either blows up to ``inf`` or, with a
smaller learning rate, is still far from the answer after thousands of steps.
The features are the problem: x² is up to 25 times larger than x, and the two
are almost collinear, so the loss surface is a long, narrow valley.  The step
size must stay below 2 / (largest curvature) or the steep direction explodes,
and at that step size the flat direction barely moves.  Standardising each
feature (subtract its mean, divide by its standard deviation) makes the valley
round enough that a large step is stable and every direction converges.

Run ``python 08_feature_scaling.py`` (or with ``--quick``).
"""

from __future__ import annotations

import numpy as np
from _common import epoch_axes, losses_until_divergence, parse_args, pyplot, save_figure, say

import nnjit


def linear_model() -> nnjit.Network:
    """One dense layer with an identity output: linear regression, trained by SGD."""
    return nnjit.Network([2, 1], output="identity", loss="mse", seed=0)


def curvatures(features: np.ndarray) -> np.ndarray:
    """Eigenvalues of the Hessian of the MSE of a linear model with a bias."""
    design = np.column_stack([features, np.ones(len(features))])
    return np.linalg.eigvalsh(2 * design.T @ design / len(features))


def quadratic(a2: float, a1: float, a0: float) -> str:
    """``a2 x² + a1 x + a0`` with signs written the usual way."""
    text = f"{a2:.4f} x²"
    for value, power in ((a1, " x"), (a0, "")):
        value = 0.0 if abs(value) < 5e-5 else value  # no "-0.0000"
        text += f" {'-' if value < 0 else '+'} {abs(value):.4f}{power}"
    return text


def first_epoch_below(losses: list[float], level: float) -> str:
    below = np.flatnonzero(np.asarray(losses) < level)
    return f"epoch {below[0] + 1}" if below.size else "never"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    epochs = 400 if args.quick else 2000
    x = np.arange(1.0, 6.0)
    raw = np.column_stack([x, x**2])
    y = x**2
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    scaled = (raw - mean) / std
    fit_args = {"epochs": epochs, "batch_size": len(x)}  # full-batch gradient descent
    say(
        f"Fitting y = x² for x = 1..5 from the features [x, x²] with a linear model (a "
        f"[2, 1] network, identity output, MSE), full-batch gradient descent, {epochs} epochs."
    )

    print()
    for name, features in (("raw", raw), ("standardised", scaled)):
        low, high = curvatures(features)[[0, -1]]
        say(
            f"{name} features: curvatures of the loss from {low:.3g} to {high:.3g} (ratio "
            f"{high / low:.0f}); steps are stable for lr < 2/{high:.3g} = {2 / high:.3g}, and "
            "even at that rate the error along the flattest direction is only multiplied by "
            f"{1 - 2 * low / high:.5f} per step.",
        )

    runs = {}
    print("\n1. Raw features, lr=0.01:")
    try:
        linear_model().fit(raw, y, lr=0.01, **fit_args)
    except nnjit.DivergenceError as error:
        say(f"DivergenceError: {error}", indent=3)
    else:
        say("no divergence within the epochs run", indent=3)
    runs["raw features, lr=0.01"] = losses_until_divergence(
        linear_model(), raw, y, epochs, lr=0.01, batch_size=len(x)
    )

    print("\n2. Raw features, lr=0.004, just inside the stable range:")
    net = linear_model()
    history = net.fit(raw, y, lr=0.004, **fit_args)
    runs["raw features, lr=0.004"] = (history.loss, None)
    (w_x, w_x2), bias = net.weights[0][:, 0], net.biases[0][0]
    say(
        f"after {epochs} epochs the loss is {history.loss[-1]:.2g} and the model is "
        f"y = {quadratic(w_x2, w_x, bias)}: still crawling towards x².",
        indent=3,
    )

    print("\n3. Standardised features, lr=0.3:")
    net = linear_model()
    history = net.fit(scaled, y, lr=0.3, **fit_args)
    runs["standardised features, lr=0.3"] = (history.loss, None)
    # Undo the scaling to read the model in terms of x and x².
    weights = net.weights[0][:, 0] / std
    bias = net.biases[0][0] - weights @ mean
    say(
        f"after {epochs} epochs the loss is {history.loss[-1]:.2g}; in terms of x the model "
        f"is y = {quadratic(weights[1], weights[0], bias)}.",
        indent=3,
    )
    print()
    for label, (losses, _) in runs.items():
        say(f"first epoch with a loss below 1e-6: {first_epoch_below(losses, 1e-6):>9}  ({label})")
    say(
        "Standardise the inputs (with the training set's mean and standard deviation, and "
        "apply the same numbers to new data) before blaming the learning rate."
    )

    plt = pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        styles = ("C3", "C1", "C0")
        for (label, (losses, error)), color in zip(runs.items(), styles, strict=True):
            if error is not None:
                label += f": DivergenceError in epoch {len(losses) + 1}"
            shown = np.minimum(losses, 1e12)  # beyond the top of the picture anyway
            ax.plot(range(1, len(losses) + 1), shown, color=color, label=label)
        ax.set_yscale("log")
        ax.set_ylim(1e-22, 1e8)  # the diverging run leaves the picture on its way to inf
        ax.set_ylabel("training loss (MSE)")
        ax.set_title("Fitting y = x² from [x, x²]: raw versus standardised features")
        epoch_axes(ax)
        save_figure(fig, "08_feature_scaling.png", tight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
