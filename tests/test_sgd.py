"""The SGD / momentum / Nesterov update, checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKENDS

import nnjit
from nnjit.sgd import SGDConfig, sgd_step


def _steps(dtype, momentum, nesterov, decay, grads, params=(1.0, -2.0)):
    dt = np.dtype(dtype).type
    p = np.array(params, dtype=dtype)
    v = np.zeros_like(p)
    cfg = SGDConfig(dt(0.1), dt(momentum), nesterov, dt(decay))
    for g in grads:
        sgd_step(p, np.array(g, dtype=dtype), v, cfg, cfg.l2, 0, p.size)
    return p, v


def test_plain_step(dtype):
    p, _ = _steps(dtype, 0.0, False, 0.0, [[0.5, 1.0]])
    np.testing.assert_allclose(p, [0.95, -2.1], rtol=1e-6)


def test_plain_step_with_weight_decay(dtype):
    # g + l2 p = [0.5 + 0.1, 1.0 - 0.2]; p - 0.1 (g + l2 p) = [0.94, -2.08]
    p, _ = _steps(dtype, 0.0, False, 0.1, [[0.5, 1.0]])
    np.testing.assert_allclose(p, [0.94, -2.08], rtol=1e-6)


def test_momentum_two_steps(dtype):
    # v1 = g = [0.5, 1]; p1 = [0.95, -2.1]
    # v2 = 0.9 v1 + g = [0.95, 1.9]; p2 = p1 - 0.1 v2 = [0.855, -2.29]
    p, v = _steps(dtype, 0.9, False, 0.0, [[0.5, 1.0], [0.5, 1.0]])
    np.testing.assert_allclose(v, [0.95, 1.9], rtol=1e-6)
    np.testing.assert_allclose(p, [0.855, -2.29], rtol=1e-6)


def test_nesterov_two_steps(dtype):
    # p1 = p0 - 0.1 (g + 0.9 v1) = [1, -2] - [0.095, 0.19] = [0.905, -2.19]
    # v2 = [0.95, 1.9]; p2 = p1 - 0.1 ([0.5, 1] + [0.855, 1.71]) = [0.7695, -2.461]
    p, _ = _steps(dtype, 0.9, True, 0.0, [[0.5, 1.0], [0.5, 1.0]])
    np.testing.assert_allclose(p, [0.7695, -2.461], rtol=1e-6)


def test_only_the_given_range_changes():
    p = np.ones(10)
    v = np.zeros(10)
    sgd_step(p, np.ones(10), v, SGDConfig(0.5, 0.0, False, 0.0), 0.0, 3, 7)
    np.testing.assert_array_equal(p, [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 1, 1, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_network_step_by_hand(backend, dtype):
    """A 1-1 linear network, two samples, one full-batch step with L2.

    z = w x + b with w = 0.5, b = 0.1; x = [2, -1], y = [1, 0]:
    errors [0.1, -0.4], loss (0.01 + 0.16) / 2 = 0.085;
    dL/dz = 2 e / N = [0.1, -0.4], dW = 2 (0.1) + (-1)(-0.4) = 0.6, db = -0.3;
    with l2 = 0.5, dW += 0.5 w = 0.25; lr = 0.1 gives w = 0.415, b = 0.13.
    History's loss is the data loss 0.085 plus the L2 term at the end,
    0.25 * 0.415**2.
    """
    net = nnjit.Network([1, 1], output="identity", loss="mse", dtype=dtype, backend=backend)
    net.weights[0][:] = 0.5
    net.biases[0][:] = 0.1
    history = net.fit([[2.0], [-1.0]], [1.0, 0.0], epochs=1, batch_size=2, lr=0.1, l2=0.5)
    np.testing.assert_allclose(net.weights[0], [[0.415]], rtol=1e-6)
    np.testing.assert_allclose(net.biases[0], [0.13], rtol=1e-6)
    assert history.loss[0] == pytest.approx(0.085 + 0.25 * 0.415**2, rel=1e-6)
