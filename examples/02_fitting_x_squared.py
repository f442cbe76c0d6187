"""Fitting x²: why does my network predict a flat line at zero?

The classic question: a 1-64-1 network is to fit ``y = x²`` on [0, 1], and the
hand-written version ends with a loss stuck at ``mean(x⁴) = 0.2`` and a
prediction of exactly 0 everywhere, or it fits the right part of the curve and
stays flat at zero on the left.  The mistake is the ReLU on the output layer.
A ReLU outputs 0 wherever its input is negative, and there its gradient is
exactly zero, so no step can ever move those points again.  With zero biases
the untrained output of this network is a straight line through the origin, so
for about half of all seeds it starts negative on the whole of (0, 1]: the
network never learns anything.  Regression wants an identity (linear) output;
the non-linearity belongs in the hidden layer (here leaky ReLU).

Run ``python 02_fitting_x_squared.py`` (or with ``--quick``).
"""

from __future__ import annotations

import numpy as np
from _common import parse_args, pyplot, save_figure, say

import nnjit

SHOWN_SEEDS = (0, 2)


def train(
    output: str, seed: int, x: np.ndarray, y: np.ndarray, epochs: int
) -> tuple[nnjit.Network, bool]:
    """The trained network, and whether its output was 0 on every x > 0 before training."""
    net = nnjit.Network([1, 64, 1], hidden="leaky_relu", output=output, loss="mse", seed=seed)
    born_dead = bool((net.forward(x[1:]) <= 0).all())
    net.fit(x, y, epochs=epochs, batch_size=16, lr=0.01, momentum=0.9, seed=0)
    return net, born_dead


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    epochs, n_seeds = (200, 6) if args.quick else (1000, 20)
    x = np.linspace(0.0, 1.0, 201)[:, None]
    y = x[:, 0] ** 2
    say(
        f"Fitting y = x² on {len(x)} points of [0, 1] with a 1-64-1 network, leaky-ReLU "
        f"hidden layer, MSE, mini-batches of 16, lr=0.01, momentum 0.9, {epochs} epochs; "
        f"the same {n_seeds} initial seeds for both output activations."
    )

    final = {}
    nets = {}
    born_dead = 0
    for output in ("relu", "identity"):
        losses = []
        for seed in range(n_seeds):
            net, dead = train(output, seed, x, y, epochs)
            born_dead += dead and output == "relu"
            losses.append(net.loss(x, y))
            if seed in SHOWN_SEEDS:
                nets[output, seed] = net
        final[output] = np.array(losses)

    relu, identity = final["relu"], final["identity"]
    stuck = relu > 0.1
    print()
    text = f"ReLU output: {int(stuck.sum())} of {n_seeds} seeds never learn anything"
    if stuck.any():
        died = int(stuck.sum()) - born_dead
        text += (
            f": the loss stays at {relu[stuck].max():.4f} = mean(x⁴) and the prediction is 0 "
            f"for every x. {born_dead} of them output 0 on all of (0, 1] before the first "
            "step" + (f"; {died} died during training." if died else ".")
        )
    if not stuck.all():
        text += f" The others reach a median MSE of {np.median(relu[~stuck]):.2g}."
    say(text)
    for seed in SHOWN_SEEDS:
        if seed < n_seeds:
            prediction = nets["relu", seed].predict(x)
            frozen = np.mean(prediction <= 0)
            say(
                f"seed {seed}: the ReLU output is exactly 0 on {frozen:.0%} of the points; "
                "there its gradient is zero, so those points no longer pull on the weights.",
                indent=2,
            )
    fitted = int((identity < 1e-3).sum())
    share = (
        f"every one of the {n_seeds} seeds fits"
        if fitted == n_seeds
        else (f"{fitted} of {n_seeds} seeds fit")
    )
    say(
        f"Identity output: {share} (MSE below 1e-3), median MSE "
        f"{np.median(identity):.2g}, worst {identity.max():.2g}."
    )
    say(
        "Conclusion: keep the output layer linear for regression (output='identity'); put "
        "the non-linearity in the hidden layers."
    )

    plt = pyplot()
    if plt is not None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        left.plot(x[:, 0], y, "k-", linewidth=4, alpha=0.25, label="target x²")
        for (output, seed), net in nets.items():
            style = {"relu": "--", "identity": "-"}[output]
            color = f"C{SHOWN_SEEDS.index(seed)}"
            label = f"{output} output, seed {seed}"
            left.plot(x[:, 0], net.predict(x), style, color=color, label=label)
        left.set_xlabel("x")
        left.set_ylabel("prediction")
        left.set_title("Fits: a ReLU output is stuck at 0 where it went negative")
        left.legend()
        for column, output in enumerate(("relu", "identity")):
            spread = np.full(n_seeds, column) + np.linspace(-0.2, 0.2, n_seeds)
            right.plot(spread, final[output], "o", color=f"C{column + 2}", alpha=0.7)
        right.set_xticks([0, 1], ["ReLU output", "identity output"])
        right.set_xlim(-0.6, 1.6)
        right.set_yscale("log")
        right.set_ylabel(f"final MSE after {epochs} epochs")
        right.set_title(f"Final loss of {n_seeds} seeds (one dot each)")
        for ax in (left, right):
            ax.grid(True, alpha=0.3)
        save_figure(fig, "02_fitting_x_squared.png", "Fitting x² with a 1-64-1 leaky-ReLU network")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
