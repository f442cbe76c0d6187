"""Analytic gradients of both backends against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ARCHITECTURES, BACKENDS, make_problem

import nnjit
from nnjit.dense import blocks_here, split_count


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("hidden", "output", "loss"), ARCHITECTURES)
def test_every_architecture(hidden, output, loss, backend):
    net, X, y = make_problem(hidden, output, loss, backend=backend, n=7)
    assert nnjit.gradcheck(net, X, y, l2=0.05) < 2e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_networks_are_checked_in_float64(backend):
    net, X, y = make_problem(
        "sigmoid", "softmax", "cross_entropy", dtype="float32", backend=backend
    )
    assert nnjit.gradcheck(net, X, y) < 1e-3


def test_batch_of_one_and_single_output():
    net, X, y = make_problem("tanh", "identity", "mse", sizes=(3, 5, 1), n=1)
    assert nnjit.gradcheck(net, X, y[:, 0], l2=0.1) < 2e-5


def test_catches_a_wrong_gradient(monkeypatch):
    net, X, y = make_problem("tanh", "softmax", "cross_entropy")
    assert nnjit.gradcheck(net, X, y) < 2e-5
    right = type(net).loss_and_grad

    def flipped(self, params, X, y, l2=0.0):
        value, grad = right(self, params, X, y, l2)
        grad[:3] = -grad[:3]  # a sign error in the first layer's weights
        return value, grad

    monkeypatch.setattr(type(net), "loss_and_grad", flipped)
    assert nnjit.gradcheck(net, X, y) > 0.1


def test_leaves_the_network_unchanged():
    net, X, y = make_problem()
    before = net.params.copy()
    nnjit.gradcheck(net, X, y)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_first_layer_split_over_its_inputs_with_few_rows(dtype):
    """32 samples through a 128 x 256 first layer: large enough for row blocks, split over
    its inputs instead (``nnjit.dense.split_blocks``); central differences in float64 at
    a sample of the parameters, the first layer's among them."""
    blocks = blocks_here()
    assert split_count(32, 128, 256, blocks, True) == min(blocks, 128 // 64)
    net, X, y = make_problem("relu", "softmax", "cross_entropy", sizes=(128, 256, 3), n=32)
    net64 = nnjit.Network([128, 256, 3], "relu", "softmax", "cross_entropy", dtype="float64")
    params = net.params.copy()
    low = nnjit.Network([128, 256, 3], "relu", "softmax", "cross_entropy", dtype=dtype)
    low.params = params.astype(dtype)
    Xl = X.astype(dtype)
    _, grad = low.loss_and_grad(low.params, Xl, y, l2=0.01)
    exact = low.params.astype(np.float64)
    indices = np.random.default_rng(0).choice(net.n_params, 40, replace=False)
    indices[:10] = np.arange(10)  # the first layer's first weights
    scale = np.abs(grad).max()
    for i in indices:
        eps = 1e-5 * max(1.0, abs(exact[i]))
        up, down = exact.copy(), exact.copy()
        up[i] += eps
        down[i] -= eps
        net64.params = up
        plus = net64.loss(Xl.astype(np.float64), y, l2=0.01)
        net64.params = down
        minus = net64.loss(Xl.astype(np.float64), y, l2=0.01)
        numeric = (plus - minus) / (2 * eps)
        tolerance = 1e-6 if dtype == "float64" else 1e-3
        assert abs(grad[i] - numeric) <= tolerance * max(scale, abs(numeric)), i
