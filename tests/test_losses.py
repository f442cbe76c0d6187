"""The compiled output layer (losses and output deltas) against the numpy backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OUTPUT_LOSS_PAIRS, assert_close, make_targets

from nnjit import reference
from nnjit.activations import ACTIVATIONS, activate
from nnjit.layout import build_layout
from nnjit.losses import LOSSES, output_delta
from nnjit.validation import check_targets


def _compiled(layout, Z, Y):
    A = Z.copy()
    activate(A, ACTIVATIONS[layout.output])
    dZ = np.empty_like(Z)
    row_loss = np.empty(len(Z))
    row_correct = np.empty(len(Z), dtype=np.int64)
    mean = output_delta(
        LOSSES[layout.loss], ACTIVATIONS[layout.output], Z, A, Y, dZ, row_loss, row_correct
    )
    return mean, row_loss, dZ, row_correct, A


@pytest.mark.parametrize(("output", "loss"), OUTPUT_LOSS_PAIRS)
@pytest.mark.parametrize("n_out", [1, 4])
def test_output_delta_matches_numpy(output, loss, n_out, dtype):
    if output == "softmax" and n_out == 1:
        pytest.skip("a softmax over one output is constant")
    layout = build_layout([3, n_out], "relu", output, loss)
    rng = np.random.default_rng(n_out)
    Z = (rng.standard_normal((9, n_out)) * 2).astype(dtype)
    Y = check_targets(make_targets(output, loss, 9, n_out, rng), layout, 9, np.dtype(dtype))
    mean, row_loss, dZ, row_correct, A = _compiled(layout, Z, Y)

    Z64, Y64 = Z.astype(np.float64), Y.astype(np.float64)
    A64 = reference.ACTIVATIONS[output](Z64)
    expected_rows = reference.row_losses(layout, Z64, A64, Y64)
    assert_close(row_loss, expected_rows, dtype)
    assert_close(mean, expected_rows.mean(), dtype)
    assert_close(dZ, reference.output_delta(layout, A64, Y64), dtype)
    if layout.is_classifier:
        np.testing.assert_array_equal(row_correct, reference.correct_rows(layout, A, Y))


def test_losses_by_their_definitions():
    """The three losses written out from their textbook definitions."""
    Z = np.array([[0.5, -1.0], [2.0, 0.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])

    layout = build_layout([2, 2], "relu", "identity", "mse")
    mean, *_ = _compiled(layout, Z, Y)
    assert mean == pytest.approx(((0.5 - 1) ** 2 + 1 + 4 + 1) / 2, rel=1e-15)

    layout = build_layout([2, 2], "relu", "softmax", "cross_entropy")
    mean, _, dZ, *_ = _compiled(layout, Z, Y)
    p0 = np.exp(0.5) / (np.exp(0.5) + np.exp(-1.0))
    p1 = np.exp(0.0) / (np.exp(2.0) + np.exp(0.0))
    assert mean == pytest.approx(-(np.log(p0) + np.log(p1)) / 2, rel=1e-14)
    np.testing.assert_allclose(dZ, [[(p0 - 1) / 2, (1 - p0) / 2], [(1 - p1) / 2, (p1 - 1) / 2]])

    layout = build_layout([2, 2], "relu", "sigmoid", "cross_entropy")
    mean, _, dZ, *_ = _compiled(layout, Z, Y)
    s = 1 / (1 + np.exp(-Z))
    bce = -(Y * np.log(s) + (1 - Y) * np.log(1 - s)).sum(axis=1).mean()
    assert mean == pytest.approx(bce, rel=1e-14)
    np.testing.assert_allclose(dZ, (s - Y) / 2, rtol=1e-14)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_cross_entropy_is_finite_at_saturated_logits(output, dtype):
    layout = build_layout([2, 3], "relu", output, "cross_entropy")
    Z = np.array([[800.0, -800.0, 0.0], [-800.0, 800.0, 0.0]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    _mean, row_loss, dZ, *_ = _compiled(layout, Z, Y)
    assert np.isfinite(row_loss).all() and np.isfinite(dZ).all()
    # The first row is confidently wrong by 1600 in the logits; sigmoid adds log 2
    # for the third output, which sits at 0.
    extra = np.log(2) if output == "sigmoid" else 0.0
    assert row_loss[0] == pytest.approx(1600.0 + extra, rel=1e-6)
    assert row_loss[1] == pytest.approx(0.0 if output == "softmax" else np.log(2), abs=1e-6)


def test_softmax_cross_entropy_with_probability_rows():
    layout = build_layout([2, 3], "relu", "softmax", "cross_entropy")
    Z = np.array([[1.0, 2.0, 3.0]])
    Y = np.array([[0.2, 0.3, 0.5]])
    mean, _, dZ, *_ = _compiled(layout, Z, Y)
    log_p = Z - np.log(np.exp(Z).sum())
    assert mean == pytest.approx(-(Y * log_p).sum(), rel=1e-14)
    np.testing.assert_allclose(dZ, np.exp(log_p) - Y, rtol=1e-13)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_binary_cross_entropy_of_a_confident_right_answer_is_not_cancelled(backend):
    import nnjit

    net = nnjit.Network([1, 1], output="sigmoid", loss="cross_entropy", backend=backend)
    net.params = [1.0, 0.0]
    for z in (20.0, 40.0, 300.0):
        assert net.loss([[z]], [1]) == pytest.approx(np.log1p(np.exp(-z)), rel=1e-14)
        assert net.loss([[-z]], [0]) == pytest.approx(np.log1p(np.exp(-z)), rel=1e-14)
