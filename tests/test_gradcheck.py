"""Analytic gradients of both backends against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ARCHITECTURES, BACKENDS, make_problem

import nnjit


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
