"""A two-layer softmax classifier (cs231n's TwoLayerNet) on the spiral data.

The classic exercise: classify three interleaved spirals in the plane with a
linear softmax classifier (about 50 % accuracy, since no straight boundary
follows a spiral), then with a two-layer network: ReLU hidden layer, softmax
cross-entropy, L2 regularisation, learning-rate decay per epoch, and a
validation set.  Hand-written versions go wrong in familiar ways: ``exp`` of
large scores overflows to ``nan`` unless the row maximum is subtracted first,
the regularisation gradient misses its factor 2 (cs231n's loss is
``reg * sum(W**2)``, whose gradient is ``2 * reg * W``), or the loss is summed
instead of averaged and the learning rate that worked stops working.

nnjit computes the loss stably from the logits and defines L2 as
``(l2/2) * sum(W**2)``: cs231n's ``reg`` is ``l2 = 2 * reg``.

Run ``python 05_two_layer_net_spiral.py`` (or with ``--quick``).
"""

from __future__ import annotations

import numpy as np
from _common import epoch_axes, parse_args, pyplot, save_figure, say

import nnjit
from nnjit.data import spiral

HIDDEN = 100
REG = 1e-3  # cs231n's regularisation strength


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    epochs = 20 if args.quick else 100
    X, y = spiral(n_per_class=200, seed=0)
    X_val, y_val = spiral(n_per_class=100, seed=1)  # the same spirals, fresh noise
    fit_args = {
        "epochs": epochs,
        "batch_size": 32,
        "lr": 1.0,
        "lr_decay": 0.97,
        "l2": 2 * REG,
        "seed": 0,
        "validation_data": (X_val, y_val),
    }
    say(
        f"{len(X)} training and {len(X_val)} validation points of 3 spirals. SGD, "
        f"mini-batches of 32, lr=1.0 times 0.97 per epoch, {epochs} epochs, cs231n reg={REG:g} "
        f"(nnjit l2={2 * REG:g})."
    )

    linear = nnjit.Network([2, 3], output="softmax", loss="cross_entropy", seed=0)
    linear.fit(X, y, **fit_args)
    net = nnjit.Network(
        [2, HIDDEN, 3], hidden="relu", output="softmax", loss="cross_entropy", seed=0
    )
    history = net.fit(X, y, **fit_args)
    print()
    say(
        f"Linear softmax classifier [2, 3]: validation accuracy {linear.score(X_val, y_val):.1%}."
        " One straight boundary per class cannot follow a spiral."
    )
    say(
        f"Two-layer net [2, {HIDDEN}, 3]: training loss {history.loss[0]:.3f} -> "
        f"{history.loss[-1]:.3f}, training accuracy {history.accuracy[-1]:.1%}, "
        f"validation accuracy {history.val_accuracy[-1]:.1%} "
        f"(validation loss {history.val_loss[-1]:.3f}); "
        f"{sum(history.epoch_time):.2f} s of training."
    )
    gap = history.accuracy[-1] - history.val_accuracy[-1]
    say(
        f"Training and validation accuracy differ by {abs(gap):.1%}: with L2 the network does "
        "not overfit the noise of the training spirals."
    )

    plt = pyplot()
    if plt is not None:
        fig, (ax_loss, ax_acc, ax_map) = plt.subplots(1, 3, figsize=(15, 4.5))
        epoch = np.arange(1, len(history.loss) + 1)
        ax_loss.plot(epoch, history.loss, label="training")
        ax_loss.plot(epoch, history.val_loss, label="validation")
        ax_loss.set_ylabel("loss (cross-entropy + L2)")
        ax_loss.set_title("Loss")
        ax_acc.plot(epoch, history.accuracy, label="training")
        ax_acc.plot(epoch, history.val_accuracy, label="validation")
        ax_acc.set_ylabel("accuracy")
        ax_acc.set_title("Accuracy")
        epoch_axes(ax_loss, ax_acc)

        grid = np.linspace(-1.1, 1.1, 300)
        gx, gy = np.meshgrid(grid, grid)
        regions = net.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
        ax_map.contourf(
            gx, gy, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=["C0", "C1", "C2"], alpha=0.3
        )
        for label in range(3):
            rows = y == label
            ax_map.scatter(*X[rows].T, s=10, color=f"C{label}", label=f"class {label}")
        ax_map.set_xlabel("x0")
        ax_map.set_ylabel("x1")
        ax_map.set_aspect("equal")
        ax_map.set_title("Decision regions and training points")
        ax_map.legend(loc="lower right", fontsize="small")
        save_figure(
            fig,
            "05_two_layer_net_spiral.png",
            f"cs231n's two-layer net [2, {HIDDEN}, 3] on the spiral data",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
