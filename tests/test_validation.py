"""Every bad input of the API raises ValueError before anything changes."""

from __future__ import annotations

import numpy as np
import pytest

import nnjit
from nnjit.backends import CHUNK_ROWS

RNG = np.random.default_rng(0)
X = RNG.random((12, 3))
LABELS = RNG.integers(0, 4, 12)


def _classifier(backend):
    return nnjit.Network([3, 5, 4], "relu", "softmax", "cross_entropy", seed=0, backend=backend)


def _nan(a):
    a = np.array(a, dtype=float)
    a.flat[3] = np.nan
    return a


def _inf(a):
    a = np.array(a, dtype=float)
    a.flat[0] = np.inf
    return a


BAD_DATA = {
    "X 1-D": (X[:, 0], LABELS, "2-D"),
    "X 3-D": (X[None], LABELS, "2-D"),
    "wrong feature count": (X[:, :2], LABELS, "features"),
    "empty X": (X[:0], LABELS[:0], "empty"),
    "mismatched lengths": (X, LABELS[:-1], "samples"),
    "NaN in X": (_nan(X), LABELS, "NaN"),
    "inf in X": (_inf(X), LABELS, "NaN or infinite"),
    "label too large": (X, np.r_[LABELS[:-1], 4], "0..3"),
    "negative label": (X, np.r_[LABELS[:-1], -1], "0..3"),
    "huge label": (X, np.r_[LABELS[:-1], 2**40], "0..3"),
    "fractional label": (X, np.r_[LABELS[:-1], 1.5], "integer"),
    "NaN label": (X, _nan(LABELS), "NaN|integer"),
    "NaN in one-hot targets": (X, _nan(np.eye(4)[LABELS]), "NaN"),
    "wrong target columns": (X, np.eye(5)[LABELS], "columns"),
    "negative probability": (X, np.eye(4)[LABELS] - 0.25, r"\[0, 1\] for a softmax"),
    "probability above 1": (X, 2 * np.eye(4)[LABELS], r"\[0, 1\] for a softmax"),
    "words": (np.full((12, 3), "a"), LABELS, "numbers|numeric"),
    "numbers as strings": (X.astype(str), LABELS, "numbers, got an array of dtype <U"),
    "complex X": (X + 1j, LABELS, "real numbers, got complex"),
    "complex labels": (X, LABELS + 0j, "real numbers, got complex"),
    "dates": (np.zeros((12, 3), dtype="datetime64[D]"), LABELS, "numbers, got .*datetime64"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data(case, backend):
    net = _classifier(backend)
    before = net.params.copy()
    bad_X, bad_y, message = BAD_DATA[case]
    calls = [
        lambda: net.fit(bad_X, bad_y, epochs=1),
        lambda: net.loss(bad_X, bad_y),
        lambda: net.loss_and_grad(net.params, bad_X, bad_y),
        lambda: net.evaluate(bad_X, bad_y),
        lambda: net.score(bad_X, bad_y),
        lambda: net.fit(X, LABELS, epochs=1, validation_data=(bad_X, bad_y)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()
        np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("value", [np.nan, np.inf])
# In the first chunk of rows, checked in parallel blocks; in the last, short one.
@pytest.mark.parametrize("where", [0, -1])
def test_nonfinite_input_found_while_evaluating(backend, value, where):
    rng = np.random.default_rng(2)
    bad = rng.random((CHUNK_ROWS + 5, 120))
    bad[where, 7] = value
    labels = rng.integers(0, 4, len(bad))
    net = nnjit.Network([120, 5, 4], "relu", "softmax", "cross_entropy", seed=0, backend=backend)
    calls = [
        net.forward,
        net.predict,
        lambda X: net.loss(X, labels),
        lambda X: net.evaluate(X, labels),
        lambda X: net.score(X, labels),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
            call(bad)


@pytest.mark.parametrize("value", [np.nan, -np.inf])
@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize(
    ("batch_size", "shuffle"),
    # In the last, partial batch; anywhere; in a batch whose first layer
    # takes parallel blocks (300 x 120 x 32 multiply-adds), which check their
    # rows, and gather them first when the samples are shuffled.
    [(7, False), (7, True), (300, False), (300, True)],
)
def test_nonfinite_input_found_while_training_changes_nothing(
    backend, value, verbose, batch_size, shuffle
):
    rng = np.random.default_rng(1)
    good = rng.random((600, 120))
    labels = rng.integers(0, 4, 600)
    bad = good.copy()
    bad[-1, -1] = value
    sizes = [120, 32, 4]
    net = nnjit.Network(sizes, "relu", "softmax", "cross_entropy", seed=0, backend=backend)
    before = net.params.copy()
    kwargs = {"epochs": 2, "batch_size": batch_size, "shuffle": shuffle}
    with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
        net.fit(bad, labels, verbose=verbose, **kwargs)
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match="X contains 1 NaN or infinite"):
        net.loss_and_grad(net.params, bad, labels)
    # Nor did the generator that shuffles: the next fit is the one a new network makes.
    net.fit(good, labels, **kwargs)
    fresh = nnjit.Network(sizes, "relu", "softmax", "cross_entropy", seed=0)
    fresh.backend = backend
    fresh.fit(good, labels, **kwargs)
    np.testing.assert_array_equal(net.params, fresh.params)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"epochs": -1}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"momentum": -0.5}, "momentum"),
        ({"l2": float("nan")}, "l2"),
        ({"lr_decay": 0.0}, "lr_decay"),
        ({"nesterov": True}, "nesterov"),
        ({"nesterov": "yes", "momentum": 0.9}, "nesterov must be True or False"),
        ({"shuffle": "False"}, "shuffle must be True or False"),
        ({"seed": -1}, "seed must be None or an integer"),
        ({"seed": 1.5}, "seed must be None or an integer"),
        ({"validation_data": X}, "validation_data"),
    ],
)
def test_bad_hyper_parameters(kwargs, message, backend):
    net = _classifier(backend)
    before = net.params.copy()
    with pytest.raises(ValueError, match=message):
        net.fit(X, LABELS, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_sigmoid_targets_outside_unit_interval(backend):
    net = nnjit.Network([3, 2], output="sigmoid", loss="cross_entropy", backend=backend)
    before = net.params.copy()
    for bad in (np.full((12, 2), 1.5), np.full((12, 2), -0.1)):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            net.fit(X, bad)
    np.testing.assert_array_equal(net.params, before)


def test_softmax_probability_rows_accepted(backend):
    smoothed = 0.9 * np.eye(4)[LABELS] + 0.025
    uneven = 0.5 * np.eye(4)[LABELS]  # rows need not sum to 1: the delta keeps the sum
    net = _classifier(backend)
    for targets in (smoothed, uneven):
        before = net.params.copy()
        net.fit(X, targets, epochs=1)
        assert not np.array_equal(net.params, before)


def test_regression_targets_shape():
    net = nnjit.Network([3, 4, 2])
    with pytest.raises(ValueError, match="1-D but the network has 2 outputs"):
        net.fit(X, X[:, 0])
    single = nnjit.Network([3, 4, 1])
    single.fit(X, X[:, 0], epochs=1)  # (N,) is fine with one output
    single.fit(X, X[:, :1], epochs=1)


def test_bad_params():
    net = _classifier("numba")
    before = net.params.copy()
    for bad, message in [
        (np.ones(net.n_params + 1), "length"),
        (np.ones((1, net.n_params)), "1-D"),
        (_nan(np.ones(net.n_params)), r"NaN or infinite value\(s\) \(in float64\)$"),
        (np.ones(net.n_params) + 1j, "complex"),
    ]:
        with pytest.raises(ValueError, match=message):
            net.params = bad
        with pytest.raises(ValueError, match=message):
            net.loss_and_grad(bad, X, LABELS)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([3],), {}, "at least 2"),
        (([3, 0, 2],), {}, ">= 1"),
        (([3, 2.5, 2],), {}, "int"),
        ((5,), {}, "list"),
        (([3, 4, 2], "swish"), {}, "relu"),
        (([3, 4, 2], "softmax"), {}, "hidden activation"),
        (([3, 4, 4, 2], ["relu"]), {}, "one per hidden layer"),
        (([3, 2], "relu", "softplus"), {}, "softmax"),
        (([3, 2], "relu", "identity", "cross_entropy"), {}, "softmax.*sigmoid"),
        (([3, 2], "relu", "tanh", "hinge"), {}, "mse"),
        (([3, 2],), {"dtype": "float16"}, "float32"),
        (([3, 2],), {"dtype": "int64"}, "float64"),
        (([3, 2],), {"init": "lecun"}, "xavier"),
        (([3, 2],), {"init": -1.0}, "init"),
        (([3, 2],), {"backend": "jax"}, "numpy"),
        (([3, 2],), {"seed": -1}, "seed must be None or an integer"),
        (([3, 2],), {"seed": "a"}, "seed must be None or an integer"),
    ],
)
def test_bad_constructor_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        nnjit.Network(*args, **kwargs)


def test_out_of_range_label_never_reaches_the_kernels():
    """Numba does no bounds checking: a label of 10**9 must stop at the Python edge."""
    net = _classifier("numba")
    with pytest.raises(ValueError, match="labels"):
        net.fit(X, np.r_[LABELS[:-1], 10**9], epochs=1)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(np.float32),
        lambda a: np.asfortranarray(a),
        lambda a: np.repeat(a, 2, axis=1)[:, ::2],  # not contiguous
        lambda a: a.tolist(),
    ],
    ids=["float32", "fortran", "strided", "list"],
)
def test_accepted_layouts_give_the_same_result(convert, backend):
    net = _classifier(backend)
    Xq = np.round(X * 8) / 8  # exact in float32 too
    expected = net.loss(Xq, LABELS)
    assert net.loss(convert(Xq), LABELS) == expected
    assert net.loss(Xq, LABELS.astype(np.int32)) == expected
    assert net.loss(Xq, LABELS.astype(float)) == expected
    assert net.loss((Xq * 8).astype(int) / 8, LABELS) == expected


def test_object_arrays_of_numbers_are_accepted():
    """A pandas frame of mixed columns gives an object array of numbers."""
    net = _classifier("numba")
    assert net.loss(X.astype(object), LABELS.astype(object)) == net.loss(X, LABELS)


def test_integer_inputs_are_accepted():
    net = _classifier("numba")
    counts = np.arange(36).reshape(12, 3)
    assert net.loss(counts, LABELS) == net.loss(counts.astype(float), LABELS)


def test_large_finite_inputs_whose_sum_overflows_are_accepted():
    # The finiteness check sums the data first; an overflowing sum is no error.
    big = X.copy()
    big[:2, 0] = np.finfo(np.float64).max
    with np.errstate(over="ignore"):
        assert not np.isfinite(big.sum())
    net = _classifier("numba")
    assert net.forward(big).shape == (12, 4)
