"""Small data sets that need no download."""

from __future__ import annotations

import numpy as np


def spiral(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The classic interleaved spirals in the plane (cs231n's toy classification set).

    Parameters
    ----------
    n_per_class : int, default 100
    n_classes : int, default 3
    noise : float, default 0.2
        Standard deviation of the noise added to the angle.
    seed : int, optional

    Returns
    -------
    X : ndarray, shape (n_per_class * n_classes, 2)
    y : ndarray of int64, shape (n_per_class * n_classes,)
    """
    rng = np.random.default_rng(seed)
    X = np.empty((n_per_class * n_classes, 2))
    y = np.repeat(np.arange(n_classes), n_per_class)
    radius = np.linspace(0.0, 1.0, n_per_class)
    for k in range(n_classes):
        angle = np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class)
        angle += rng.normal(0.0, noise, n_per_class)
        rows = slice(k * n_per_class, (k + 1) * n_per_class)
        X[rows, 0] = radius * np.sin(angle)
        X[rows, 1] = radius * np.cos(angle)
    return X, y


def digits(
    test_size: float = 0.25, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1] and split at random.

    Returns
    -------
    X_train, y_train, X_test, y_test
        Inputs of shape ``(n, 64)`` and integer labels 0..9.

    Raises
    ------
    ImportError
        If scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install scikit-learn"
        ) from None
    bunch = load_digits()
    X = bunch.data / 16.0
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = round(test_size * len(X))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]
