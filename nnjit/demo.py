"""``python -m nnjit demo``: train on data that needs no download, on both backends."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from nnjit.data import digits, spiral
from nnjit.network import Network


def _accuracy(net: Network, X: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(net.forward(X).argmax(axis=1) == labels))


def _compare(title: str, make, fit_args: dict, train, test) -> None:
    """Train one network per backend; ``train`` and ``test`` are (X, targets, labels)."""
    print(f"\n{title}")
    rows = []
    for backend in ("numba", "numpy"):
        net = make(backend)
        start = time.perf_counter()
        history = net.fit(train[0], train[1], verbose=True, **fit_args)
        total = time.perf_counter() - start
        per_epoch = statistics.median(history.epoch_time)
        rows.append(
            (
                backend,
                _accuracy(net, train[0], train[2]),
                _accuracy(net, test[0], test[2]),
                per_epoch,
                total,
            )
        )
    print(f"  {'backend':8} {'train acc':>9} {'test acc':>9} {'s/epoch':>10} {'total s':>8}")
    for backend, train_acc, test_acc, per_epoch, total in rows:
        print(f"  {backend:8} {train_acc:9.3f} {test_acc:9.3f} {per_epoch:10.5f} {total:8.2f}")
    speedup = rows[1][3] / rows[0][3]
    print(f"  numba is {speedup:.1f}x faster per epoch than numpy (medians over epochs)")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m nnjit demo", description=__doc__)
    parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    args = parser.parse_args(argv)

    print("nnjit demo: the same networks trained by the compiled kernels (numba) and by")
    print("plain NumPy. The first run compiles the kernels (cached on disk afterwards);")
    print("the per-epoch figures are medians, so compilation does not count.")

    X, y = spiral(n_per_class=200, seed=0)
    order = np.random.default_rng(1).permutation(len(X))
    X, y = X[order], y[order]
    split = int(0.8 * len(X))
    _compare(
        "3-class spiral (600 generated points): 2-100-3, ReLU, softmax cross-entropy, L2",
        lambda backend: Network(
            [2, 100, 3], "relu", "softmax", "cross_entropy", seed=0, backend=backend
        ),
        {
            "epochs": args.epochs or 100,
            "batch_size": 32,
            "lr": 0.5,
            "momentum": 0.9,
            "l2": 1e-4,
            "seed": 0,
        },
        (X[:split], y[:split], y[:split]),
        (X[split:], y[split:], y[split:]),
    )
    try:
        X_train, y_train, X_test, y_test = digits(seed=0)
    except ImportError:
        print(
            "\nscikit-learn is not installed: skipping the digits part (pip install scikit-learn)"
        )
        return 0
    _compare(
        "8x8 digits (scikit-learn's bundled set): Nielsen's 64-30-10, sigmoid, MSE, mini-batch 10",
        lambda backend: Network([64, 30, 10], "sigmoid", "sigmoid", "mse", seed=0, backend=backend),
        {"epochs": args.epochs or 30, "batch_size": 10, "lr": 3.0, "seed": 0},
        (X_train, np.eye(10)[y_train], y_train),
        (X_test, np.eye(10)[y_test], y_test),
    )
    return 0
