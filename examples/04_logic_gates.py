"""Logic gates: why does my perceptron learn OR but not XOR?

The classic question: a single-layer perceptron (2 inputs, 1 sigmoid output)
learns OR in a few hundred steps, and the same code on XOR ends with every
output at 0.5.  Nothing is broken: one layer draws one straight line through
the plane, and no straight line puts (0, 1) and (1, 0) on one side and (0, 0)
and (1, 1) on the other.  The best a single layer can do under cross-entropy
is to answer 0.5 everywhere.  XOR needs a hidden layer.

Two more from-scratch traps show up here: weights initialised to zero (every
hidden unit computes the same thing and gets the same gradient, so the hidden
layer never does better than one unit; with tanh that gradient is exactly 0),
and a hidden layer of only 2 units, which solves XOR from some random starts
and gets stuck in a local minimum from others.

Run ``python 04_logic_gates.py`` (or with ``--quick``).
"""

from __future__ import annotations

import numpy as np
from _common import parse_args, pyplot, save_figure, say

import nnjit

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
GATES = {"OR": np.array([0, 1, 1, 1]), "XOR": np.array([0, 1, 1, 0])}
FIT = {"batch_size": 4, "lr": 0.5}


def gate(sizes: list[int], seed: int = 0, init: str | float = "auto") -> nnjit.Network:
    return nnjit.Network(
        sizes, hidden="tanh", output="sigmoid", loss="cross_entropy", init=init, seed=seed
    )


def truth_table(name: str, net: nnjit.Network, y: np.ndarray, loss: float) -> None:
    probabilities = net.forward(X)[:, 0]
    cells = "  ".join(
        f"{a:.0f}{b:.0f}->{p:.3f}" for (a, b), p in zip(X, probabilities, strict=True)
    )
    right = int((net.predict(X) == y).sum())
    print(f"   {name:30} {cells}   {right}/4 right, loss {loss:.3f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    epochs, n_seeds = (500, 5) if args.quick else (2000, 20)
    say(
        "Sigmoid output, cross-entropy, full batch (the 4 rows of the truth table), lr=0.5, "
        f"{epochs} epochs. P(output = 1) for each input:"
    )
    print()
    shown = {}
    cases = [
        ("OR, single layer [2, 1]", "OR", [2, 1], "auto"),
        ("XOR, single layer [2, 1]", "XOR", [2, 1], "auto"),
        ("XOR, hidden layer [2, 4, 1]", "XOR", [2, 4, 1], "auto"),
        ("XOR, [2, 4, 1] zero init", "XOR", [2, 4, 1], 0.0),
    ]
    for title, name, sizes, init in cases:
        net = gate(sizes, init=init)
        history = net.fit(X, GATES[name], epochs=epochs, **FIT)
        truth_table(title, net, GATES[name], history.loss[-1])
        shown[title] = net

    print()
    say(
        "A single layer learns OR, a linearly separable gate. On XOR its best answer is 0.5 "
        f"everywhere (loss ln 2 = {np.log(2):.3f}): one straight line cannot separate XOR. "
        "With a hidden layer of 4 tanh units XOR is learned. With all weights starting at 0 "
        "the same network stays at 0.5: every hidden unit is identical and, for tanh, "
        "gets exactly zero gradient."
    )
    solved = {}
    for width in (2, 4):
        solved[width] = 0
        for seed in range(n_seeds):
            net = gate([2, width, 1], seed=seed)
            net.fit(X, GATES["XOR"], epochs=epochs, **FIT)
            solved[width] += bool((net.predict(X) == GATES["XOR"]).all())
    say(
        f"Over {n_seeds} random starts, XOR is solved {solved[2]} times with 2 hidden units "
        f"and {solved[4]} times with 4: the smallest network that can represent XOR is not "
        "the easiest one to train."
    )

    plt = pyplot()
    if plt is not None:
        grid = np.linspace(-0.5, 1.5, 201)
        gx, gy = np.meshgrid(grid, grid)
        points = np.column_stack([gx.ravel(), gy.ravel()])
        titles = list(shown)[:3]
        fig, axes = plt.subplots(1, 3, figsize=(13, 4.8), sharey=True, layout="constrained")
        verdicts = ["learned", "stuck near 0.5 everywhere", "learned"]
        for ax, title, verdict in zip(axes, titles, verdicts, strict=True):
            probability = shown[title].forward(points)[:, 0].reshape(gx.shape)
            image = ax.contourf(gx, gy, probability, levels=np.linspace(0, 1, 11), cmap="RdBu_r")
            ax.contour(gx, gy, probability, levels=[0.5], colors="k", linewidths=1.5)
            y = GATES[title.split(",")[0]]
            for label, marker in ((0, "o"), (1, "s")):
                rows = y == label
                ax.scatter(
                    *X[rows].T,
                    marker=marker,
                    s=120,
                    c="white",
                    edgecolors="k",
                    label=f"target {label}",
                )
            ax.set_title(f"{title}:\n{verdict}")
            ax.set_xlabel("input a")
            ax.set_aspect("equal")
        axes[0].set_ylabel("input b")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
        fig.colorbar(image, ax=axes, label="P(output = 1)", shrink=0.85)
        save_figure(
            fig,
            "04_logic_gates.png",
            "Logic gates: P(output = 1) over the plane; black line at 0.5",
            tight=False,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
