"""The public ``Network`` interface, and training on real data."""

from __future__ import annotations

import numpy as np
import pytest

import nnjit


def test_parameter_views(dtype):
    net = nnjit.Network([3, 4, 2], dtype=dtype, seed=0)
    assert net.sizes == [3, 4, 2]
    assert net.n_params == 3 * 4 + 4 + 4 * 2 + 2 == net.params.size
    assert [W.shape for W in net.weights] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.biases] == [(4,), (2,)]
    assert net.params.dtype == np.dtype(dtype) == net.dtype
    net.weights[1][0, 1] = 7.0
    net.biases[0][:] = 3.0
    assert 7.0 in net.params
    assert (net.params == 3.0).sum() >= 4
    buffer = net.params
    net.params = np.zeros(net.n_params)
    assert net.params is buffer and not net.weights[0].any()


def test_layer_is_a_at_w_plus_b(backend):
    net = nnjit.Network([3, 4, 2], "tanh", "identity", seed=1, backend=backend)
    net.biases[0][:] = 0.3
    X = np.random.default_rng(0).standard_normal((5, 3))
    hidden = np.tanh(X @ net.weights[0] + net.biases[0])
    np.testing.assert_allclose(net.forward(X), hidden @ net.weights[1] + net.biases[1])


def test_initialisation():
    net = nnjit.Network([400, 300, 200, 10], ["relu", "tanh"], "softmax", "cross_entropy", seed=0)
    he, xavier, last = (float(W.std()) for W in net.weights)
    assert he == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert xavier == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert last == pytest.approx(np.sqrt(2 / 210), rel=0.05)
    assert not any(b.any() for b in net.biases)
    fixed = nnjit.Network([400, 300], init=0.5, seed=0)
    assert float(fixed.weights[0].std()) == pytest.approx(0.5, rel=0.02)
    assert float(nnjit.Network([400, 300], init="he").weights[0].std()) == pytest.approx(
        np.sqrt(2 / 400), rel=0.02
    )
    same = nnjit.Network([400, 300, 200, 10], ["relu", "tanh"], "softmax", "cross_entropy", seed=0)
    np.testing.assert_array_equal(net.params, same.params)


def test_predict_kinds(backend):
    X = np.random.default_rng(0).standard_normal((6, 3))
    softmax = nnjit.Network([3, 4], output="softmax", loss="cross_entropy", backend=backend)
    labels = softmax.predict(X)
    assert labels.shape == (6,) and labels.dtype.kind == "i" and labels.max() < 4
    np.testing.assert_array_equal(labels, softmax.forward(X).argmax(axis=1))

    binary = nnjit.Network([3, 1], output="sigmoid", loss="cross_entropy", backend=backend)
    assert binary.predict(X).shape == (6,)
    assert set(binary.predict(X)) <= {0, 1}
    multi = nnjit.Network([3, 2], output="sigmoid", loss="cross_entropy", backend=backend)
    assert multi.predict(X).shape == (6, 2)

    regressor = nnjit.Network([3, 1], backend=backend)
    np.testing.assert_array_equal(regressor.predict(X), regressor.forward(X)[:, 0])
    assert nnjit.Network([3, 2], backend=backend).predict(X).shape == (6, 2)


def test_evaluate_and_score(backend):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    labels = rng.integers(0, 3, 40)
    net = nnjit.Network([3, 3], output="softmax", loss="cross_entropy", backend=backend)
    scores = net.evaluate(X, labels)
    assert scores["loss"] == pytest.approx(net.loss(X, labels))
    assert scores["accuracy"] == net.score(X, labels) == np.mean(net.predict(X) == labels)

    regressor = nnjit.Network([3, 1], output="identity", backend=backend)
    regressor.weights[0][:] = [[1.0], [2.0], [0.0]]
    y = X @ [1.0, 2.0, 0.0]
    assert regressor.score(X, y) == 1.0
    assert "accuracy" not in regressor.evaluate(X, y)
    regressor.weights[0][:] = 0
    regressor.biases[0][:] = y.mean()
    assert regressor.score(X, y) == pytest.approx(0.0, abs=1e-12)


def test_score_of_float32_regressor_with_large_targets(backend):
    # Squares of float32 differences overflow from about 1.9e19 on.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    y = 1e20 * rng.standard_normal(30)
    net = nnjit.Network([3, 1], dtype="float32", seed=0, backend=backend)
    out = net.predict(X).astype(np.float64)
    y32 = y.astype(np.float32).astype(np.float64)
    expected = 1 - ((y32 - out) ** 2).sum() / ((y32 - y32.mean()) ** 2).sum()
    with np.errstate(over="raise", invalid="raise"):
        assert net.score(X, y) == pytest.approx(expected, rel=1e-12)


def test_loss_includes_l2(backend):
    net = nnjit.Network([3, 2], seed=0, backend=backend)
    net.biases[0][:] = 5.0  # biases never count
    X, y = np.ones((4, 3)), np.zeros((4, 2))
    penalty = 0.5 * 0.3 * float((net.weights[0] ** 2).sum())
    assert net.loss(X, y, l2=0.3) == pytest.approx(net.loss(X, y) + penalty, rel=1e-14)


def test_repr():
    net = nnjit.Network([2, 3, 1], "tanh", dtype="float32")
    assert repr(net) == (
        "Network([2, 3, 1], hidden='tanh', output='identity', loss='mse', "
        "dtype='float32', backend='numba')"
    )


def test_loss_and_grad_drives_scipy():
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    net = nnjit.Network([2, 8, 1], "tanh", "sigmoid", "cross_entropy", seed=0)
    start = net.loss(X, y, l2=1e-3)
    result = optimize.minimize(
        net.loss_and_grad, net.params.copy(), args=(X, y, 1e-3), jac=True, method="L-BFGS-B"
    )
    net.params = result.x
    assert net.loss(X, y, l2=1e-3) < 0.5 * start
    assert net.score(X, y) > 0.9


@pytest.mark.parametrize("lr", [1.5, 3.0])
def test_nielsen_network_on_digits(lr, backend):
    """[64, 30, 10], sigmoid, MSE, mini-batch 10, 30 epochs: at least 93% held out."""
    from nnjit.data import digits

    pytest.importorskip("sklearn")
    X_train, y_train, X_test, y_test = digits(seed=0)
    net = nnjit.Network([64, 30, 10], "sigmoid", "sigmoid", "mse", seed=0, backend=backend)
    net.fit(X_train, np.eye(10)[y_train], epochs=30, batch_size=10, lr=lr, seed=0)
    assert np.mean(net.predict(X_test).argmax(axis=1) == y_test) >= 0.93


def test_relu_softmax_network_on_digits(backend):
    from nnjit.data import digits

    pytest.importorskip("sklearn")
    X_train, y_train, X_test, y_test = digits(seed=0)
    net = nnjit.Network([64, 100, 10], "relu", "softmax", "cross_entropy", seed=0, backend=backend)
    history = net.fit(
        X_train, y_train, epochs=20, batch_size=32, lr=0.1, momentum=0.9, seed=0,
        validation_data=(X_test, y_test),
    )  # fmt: skip
    assert net.score(X_test, y_test) >= 0.96
    assert history.val_accuracy[-1] == net.score(X_test, y_test)
    assert history.loss[-1] < history.loss[0]
