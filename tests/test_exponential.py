"""exp_nonpositive against NumPy's exp, to the unit in the last place."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from nnjit._config import FASTMATH
from nnjit.exponential import exp_nonpositive


@njit(fastmath=FASTMATH)
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = exp_nonpositive(x[i])


def _exp(x):
    out = np.empty_like(x)
    _exp_all(x, out)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_within_one_unit_in_the_last_place(dtype):
    lowest = -700.0 if dtype == np.float64 else -85.0
    x = -np.concatenate(
        [
            np.linspace(0, 1, 20001),
            np.linspace(0, -lowest, 20001),
            np.geomspace(1e-12, -lowest, 20001),
        ]
    ).astype(dtype)
    exact = np.exp(x.astype(np.longdouble))
    ulp = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    error = np.abs(_exp(x).astype(np.longdouble) - exact) / ulp
    assert error.max() <= 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_special_values(dtype):
    x = np.array([0.0, -0.0, -np.inf, -1e4, np.nan], dtype=dtype)
    out = _exp(x)
    np.testing.assert_array_equal(out[:4], [1, 1, 0, 0])
    assert np.isnan(out[4])  # the divergence guard needs NaN to pass through


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_results_are_exact_or_zero(dtype):
    tiny = np.finfo(dtype).tiny
    x = -np.linspace(60, 1000, 2001).astype(dtype)
    out = _exp(x)
    assert np.all(out >= 0)
    np.testing.assert_allclose(
        out, np.exp(x.astype(np.float64)), rtol=4 * np.finfo(dtype).eps, atol=2 * tiny
    )
