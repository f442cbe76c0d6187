"""Compiled activations and their derivatives against the numpy backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close

from nnjit import reference
from nnjit.activations import (
    ACTIVATIONS,
    HIDDEN_ACTIVATIONS,
    activate,
    activate_rows,
    derivative_rows,
)


def _inputs(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((7, 5)) * 3
    Z[0] = [-1000.0, -30.0, 0.0, 30.0, 1000.0]  # exp would overflow without care
    Z[1] = [-1e-3, 1e-3, -0.5, 0.5, 0.0]
    return Z.astype(dtype)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_matches_numpy(name, dtype):
    Z = _inputs(dtype)
    expected = reference.ACTIVATIONS[name](Z.astype(np.float64))
    out = Z.copy()
    with np.errstate(all="raise"):
        activate(out, ACTIVATIONS[name])
    assert out.dtype == Z.dtype
    assert np.isfinite(out).all()
    assert_close(out, expected, dtype)


def test_softmax_rows_sum_to_one_at_extreme_logits(dtype):
    Z = _inputs(dtype)
    activate(Z, ACTIVATIONS["softmax"])
    assert_close(Z.sum(axis=1), np.ones(len(Z)), dtype)
    assert Z[0, -1] == 1  # a logit 1000 above the others takes everything


def test_sigmoid_saturates_without_overflow():
    Z = np.array([[-1000.0, 1000.0, 0.0]])
    activate(Z, ACTIVATIONS["sigmoid"])
    np.testing.assert_array_equal(Z, [[0.0, 1.0, 0.5]])


def test_leaky_relu_slope():
    Z = np.array([[-2.0, 3.0]])
    activate(Z, ACTIVATIONS["leaky_relu"])
    np.testing.assert_array_equal(Z, [[-0.02, 3.0]])


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_derivative_matches_numpy(name, dtype):
    A = _inputs(dtype)
    activate(A, ACTIVATIONS[name])
    G = np.random.default_rng(2).standard_normal(A.shape).astype(dtype)
    expected = G.astype(np.float64) * reference.DERIVATIVES[name](A.astype(np.float64))
    out = G.copy()
    derivative_rows(out, A, 0, A.shape[0], ACTIVATIONS[name])
    assert_close(out, expected, dtype)


@pytest.mark.parametrize("name", HIDDEN_ACTIVATIONS)
def test_derivative_from_output_matches_finite_differences(name):
    # Points away from the kink at 0, where ReLU's derivative is undefined.
    z = np.array([-2.0, -0.7, -0.1, 0.2, 0.9, 2.5])
    eps = 1e-6
    f = reference.ACTIVATIONS[name]
    numeric = (f(z + eps) - f(z - eps)) / (2 * eps)
    a = z[None].copy()
    activate(a, ACTIVATIONS[name])
    d = np.ones_like(a)
    derivative_rows(d, a, 0, 1, ACTIVATIONS[name])
    np.testing.assert_allclose(d[0], numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_a_range_of_rows_alone(name, dtype):
    # The rows lo:hi are one run of values; the others must not move.
    Z = _inputs(dtype)
    whole = Z.copy()
    activate(whole, ACTIVATIONS[name])
    part = Z.copy()
    activate_rows(part, 2, 5, ACTIVATIONS[name])
    np.testing.assert_array_equal(part[2:5], whole[2:5])
    np.testing.assert_array_equal(part[:2], Z[:2])
    np.testing.assert_array_equal(part[5:], Z[5:])
    if name == "softmax":
        return
    G = np.random.default_rng(3).standard_normal(Z.shape).astype(dtype)
    full = G.copy()
    derivative_rows(full, whole, 0, len(Z), ACTIVATIONS[name])
    some = G.copy()
    derivative_rows(some, whole, 2, 5, ACTIVATIONS[name])
    np.testing.assert_array_equal(some[2:5], full[2:5])
    np.testing.assert_array_equal(some[:2], G[:2])
    np.testing.assert_array_equal(some[5:], G[5:])


def test_nan_passes_through():
    # The divergence guard relies on NaN surviving every activation.
    for name, code in ACTIVATIONS.items():
        Z = np.array([[np.nan, 1.0]])
        activate(Z, code)
        assert np.isnan(Z[0, 0]), name
