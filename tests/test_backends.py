"""The two backends behind one interface, and results independent of the thread count."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nnjit
from nnjit import backends, epoch
from nnjit.backends import BACKENDS, CHUNK_ROWS, REUSED_ROWS
from nnjit.contention import ENV as ADAPTIVE_ENV
from nnjit.dense import SPLITS, TRANSPOSED, blocks_here, splits_any
from nnjit.kernel_calls import (
    FORWARD_ROWS,
    INPUT_GRAD_ROWS,
    OUTER_ROWS,
    PARALLEL_INPUTS,
    TRANSPOSED_ROWS,
)
from nnjit.layout import build_layout
from nnjit.sgd import SGDConfig
from nnjit.transposed import transposed_blocks

# Big enough for parallel row blocks (2**20 multiply-adds per product), which
# also take the momentum step; in batches of 32 the first layer has few rows
# for its 300 inputs and is split over them instead, and so are, in
# mini-batches of ten, the hidden layers (see nnjit.dense.split_blocks); and
# without momentum for a first layer kept transposed and split over the cores
# (see nnjit.transposed).
SCRIPT = """
import hashlib, sys
import numpy as np
import nnjit

digest = hashlib.sha256()
rng = np.random.default_rng(0)
X = rng.random((515, 300))
y = rng.integers(0, 10, 515)
for dtype in ("float64", "float32"):
    for kwargs in ({"momentum": 0.9}, {"l2": 1e-3}, {"batch_size": 32, "momentum": 0.9},
                   {"batch_size": 1, "epochs": 1}):
        net = nnjit.Network([300, 256, 10], "relu", "softmax", "cross_entropy",
                            dtype=dtype, seed=0)
        net.fit(X, y, **{"epochs": 2, "batch_size": 128, "lr": 0.05, "seed": 0, **kwargs})
        digest.update(net.params.tobytes())
        digest.update(net.forward(X).tobytes())
    for kwargs in ({}, {"momentum": 0.9}):
        net = nnjit.Network([300, 256, 128, 10], "sigmoid", "softmax", "cross_entropy",
                            dtype=dtype, seed=0)
        net.fit(X, y, **{"epochs": 1, "batch_size": 10, "lr": 0.05, "seed": 0, **kwargs})
        digest.update(net.params.tobytes())
        digest.update(net.forward(X[:10]).tobytes())
print(digest.hexdigest())
"""


def _digest(threads: int) -> str:
    # Adapting to other work could run the two-thread fits on one thread.
    env = {
        **os.environ,
        "NUMBA_NUM_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        ADAPTIVE_ENV: "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_bit_identical_on_one_and_two_threads():
    exec(compile(SCRIPT, "<warm-up>", "exec"), {"__name__": "warm"})  # compile here, once
    assert _digest(1) == _digest(2)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_by_name(name):
    net = nnjit.Network([2, 3, 1], backend=name)
    assert net.backend == name
    other = "numpy" if name == "numba" else "numba"
    net.backend = other
    assert net.backend == other
    with pytest.raises(ValueError, match="numba, numpy"):
        net.backend = "torch"


def test_inference_in_chunks_matches_numpy():
    """Inputs longer than one chunk of rows are evaluated chunk by chunk."""
    rng = np.random.default_rng(0)
    net = nnjit.Network([3, 5, 2], "tanh", "softmax", "cross_entropy", seed=0)
    X = rng.standard_normal((CHUNK_ROWS + 37, 3))
    y = rng.integers(0, 2, len(X))
    reference = nnjit.Network([3, 5, 2], "tanh", "softmax", "cross_entropy", backend="numpy")
    reference.params = net.params
    np.testing.assert_allclose(net.forward(X), reference.forward(X), rtol=1e-13)
    assert net.loss(X, y) == pytest.approx(reference.loss(X, y), rel=1e-13)


def test_calls_without_steps_reuse_the_buffers_of_the_same_shapes():
    layout = build_layout((784, 30, 10), "sigmoid", "sigmoid", "mse")
    first, second = (BACKENDS["numba"](layout, np.dtype("float64")) for _ in range(2))
    work = first._call_workspace(10)
    assert second._call_workspace(10) is work  # another network of the same shapes
    assert first._call_workspace(11) is not work
    assert BACKENDS["numba"](layout, np.dtype("float32"))._call_workspace(10) is not work
    big = first._call_workspace(REUSED_ROWS + 1)
    assert first._call_workspace(REUSED_ROWS + 1) is not big
    seen = []
    thread = threading.Thread(target=lambda: seen.append(first._call_workspace(10)))
    thread.start()
    thread.join()
    assert seen[0] is not first._call_workspace(10)  # each thread has its own


def _evaluations(net, X, y, rows):
    """Outputs, losses and gradients of batches of ``rows``, then of 10, then of ``rows`` again."""
    found = []
    for n in (rows, 10, rows):
        found += [net.forward(X[:n]), net.loss(X[:n], y[:n])]
        found += net.loss_and_grad(net.params, X[:n], y[:n])
    return found


@pytest.mark.parametrize("sizes", [(784, 30, 10), (64, 128, 128, 10), (2, 10, 3)])
def test_reused_buffers_give_what_new_ones_give(sizes, monkeypatch):
    """Alternating outputs, losses and gradients, and the shapes of the calls."""
    rng = np.random.default_rng(0)
    X = rng.random((200, sizes[0]))
    y = rng.integers(0, sizes[-1], 200)
    net = nnjit.Network(list(sizes), "relu", "softmax", "cross_entropy", seed=0)
    net.fit(X, y, epochs=1, batch_size=10, lr=0.05, seed=0)
    for rows in (1, 7, 200):
        reused = _evaluations(net, X, y, rows)
        monkeypatch.setattr(backends, "REUSED_ROWS", 0)
        new = _evaluations(net, X, y, rows)
        monkeypatch.undo()
        for a, b in zip(reused, new, strict=True):
            np.testing.assert_array_equal(a, b)


def test_predictions_in_several_threads_at_once_match_those_in_one():
    """Each thread predicts its own samples, with buffers of its own."""
    rng = np.random.default_rng(1)
    inputs = [rng.random((10, 784)) for _ in range(3)]
    net = nnjit.Network([784, 30, 10], "sigmoid", "sigmoid", "mse", seed=0)
    expected = [net.forward(X) for X in inputs]
    wrong = [0] * len(inputs)

    def worker(index):
        for _ in range(300):
            wrong[index] += not np.array_equal(net.forward(inputs[index]), expected[index])

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == [0] * len(inputs)


def test_a_backend_plans_each_shape_once_and_keeps_a_bounded_number(monkeypatch):
    layout = build_layout((784, 30, 10), "sigmoid", "sigmoid", "mse")
    backend = BACKENDS["numba"](layout, np.dtype("float64"))
    made = []

    def plan(shape):
        made.append(shape)
        return len(made)

    assert backend._planned(plan, 1) == backend._planned(plan, 1) == 1
    assert backend._planned(plan, 2) == 2
    monkeypatch.setattr(backends, "MAX_PLANS", 2)
    assert backend._planned(plan, 3) == 3  # full: the plans are made anew
    assert backend._planned(plan, 1) == 4


@pytest.mark.parametrize(
    ("sizes", "rows", "dtype", "cores", "blocks"),
    [
        ((784, 30, 10), 10, "float64", 2, 2),  # W3
        ((784, 30, 10), 10, "float64", 1, 1),
        ((784, 30, 10), 10, "float64", 8, 8),
        ((784, 30, 10), 10, "float32", 2, 1),  # a loop of one product, twice as fast
        ((784, 30, 10), 4, "float64", 2, 1),  # too little work
        ((784, 100, 10), 10, "float32", 2, 2),
        ((784, 6, 10), 31, "float64", 8, 2),  # a pass of three outputs each
        ((784, 5, 10), 31, "float64", 2, 1),  # not two passes
    ],
)
def test_a_first_layer_kept_transposed_splits_where_it_pays(sizes, rows, dtype, cores, blocks):
    """Blocks of whole passes of three outputs, with enough work (nnjit.transposed)."""
    assert transposed_blocks(sizes, rows, cores, np.dtype(dtype)) == blocks


@pytest.mark.parametrize(
    ("rows", "dtype", "plain", "blocks"),
    [
        (10, "float32", True, 2),  # W3: a batch's step and the next one's product
        (10, "float32", False, 1),  # with momentum, a loop each
        (10, "float64", False, 2),
        (5, "float64", True, 2),
        (5, "float64", False, 1),
        (5, "float32", True, 1),
    ],
)
def test_plain_sgd_splits_the_loop_of_a_step_and_a_product(rows, dtype, plain, blocks):
    """With plain SGD a parallel loop does twice a product's work (nnjit.transposed)."""
    assert transposed_blocks((784, 30, 10), rows, 2, np.dtype(dtype), plain) == blocks


@pytest.mark.parametrize(
    ("sizes", "batch_size", "momentum", "task", "transposed"),
    [
        ((784, 30, 10), 10, 0.0, "train", True),
        ((784, 30, 10), 4, 0.0, "train", True),
        ((784, 30, 10), 31, 0.0, "train", True),
        ((784, 30, 10), 10, 0.9, "train", True),  # momentum too
        ((784, 30, 10), 10, 0.0, "evaluate", False),
        ((784, 30, 10), 10, 0.0, "gradient", False),
        ((784, 30, 10), 3, 0.0, "train", False),  # the loops of nnjit.dense
        ((784, 30, 10), 32, 0.0, "train", False),
        ((255, 30, 10), 10, 0.0, "train", False),
        ((784, 100, 10), 10, 0.0, "train", True),
        ((784, 100, 10), 16, 0.0, "train", False),  # BLAS split over the cores
    ],
)
def test_training_keeps_the_first_layer_transposed_where_it_pays(
    sizes, batch_size, momentum, task, transposed
):
    """Training with small batches through a wide first layer (nnjit.transposed).

    The kernel of the transposed products is needed only then, and the
    first layer's products are then never split over their inputs.
    """
    dtype = np.dtype("float64")
    layout = build_layout(sizes, "sigmoid", "sigmoid", "mse")
    backend = BACKENDS["numba"](layout, dtype)
    work = backend._workspace(batch_size)
    code = {"train": epoch.TRAIN, "evaluate": epoch.EVALUATE, "gradient": epoch.GRADIENT}[task]
    cfg = SGDConfig(dtype.type(0.1), dtype.type(momentum), False, dtype.type(0))
    needed = backend._set_options(work, 1000, batch_size, code, cfg)
    assert (work.scal[TRANSPOSED] > 0) == transposed
    if transposed:  # the number of blocks it takes
        expected = transposed_blocks(sizes, batch_size, blocks_here(), dtype, momentum == 0)
        assert work.scal[TRANSPOSED] == expected
    assert (TRANSPOSED_ROWS in needed) == transposed
    split_first = splits_any(sizes[:2], (batch_size,), blocks_here())
    assert work.scal[SPLITS] == (split_first and not transposed)
    assert (PARALLEL_INPUTS in needed) == (split_first and not transposed)


@pytest.mark.parametrize(
    ("sizes", "n_samples", "batch_size", "loops"),
    [
        ((784, 100, 10), 1000, 200, False),  # W4's shapes: BLAS only
        ((784, 100, 10), 1002, 200, True),  # a last batch of two rows
        ((784, 100, 10), 1004, 200, False),  # of four rows
        ((784, 100, 10), 1000, 3, True),  # batches of three rows
        ((784, 30, 10), 1000, 10, False),  # W3's
        ((784, 20, 10), 1000, 10, True),  # 200 weights in the second layer
        ((2, 10, 1), 100, 100, True),  # W1's: 20 and 10 weights
        ((64, 128, 128, 128, 10), 1000, 1, True),  # W6's: single samples
    ],
)
@pytest.mark.parametrize("task", ["train", "evaluate", "gradient"])
def test_the_loops_are_needed_only_by_products_too_small_for_blas(
    sizes, n_samples, batch_size, loops, task
):
    """A call that has the loops' slots at 0 must never reach them (nnjit.dense.use_blas)."""
    dtype = np.dtype("float64")
    backend = BACKENDS["numba"](build_layout(sizes, "relu", "softmax", "cross_entropy"), dtype)
    work = backend._workspace(batch_size)
    code = {"train": epoch.TRAIN, "evaluate": epoch.EVALUATE, "gradient": epoch.GRADIENT}[task]
    cfg = SGDConfig(dtype.type(0.1), dtype.type(0), False, dtype.type(0))
    needed = backend._set_options(work, n_samples, batch_size, code, cfg)
    for which in (FORWARD_ROWS, INPUT_GRAD_ROWS, OUTER_ROWS):
        assert (which in needed) == loops
