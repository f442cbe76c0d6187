"""From your NumPy loop to nnjit: the same numbers, epoch by epoch, and the time of each.

The classic situation: a from-scratch network works, written the way every
tutorial writes it (``X @ W + b``, explicit backprop, a Python loop over
mini-batches), and now it is too slow, or it is to be replaced by a library
whose numbers nobody can check against the old ones.  Most libraries define
the loss, the regularisation and the momentum step slightly differently, so the
curves never quite match and it is unclear whether anything is wrong.

nnjit's definitions are plain and exact: the loss is the per-sample loss
summed over the outputs and averaged over the batch, momentum is
``v <- mu v + g; p <- p - lr v``, and ``History.loss`` is the mean over the
epoch of the mini-batch losses seen before each step, which is what a
hand-written loop prints.  Start both from the same weights, feed the batches in
the same order (``shuffle=False``) and the losses agree to rounding, epoch by
epoch, on both backends.  (They do as long as training is stable: with a rate
so large that the loss jumps up and down, any two implementations, or the same
one on another machine, drift apart once rounding differences are amplified.)

Run ``python 09_numpy_loop_to_nnjit.py`` (or with ``--quick``).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from _common import parse_args, pyplot, save_figure, say

import nnjit
from nnjit.data import spiral

SIZES = [2, 100, 3]
BATCH, LR, MOMENTUM = 32, 0.1, 0.9


def numpy_training_loop(
    params: list[np.ndarray], X: np.ndarray, y: np.ndarray, epochs: int
) -> tuple[list[float], list[float]]:
    """A ReLU / softmax network trained as users write it; ``params`` = [W1, b1, W2, b2].

    Returns the mean mini-batch loss of each epoch and the seconds each epoch took.
    """
    W1, b1, W2, b2 = params
    velocities = [np.zeros_like(p) for p in params]
    N = X.shape[0]
    losses, seconds = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        total = 0.0
        for first in range(0, N, BATCH):
            Xb, yb = X[first : first + BATCH], y[first : first + BATCH]
            n = Xb.shape[0]
            # forward
            Z1 = Xb @ W1 + b1
            A1 = np.maximum(Z1, 0)
            Z2 = A1 @ W2 + b2
            Z2 = Z2 - Z2.max(axis=1, keepdims=True)
            log_probs = Z2 - np.log(np.exp(Z2).sum(axis=1, keepdims=True))
            loss = -log_probs[np.arange(n), yb].mean()
            # backward
            dZ2 = np.exp(log_probs)
            dZ2[np.arange(n), yb] -= 1
            dZ2 /= n
            dW2 = A1.T @ dZ2
            db2 = dZ2.sum(axis=0)
            dZ1 = (dZ2 @ W2.T) * (Z1 > 0)
            dW1 = Xb.T @ dZ1
            db1 = dZ1.sum(axis=0)
            # SGD with momentum
            for p, v, g in zip(params, velocities, (dW1, db1, dW2, db2), strict=True):
                v *= MOMENTUM
                v += g
                p -= LR * v
            total += loss * n
        losses.append(total / N)
        seconds.append(time.perf_counter() - start)
    return losses, seconds


def time_epochs(X: np.ndarray, y: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """Wall-clock seconds of single epochs of each contender, taken in turns.

    Taking the contenders in turns, rather than one after the other, spreads any
    change in the load of a shared machine evenly over them.
    """
    user_params = [p.copy() for p in start_params()]
    nets = {
        f"nnjit {backend}": nnjit.Network(
            SIZES, "relu", "softmax", "cross_entropy", seed=0, backend=backend
        )
        for backend in ("numpy", "numba")
    }
    fit_args = {"epochs": 1, "batch_size": BATCH, "lr": LR, "momentum": MOMENTUM}
    for net in nets.values():
        net.fit(X, y, shuffle=False, **fit_args)  # warm-up: loads the compiled kernels
    seconds: dict[str, list[float]] = {"your NumPy loop": [], **{name: [] for name in nets}}
    for _ in range(repeats):
        seconds["your NumPy loop"].extend(numpy_training_loop(user_params, X, y, 1)[1])
        for name, net in nets.items():
            start = time.perf_counter()
            net.fit(X, y, shuffle=False, **fit_args)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def start_params() -> list[np.ndarray]:
    """[W1, b1, W2, b2] of the network nnjit starts from with ``seed=0``."""
    net = nnjit.Network(SIZES, "relu", "softmax", "cross_entropy", seed=0)
    return [net.weights[0], net.biases[0], net.weights[1], net.biases[1]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, __doc__)
    epochs = 3 if args.quick else 20
    X, y = spiral(n_per_class=1000, seed=0)
    order = np.random.default_rng(0).permutation(len(X))  # shuffle once, up front
    X, y = X[order], y[order]
    say(
        f"{len(X)} spiral points; network {SIZES}, ReLU, softmax cross-entropy; mini-batches "
        f"of {BATCH}, lr={LR}, momentum {MOMENTUM}, {epochs} epochs, batches in a fixed order."
    )

    user_params = [p.copy() for p in start_params()]
    user_losses, _ = numpy_training_loop(user_params, X, y, epochs)

    losses = {}
    for backend in ("numpy", "numba"):
        net = nnjit.Network(SIZES, "relu", "softmax", "cross_entropy", seed=0, backend=backend)
        history = net.fit(
            X, y, epochs=epochs, batch_size=BATCH, lr=LR, momentum=MOMENTUM, shuffle=False
        )
        losses[backend] = history.loss
        final_params = net.params

    print(f"\n  {'epoch':>5}  {'your NumPy loop':>18}  {'nnjit numpy':>18}  {'nnjit numba':>18}")
    for epoch in range(epochs):
        row = (user_losses[epoch], losses["numpy"][epoch], losses["numba"][epoch])
        print(f"  {epoch + 1:>5}  " + "  ".join(f"{value:18.15f}" for value in row))
    print()
    reference = np.array(user_losses)
    for backend in ("numpy", "numba"):
        difference = np.abs(np.array(losses[backend]) - reference) / np.abs(reference)
        say(f"max relative difference, your loop vs nnjit {backend}: {difference.max():.1e}")
    final = np.concatenate([p.ravel() for p in user_params])
    mirror = nnjit.Network(SIZES, "relu", "softmax", "cross_entropy")
    mirror.params = final_params
    gap = max(
        np.abs(a - b).max()
        for a, b in zip(
            user_params,
            (mirror.weights[0], mirror.biases[0], mirror.weights[1], mirror.biases[1]),
            strict=True,
        )
    )
    say(
        f"largest difference between the final weights of your loop and of nnjit's numba "
        f"backend: {gap:.1e} (weights of size up to {np.abs(final).max():.1f})."
    )

    repeats = 3 if args.quick else 9
    seconds = time_epochs(X, y, repeats)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print()
    say(
        "Time per epoch: whole-epoch wall-clock time on this machine, median of "
        f"{repeats} epochs each, taken in turns (a single-epoch fit call for nnjit):"
    )
    for name, value in medians.items():
        ratio = medians["your NumPy loop"] / value
        note = "" if name == "your NumPy loop" else f"   ({ratio:.1f}x the speed of your loop)"
        print(f"  {name:16} {value * 1e3:8.2f} ms{note}")
    say(
        "Both NumPy versions spend an epoch in Python and small-array overhead, call after "
        "call per mini-batch; nnjit's numpy backend is the readable reference, and does more "
        "bookkeeping per batch than your loop (it gathers the rows through the sample "
        "order, counts correct predictions for the accuracy and checks that the loss is "
        "finite). The numba backend runs the whole epoch in compiled code, with no Python "
        f"per mini-batch: {medians['your NumPy loop'] / medians['nnjit numba']:.1f}x the "
        "speed of your loop here."
    )

    plt = pyplot()
    if plt is not None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        epoch_numbers = np.arange(1, epochs + 1)
        left.plot(epoch_numbers, user_losses, "o-", markersize=8, label="your NumPy loop")
        left.plot(epoch_numbers, losses["numpy"], "s", markersize=5, label="nnjit numpy backend")
        left.plot(epoch_numbers, losses["numba"], "x", markersize=6, label="nnjit numba backend")
        left.set_yscale("log")
        left.xaxis.get_major_locator().set_params(integer=True)
        left.set_xlabel("epoch")
        left.set_ylabel("training loss (mean over the epoch)")
        left.set_title("The same losses, epoch by epoch")
        left.grid(True, alpha=0.3)
        left.legend()
        names = list(medians)
        bars = right.bar(names, [medians[n] * 1e3 for n in names], color=["C0", "C1", "C2"])
        right.bar_label(bars, fmt="%.2f ms")
        right.set_ylim(0, 1.15 * max(medians.values()) * 1e3)
        right.set_ylabel("median time per epoch (ms)")
        right.set_title("Whole-epoch time on this machine")
        save_figure(
            fig,
            "09_numpy_loop_to_nnjit.png",
            f"{SIZES} network on {len(X)} spiral points, mini-batches of {BATCH}",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
