"""Forward and backward through whole networks: the compiled kernels against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ARCHITECTURES, assert_close, make_problem, twin

from nnjit.layout import build_layout
from nnjit.propagation import weight_penalty
from nnjit.reference import weight_penalty as numpy_weight_penalty


@pytest.mark.parametrize(("hidden", "output", "loss"), ARCHITECTURES)
def test_loss_and_grad_match_numpy(hidden, output, loss, dtype):
    net, X, y = make_problem(hidden, output, loss, dtype=dtype)
    reference = twin(net, "numpy")
    value, grad = net.loss_and_grad(net.params, X, y, l2=0.03)
    expected_value, expected_grad = reference.loss_and_grad(net.params, X, y, l2=0.03)
    assert grad.dtype == net.dtype
    assert_close(value, expected_value, dtype)
    assert_close(grad, expected_grad, dtype)
    assert_close(net.forward(X), reference.forward(X), dtype)
    assert_close(net.loss(X, y, l2=0.03), value, dtype)


@pytest.mark.parametrize(
    ("sizes", "n"),
    [
        ((4, 6, 5, 3), 1),  # batch size 1
        ((5, 7, 1), 11),  # one output
        ((5, 1), 4),  # no hidden layer
        ((30, 40, 20), 64),  # BLAS-sized products
        ((64, 128, 128, 10), 300),  # parallel row blocks
        ((200, 160, 96, 3), 10),  # blocks over the inputs
    ],
)
def test_shapes_match_numpy(sizes, n, dtype):
    output, loss = ("softmax", "cross_entropy") if sizes[-1] > 1 else ("identity", "mse")
    net, X, y = make_problem("relu", output, loss, sizes=sizes, n=n, dtype=dtype)
    value, grad = net.loss_and_grad(net.params, X, y, l2=0.1)
    expected_value, expected_grad = twin(net, "numpy").loss_and_grad(net.params, X, y, l2=0.1)
    assert_close(value, expected_value, dtype, factor=10)
    assert_close(grad, expected_grad, dtype, factor=10)


def test_loss_and_grad_leave_the_model_alone(backend):
    net, X, y = make_problem(backend=backend)
    before = net.params.copy()
    other = before + 0.1
    value, _grad = net.loss_and_grad(other, X, y)
    np.testing.assert_array_equal(net.params, before)
    net.params = other
    assert value == net.loss(X, y)


def test_weight_penalty_counts_weights_only(dtype):
    layout = build_layout([3, 4, 2], "relu", "identity", "mse")
    params = np.arange(layout.n_params, dtype=dtype) / 10
    weights, _ = layout.views(params)
    expected = 0.5 * 0.2 * sum(float((W.astype(np.float64) ** 2).sum()) for W in weights)
    assert weight_penalty(params, layout.table, np.dtype(dtype).type(0.2)) == pytest.approx(
        expected, rel=1e-6
    )
    assert numpy_weight_penalty(layout, params, 0.2) == pytest.approx(expected, rel=1e-6)
