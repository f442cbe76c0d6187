"""Whole compiled epochs: ``fit`` trajectories of both backends side by side."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, make_problem, twin

import nnjit
from nnjit import backends
from nnjit.dense import blocks_here, split_count
from nnjit.transposed import transposed_blocks, transposes_first

FIT_CASES = {
    "plain": {"epochs": 3, "batch_size": 8, "lr": 0.05},
    "momentum, L2, decay": {
        "epochs": 4,
        "batch_size": 7,
        "lr": 0.05,
        "momentum": 0.9,
        "l2": 0.01,
        "lr_decay": 0.8,
    },
    "nesterov": {"epochs": 3, "batch_size": 5, "lr": 0.03, "momentum": 0.8, "nesterov": True},
    "batch size 1": {"epochs": 2, "batch_size": 1, "lr": 0.01, "momentum": 0.5},
    # Plain SGD on single samples steps in the input gradient's loop.
    "batch size 1, plain": {"epochs": 2, "batch_size": 1, "lr": 0.01, "l2": 0.01},
    "full batch": {"epochs": 5, "batch_size": 1000, "lr": 0.1, "l2": 0.1},
    "no shuffle": {"epochs": 2, "batch_size": 6, "lr": 0.05, "shuffle": False},
}

ARCHS = [
    ("tanh", "identity", "mse", (4, 6, 5, 3)),
    ("relu", "softmax", "cross_entropy", (4, 9, 3)),
    ("sigmoid", "sigmoid", "cross_entropy", (4, 5, 2)),
    ("leaky_relu", "identity", "mse", (4, 8, 1)),  # one output
]


def _assert_fit_matches_numpy(net, X, y, kwargs, dtype):
    """``net.fit(X, y, **kwargs)`` ends where the same fit on the numpy backend does."""
    reference = twin(net, "numpy")
    history = net.fit(X, y, **kwargs)
    expected = reference.fit(X, y, **kwargs)
    factor = 100 if dtype == "float32" else 10  # rounding compounds over the steps
    assert_close(net.params, reference.params, dtype, factor)
    assert_close(history.loss, expected.loss, dtype, factor)
    assert_close(net.forward(X[:10]), reference.forward(X[:10]), dtype, factor)


@pytest.mark.parametrize("case", list(FIT_CASES))
@pytest.mark.parametrize(("hidden", "output", "loss", "sizes"), ARCHS)
def test_fit_matches_numpy(hidden, output, loss, sizes, case, dtype):
    # 23 samples: every mini-batch size above leaves a last, partial batch.
    net, X, y = make_problem(hidden, output, loss, sizes=sizes, dtype=dtype)
    if sizes[-1] == 1:
        y = y[:, 0]
    reference = twin(net, "numpy")
    kwargs = {**FIT_CASES[case], "seed": 5}
    history = net.fit(X, y, **kwargs)
    expected = reference.fit(X, y, **kwargs)
    factor = 100 if dtype == "float32" else 10  # rounding compounds over the steps
    assert_close(net.params, reference.params, dtype, factor)
    assert_close(history.loss, expected.loss, dtype, factor)
    assert history.accuracy == pytest.approx(expected.accuracy, abs=1 / 23 + 1e-9)
    assert len(history.loss) == kwargs["epochs"] == len(history.epoch_time)


@pytest.mark.parametrize(
    ("sizes", "n", "batch_size", "l2"),
    [
        # 1 - lr l2 = 0.95: the factor leaves [0.5, 2] after 14 steps; the last
        # batch, of 2 rows, goes to the loops, which need it multiplied in.
        ((128, 128, 20, 4), 64 * 15 + 2, 64, 1.0),
        # 1 - lr l2 = 0.5 for 300 steps: left to itself the factor would
        # reach 0 in float32 after 150.
        ((16, 16, 3), 4 * 300, 4, 10.0),
    ],
)
def test_weight_decay_on_blas_layers_matches_numpy(sizes, n, batch_size, l2, dtype):
    """Plain SGD with L2 where BLAS computes the products.

    Those layers keep their weights divided by the decay still to apply (see
    :func:`nnjit.propagation.backward`).
    """
    net, X, y = make_problem("relu", "softmax", "cross_entropy", sizes=sizes, n=n, dtype=dtype)
    kwargs = {"epochs": 2, "batch_size": batch_size, "lr": 0.05, "l2": l2, "shuffle": False}
    _assert_fit_matches_numpy(net, X, y, kwargs, dtype)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_in_parallel_blocks_matches_numpy(nesterov, dtype):
    """The first layer's products are split into blocks, which also take its step."""
    sizes, n, batch_size = (128, 128, 20, 4), 64 * 3 + 2, 64
    net, X, y = make_problem("relu", "softmax", "cross_entropy", sizes=sizes, n=n, dtype=dtype)
    reference = twin(net, "numpy")
    kwargs = {"epochs": 2, "batch_size": batch_size, "lr": 0.05, "momentum": 0.9, "l2": 0.01}
    kwargs.update(nesterov=nesterov, seed=3)
    history = net.fit(X, y, **kwargs)
    expected = reference.fit(X, y, **kwargs)
    factor = 100 if dtype == "float32" else 10
    assert_close(net.params, reference.params, dtype, factor)
    assert_close(history.loss, expected.loss, dtype, factor)


@pytest.mark.parametrize(
    "kwargs", [{}, {"l2": 0.01}, {"momentum": 0.9}], ids=["plain", "L2", "momentum"]
)
@pytest.mark.parametrize("hidden", ["relu", "sigmoid"])
def test_products_split_over_the_inputs_match_numpy(hidden, kwargs, dtype):
    """Mini-batches of ten through wide layers: forward, input gradient and step in blocks.

    The first two layers' products are too small for row blocks and are split
    over their inputs (see :func:`nnjit.dense.split_blocks`); the last batch,
    of three rows, goes to the loops.
    """
    sizes, n = (200, 160, 96, 3), 10 * 6 + 3
    net, X, y = make_problem(hidden, "softmax", "cross_entropy", sizes=sizes, n=n, dtype=dtype)
    # At lr 0.05 the ReLU network's rounding differences grow a thousandfold
    # in two epochs, on either code path.
    kwargs = {"epochs": 2, "batch_size": 10, "lr": 0.01, "seed": 2, **kwargs}
    _assert_fit_matches_numpy(net, X, y, kwargs, dtype)


@pytest.mark.parametrize(
    "kwargs", [{}, {"l2": 0.01}, {"momentum": 0.9}], ids=["plain", "L2", "momentum"]
)
def test_a_first_layer_with_few_rows_for_its_inputs_matches_numpy(kwargs, dtype):
    """Batches of 32 through a 512 x 64 first layer: split over its inputs, not its rows.

    Its product is large enough for row blocks, but the batch has few rows
    for the layer's inputs (see :func:`nnjit.dense.split_blocks`); the
    hidden layer behind it is not split.  The last batch has 20 rows.
    """
    sizes, n = (512, 64, 10), 32 * 3 + 20
    blocks = blocks_here()
    assert split_count(32, *sizes[:2], blocks, True) == min(blocks, 512 // 64)
    assert split_count(32, *sizes[:2], blocks, False) == 1  # in a hidden layer: row blocks
    net, X, y = make_problem("relu", "softmax", "cross_entropy", sizes=sizes, n=n, dtype=dtype)
    kwargs = {"epochs": 2, "batch_size": 32, "lr": 0.01, "seed": 2, **kwargs}
    _assert_fit_matches_numpy(net, X, y, kwargs, dtype)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"l2": 0.01, "lr_decay": 0.8},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True, "l2": 0.01},
        # Batches in order are views of the data: the layer reads them by number too.
        {"shuffle": False},
    ],
    ids=["plain", "L2, decay", "momentum", "nesterov, L2", "in order"],
)
@pytest.mark.parametrize(
    ("hidden", "output", "loss", "sizes", "batch_size", "n"),
    [
        # Three outputs and five samples at a time, with an output and a
        # last batch of three samples left over.
        ("sigmoid", "sigmoid", "mse", (300, 7, 3), 10, 10 * 6 + 3),
        ("relu", "softmax", "cross_entropy", (256, 30, 4), 7, 7 * 5 + 6),
        ("identity", "identity", "mse", (256, 1), 31, 70),  # one output, one layer
        # Split over the cores in both dtypes, into 9 and 8 outputs (the
        # second block's last pass has two), with a last batch of 5 samples.
        ("relu", "softmax", "cross_entropy", (512, 17, 3), 31, 31 * 3 + 5),
    ],
)
def test_first_layer_kept_transposed_matches_numpy(
    hidden, output, loss, sizes, batch_size, n, kwargs, dtype
):
    """Small batches through a wide first layer: its weights transposed while it trains.

    See :mod:`nnjit.transposed`; the parameters come back in their own
    layout, and the next call evaluates them as the NumPy backend does.
    """
    assert transposes_first(sizes, batch_size)
    if sizes[1] == 17:
        assert transposed_blocks(sizes, batch_size, 2, np.dtype(dtype)) == 2
    net, X, y = make_problem(hidden, output, loss, sizes=sizes, n=n, dtype=dtype)
    if sizes[-1] == 1:
        y = y[:, 0]
    kwargs = {"epochs": 2, "batch_size": batch_size, "lr": 0.01, "seed": 4, **kwargs}
    _assert_fit_matches_numpy(net, X, y, kwargs, dtype)


def test_divergence_with_the_first_layer_transposed_keeps_the_last_good_epoch():
    """The weights kept transposed come back in their own layout when an epoch diverges."""
    net, X, y = make_problem("identity", "identity", "mse", sizes=(256, 4, 1), n=40)
    survivor = twin(net, "numpy")
    exploding = {"batch_size": 10, "lr": 1e-4, "lr_decay": 10.0, "shuffle": False}
    with pytest.raises(nnjit.DivergenceError) as info:
        net.fit(X, y[:, 0] * 1e3, epochs=30, **exploding)
    assert info.value.epoch > 1
    survivor.fit(X, y[:, 0] * 1e3, epochs=info.value.epoch - 1, **exploding)
    assert_close(net.params, survivor.params, "float64", 10)


def test_epochs_in_one_call_equal_epochs_one_by_one():
    """Without validation data several epochs run per compiled call; with it, one."""
    net, X, y = make_problem("relu", "softmax", "cross_entropy", sizes=(4, 9, 3))
    same = twin(net, "numba")
    kwargs = {"epochs": 4, "batch_size": 5, "lr": 0.05, "momentum": 0.9, "seed": 1}
    history = net.fit(X, y, **kwargs)
    checked = same.fit(X, y, validation_data=(X, y), **kwargs)
    np.testing.assert_array_equal(net.params, same.params)
    assert history.loss == checked.loss
    assert len(checked.val_loss) == 4


@pytest.mark.parametrize(
    ("sizes", "batch_size", "momentum"),
    # The last two keep their first layer (and velocity) transposed in every
    # call; without momentum, each call takes the step its last batch leaves
    # pending (see nnjit.propagation.backward).
    [((4, 6, 5, 3), 3, 0.9), ((256, 6, 3), 10, 0.9), ((256, 6, 3), 10, 0.0)],
)
def test_verbose_fit_gives_the_same_parameters(sizes, batch_size, momentum, capsys):
    """A progress bar trains in several calls, with the velocity carried over."""
    net, X, y = make_problem("tanh", "identity", "mse", sizes=sizes, n=63)
    same = twin(net, "numba")
    kwargs = {"epochs": 2, "batch_size": batch_size, "lr": 0.02, "momentum": momentum, "seed": 2}
    history = net.fit(X, y, **kwargs)
    shown = same.fit(X, y, verbose=True, **kwargs)
    np.testing.assert_array_equal(net.params, same.params)
    assert_close(shown.loss, history.loss, "float64")
    assert "epoch 2/2" in capsys.readouterr().err


def test_same_seed_same_parameters(backend):
    first, X, y = make_problem(backend=backend)
    second = twin(first, backend)
    first.fit(X, y, epochs=3, batch_size=4, seed=11)
    second.fit(X, y, epochs=3, batch_size=4, seed=11)
    np.testing.assert_array_equal(first.params, second.params)
    third = twin(first, backend)
    third.fit(X, y, epochs=1, batch_size=4, seed=12)
    assert not np.array_equal(third.params, first.params)


def test_last_partial_batch_is_used(backend):
    """23 samples in batches of 22: the 23rd sample alone makes the second step."""
    net, X, y = make_problem(backend=backend)
    once = twin(net, backend)
    net.fit(X, y, epochs=1, batch_size=22, shuffle=False, lr=0.1)
    once.fit(X[:22], y[:22], epochs=1, batch_size=22, shuffle=False, lr=0.1)
    assert not np.array_equal(net.params, once.params)
    once.fit(X[22:], y[22:], epochs=1, batch_size=1, shuffle=False, lr=0.1)
    assert_close(net.params, once.params, "float64")


def test_zero_epochs_change_nothing(backend):
    net, X, y = make_problem(backend=backend)
    before = net.params.copy()
    history = net.fit(X, y, epochs=0)
    np.testing.assert_array_equal(net.params, before)
    assert history.loss == []


def test_verbose_fit_says_when_its_first_call_compiles(capsys, monkeypatch):
    """A progress bar stuck at 0 % during the first compile says why."""
    net, X, y = make_problem("tanh", "identity", "mse")
    kwargs = {"epochs": 1, "batch_size": 3, "verbose": True}
    net.fit(X, y, **kwargs)
    assert "compiling" not in capsys.readouterr().err  # the kernels are ready
    monkeypatch.setattr(backends, "_KERNELS_READY", set())
    net.fit(X, y, **kwargs)
    assert "first call: compiling or loading the float64 kernels" in capsys.readouterr().err
    assert net._backend.kernels_ready
