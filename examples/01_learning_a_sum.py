"""Learning a sum: why does my network output NaN when it learns x0 + x1?

The classic question: a small network is to learn ``x0 + x1`` on the integers
0..4, trained one sample at a time.  The hand-written loop prints a loss that
grows, then ``inf``, then ``nan`` forever, and the predictions are ``nan``.
Nothing is wrong with the backprop: the learning rate is far too large for
inputs and targets of this size, so every step overshoots further than the
last until the numbers overflow.  A rate that is only somewhat too large fails
silently instead: the first steps push every hidden ReLU into its flat,
negative side, where the gradient is zero, and the network predicts the same
number for every input.

nnjit stops at the first non-finite loss with ``DivergenceError``, keeps the
parameters of the last finite epoch and says what usually cures it.

Run ``python 01_learning_a_sum.py`` (or with ``--quick``).
"""

from __future__ import annotations

import numpy as np
from _common import epoch_axes, losses_until_divergence, parse_args, pyplot, save_figure, say

import nnjit

SIZES = [2, 10, 1]
QUERIES = np.array([[1, 0], [0, 1], [2, 3], [2, 2]])
TOO_LARGE, DEADLY, SANE = 2.0, 0.2, 0.01


def make_net() -> nnjit.Network:
    return nnjit.Network(SIZES, hidden="relu", output="identity", loss="mse", seed=0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    epochs = 50 if args.quick else 200
    X = np.array([[a, b] for a in range(5) for b in range(5)], dtype=float)
    y = X.sum(axis=1)
    # No seed in fit: the shuffling comes from the network's own generator (seed=0), so
    # the epoch-by-epoch runs drawn for the picture see the very same sample order.
    fit_args = {"batch_size": 1}
    say(
        f"Learning x0 + x1 on the {len(X)} pairs of integers 0..4 with a 2-10-1 ReLU "
        "network, one sample per step (batch_size=1), mean squared error."
    )

    print(f"\n1. lr={TOO_LARGE:g}, far too large:")
    net = make_net()
    try:
        net.fit(X, y, epochs=epochs, lr=TOO_LARGE, **fit_args)
    except nnjit.DivergenceError as error:
        print("   net.fit raised DivergenceError:")
        say(str(error), indent=5)
        say(
            f"error.epoch = {error.epoch}, error.lr = {error.lr:g}. The parameters are all "
            f"finite ({bool(np.isfinite(net.params).all())}), but the loss of the kept "
            f"network is {net.loss(X, y):.3g}: the weights had already exploded.",
            indent=3,
        )
    else:
        print("   unexpectedly, training stayed finite")

    print(f"\n2. lr={DEADLY:g}, the advice's first suggestion:")
    net = make_net()
    history = net.fit(X, y, epochs=epochs, lr=DEADLY, **fit_args)
    hidden = np.maximum(X @ net.weights[0] + net.biases[0], 0)
    alive = int((hidden > 0).any(axis=0).sum())
    say(
        f"No error, but the loss ends at {history.loss[-1]:.3f}, and {alive} of {SIZES[1]} "
        "hidden ReLUs are active on any input: the first huge steps pushed them all to "
        "their flat side, where the gradient is zero, and the network answers "
        f"{net.predict(QUERIES)[0]:.3f} to every question. A loss that stops falling far "
        "above zero is the sign of dead units: lower the rate further.",
        indent=3,
    )

    print(f"\n3. lr={SANE:g}, a sane rate:")
    net = make_net()
    history = net.fit(X, y, epochs=epochs, lr=SANE, **fit_args)
    say(
        f"The loss falls from {history.loss[0]:.3f} to {history.loss[-1]:.2g} in {epochs} "
        f"epochs ({sum(history.epoch_time):.3f} s of training). Predictions:",
        indent=3,
    )
    for query, prediction in zip(QUERIES, net.predict(QUERIES), strict=True):
        print(f"     {query[0]} + {query[1]} = {query.sum()}   predicted {prediction:7.4f}")

    plt = pyplot()
    if plt is not None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        losses, error = losses_until_divergence(
            make_net(), X, y, epochs, lr=TOO_LARGE, batch_size=1
        )
        label = (
            f"lr={TOO_LARGE:g}"
            if error is None
            else f"lr={TOO_LARGE:g}: DivergenceError in epoch {len(losses) + 1}"
        )
        left.plot(range(1, len(losses) + 1), np.log10(losses), "C3.-", label=label)
        left.set_ylabel("log10 of the training loss (MSE)")
        left.set_title(f"lr={TOO_LARGE:g}: the loss explodes until it overflows")
        for lr, style in ((DEADLY, "C1.-"), (SANE, "C0.-")):
            losses, _ = losses_until_divergence(make_net(), X, y, epochs, lr=lr, batch_size=1)
            note = "dead ReLUs" if lr == DEADLY else "learns"
            right.plot(
                range(1, len(losses) + 1), losses, style, markersize=3, label=f"lr={lr:g} ({note})"
            )
        right.set_yscale("log")
        right.set_ylabel("training loss (MSE)")
        right.set_title("A rate 10x smaller stalls; 200x smaller learns")
        epoch_axes(left, right)
        save_figure(
            fig,
            "01_learning_a_sum.png",
            "Learning x0 + x1 with a 2-10-1 ReLU network, one sample per step",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
