"""Data sets that need no download."""

from __future__ import annotations

import numpy as np
import pytest

from nnjit.data import digits, spiral


def test_spiral():
    X, y = spiral(n_per_class=50, n_classes=4, seed=1)
    assert X.shape == (200, 2) and y.shape == (200,)
    np.testing.assert_array_equal(np.bincount(y), [50] * 4)
    assert np.abs(X).max() <= 1.0 + 1e-12
    np.testing.assert_array_equal(spiral(50, 4, seed=1)[0], X)
    assert not np.array_equal(spiral(50, 4, seed=2)[0], X)


def test_digits():
    pytest.importorskip("sklearn")
    X_train, y_train, X_test, _ = digits(test_size=0.25, seed=0)
    assert X_train.shape[1] == X_test.shape[1] == 64
    assert len(X_train) + len(X_test) == 1797
    assert len(X_test) == round(0.25 * 1797)
    assert 0 <= X_train.min() and X_train.max() <= 1
    assert set(np.unique(y_train)) == set(range(10))
