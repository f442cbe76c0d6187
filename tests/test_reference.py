"""The numpy backend, the oracle of the kernels, against the conventions written out."""

from __future__ import annotations

import numpy as np
import pytest

import nnjit


def test_two_layer_network_by_hand():
    """A 2-2-1 tanh network on two samples, every quantity written out."""
    net = nnjit.Network([2, 2, 1], "tanh", "identity", "mse", backend="numpy")
    W1, b1 = np.array([[0.1, -0.2], [0.3, 0.4]]), np.array([0.05, -0.05])
    W2, b2 = np.array([[0.7], [-0.6]]), np.array([0.2])
    net.params = np.r_[W1.ravel(), b1, W2.ravel(), b2]
    X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    y = np.array([0.5, -0.5])

    H = np.tanh(X @ W1 + b1)
    out = H @ W2 + b2
    err = out[:, 0] - y
    loss = np.mean(err**2) + 0.5 * 0.1 * ((W1**2).sum() + (W2**2).sum())
    dout = (2 * err / 2)[:, None]
    dW2 = H.T @ dout + 0.1 * W2
    db2 = dout.sum(axis=0)
    dH = dout @ W2.T * (1 - H**2)
    dW1 = X.T @ dH + 0.1 * W1
    db1 = dH.sum(axis=0)

    value, grad = net.loss_and_grad(net.params, X, y, l2=0.1)
    assert value == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(grad, np.r_[dW1.ravel(), db1, dW2.ravel(), db2], rtol=1e-13)
    np.testing.assert_allclose(net.forward(X), out, rtol=1e-14)


def test_integer_labels_are_one_hot_rows():
    net = nnjit.Network([2, 3], output="softmax", loss="cross_entropy", backend="numpy", seed=0)
    X = np.array([[0.5, -1.0], [1.0, 2.0]])
    labels = np.array([2, 0])
    assert net.loss(X, labels) == net.loss(X, np.eye(3)[labels])
    Z = X @ net.weights[0] + net.biases[0]
    log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    assert net.loss(X, labels) == pytest.approx(-log_p[[0, 1], labels].mean(), rel=1e-14)
