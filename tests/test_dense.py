"""The three products of a dense layer against NumPy, on every code path.

Shapes are chosen to reach each path: plain loops for one sample and for tiny
layers (narrow and wide), BLAS for larger products, parallel row blocks once a
product holds 2**20 multiply-adds, and parallel blocks over the inputs for a
product too small for row blocks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import assert_close

from nnjit import dense, reference
from nnjit.activations import ACTIVATIONS, activate
from nnjit.dense import (
    BLOCK_LIMIT,
    BLOCKS,
    CHOICE_SLOTS,
    DECAY,
    L2,
    MAX_BLOCKS,
    MINUS_LR,
    MOMENTUM,
    NESTEROV,
    ONE,
    SPLITS,
    WEIGHT_SCALES,
    ZERO,
    column_sums,
    dense_forward,
    dense_input_grad,
    dense_outer,
    make_scalars,
    n_blocks,
    rows_finite,
    split_blocks,
    split_buffer_size,
    splits_any,
    transposed_outer,
    use_blas,
)
from nnjit.kernel_compile import kernel_table
from nnjit.propagation import make_workspace
from nnjit.sgd import SGDConfig, sgd_step
from nnjit.transposed import CHOICE_TRIAL

# (rows, n_in, n_out) and the path each reaches.
SHAPES = {
    "one sample": (1, 5, 12),
    "loops, narrow": (3, 5, 3),
    "loops, wide": (3, 7, 20),
    # Loops taking four samples at a time, with a remainder; an even and a
    # single input (the wide forward pass takes inputs in pairs).
    "loops, narrow, 4 at a time": (11, 9, 3),
    "loops, one output": (10, 10, 1),
    "loops, wide, 4 at a time": (13, 6, 20),
    "loops, one input": (9, 1, 16),
    # One forward pass over the outputs; and a first and a last pass only.
    "loops, two inputs": (6, 2, 10),
    "loops, three inputs": (5, 3, 9),
    "blas": (16, 20, 30),
    "blas, one output": (40, 300, 1),
    "parallel blocks": (256, 64, 64),
    "split over the inputs": (10, 200, 80),
    # Large enough for row blocks, but a first layer with few rows for its
    # inputs: split over the inputs all the same, as W4's first layer is.
    "first layer, few rows": (32, 512, 64),
    # Kept transposed, these take three outputs and five samples at a time:
    # two outputs and three samples are left over.
    "five samples at a time": (13, 300, 8),
}


@pytest.fixture(params=list(SHAPES), ids=list(SHAPES))
def shape(request):
    return SHAPES[request.param]


NO_ROWS = np.empty(0, dtype=np.int64)
# Every forward product and step also with the weights stored transposed, as
# a training call keeps a first layer (see nnjit.transposed).
TRANSPOSED = pytest.mark.parametrize("transposed", [False, True], ids=["", "transposed"])


def _partial(A, W):
    """A buffer for the blocks of a product split over the inputs, filled with NaN."""
    return np.full(BLOCK_LIMIT * A.shape[0] * W.shape[1], np.nan, dtype=W.dtype)


def _forward(A, W, b, Z, code, scal, slot, partial=None, transposed=False):
    """The forward product alone: nothing to gather, nothing to check.

    With ``transposed`` the product reads ``W`` stored transposed, as a
    training call keeps a first layer (see :mod:`nnjit.transposed`).
    """
    partial = _partial(A, W) if partial is None else partial
    table = kernel_table(W.dtype)
    W = np.ascontiguousarray(W.T) if transposed else W
    # Kept transposed, the layer reads its batch's rows where they are.
    rows = _every_row(A) if transposed else NO_ROWS
    args = (A, rows, False, partial, True, transposed, (False, NO_ROWS, Z))
    return dense_forward(table, A, W, b, Z, code, scal, slot, *args)


def _every_row(A):
    return np.arange(A.shape[0], dtype=np.int64)


def _arrays(shape, dtype, seed=0):
    rows, k, m = shape
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, k)).astype(dtype)
    W = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    dZ = rng.standard_normal((rows, m)).astype(dtype)
    return A, W, b, dZ


def test_shapes_reach_their_paths():
    assert not use_blas(*SHAPES["one sample"])
    for name in SHAPES:
        if name.startswith("loops"):
            assert not use_blas(*SHAPES[name]), name
    assert use_blas(*SHAPES["blas"])
    assert use_blas(*SHAPES["blas, one output"])
    scal = make_scalars(np.dtype("float64"))
    assert scal[BLOCKS] == MAX_BLOCKS
    assert n_blocks(16, 20, 30, 16, scal) == 1
    rows, k, m = SHAPES["parallel blocks"]
    assert n_blocks(rows, k, m, rows, scal) == min(MAX_BLOCKS, rows // 16)
    assert n_blocks(rows, k, m, k, scal) == min(MAX_BLOCKS, k // 16)
    # Loops over tiny layers stay on one thread, however many samples.
    assert n_blocks(1 << 16, 4, 8, 1 << 16, scal) == 1
    for first in (False, True):
        assert split_blocks(rows, k, m, scal, first) == 1
    split = SHAPES["split over the inputs"]
    assert n_blocks(*split, split[0], scal) == 1
    assert split_blocks(*split, scal, False) == min(MAX_BLOCKS, split[1] // 64)
    assert split_blocks(*SHAPES["blas"], scal, True) == 1
    # Row blocks in a hidden layer; over the inputs in the first layer.
    few = SHAPES["first layer, few rows"]
    assert n_blocks(*few, few[0], scal) == min(MAX_BLOCKS, few[0] // 16)
    assert split_blocks(*few, scal, False) == 1
    assert split_blocks(*few, scal, True) == min(MAX_BLOCKS, few[1] // 64)
    # The compiled code takes the limit from the slots, not as a constant.
    for limit in (1, 3, BLOCK_LIMIT):
        scal[BLOCKS] = limit
        assert n_blocks(rows, k, m, rows, scal) == min(limit, rows // 16)
        assert split_blocks(*split, scal, False) == min(limit, split[1] // 64)
        assert split_blocks(*few, scal, True) == min(limit, few[1] // 64)


# W3's, W5's, W4's and W6's networks among them.
SPLIT_SIZES = [(784, 30, 10), (200, 80, 3), (784, 512, 512, 10), (784, 100, 10), (64, 128, 10)]


def _layers(sizes, first=True):
    """``(n_in, n_out, first)`` of each layer; ``first``: ``sizes[:2]`` is the first layer."""
    pairs = itertools.pairwise(sizes)
    return [(k, m, first and index == 0) for index, (k, m) in enumerate(pairs)]


@pytest.mark.parametrize("sizes", SPLIT_SIZES)
@pytest.mark.parametrize("rows", [1, 10, 40, 200])
@pytest.mark.parametrize("first", [True, False], ids=["", "first layer left out"])
def test_the_split_buffer_holds_every_split_product(sizes, rows, first):
    """Every batch of up to ``rows`` samples finds room for its blocks: no write past the end."""
    scal = make_scalars(np.dtype("float64"))
    for blocks in (1, 2, 3, BLOCK_LIMIT):
        scal[BLOCKS] = blocks
        size = split_buffer_size(sizes, rows, blocks, first)
        needed = [
            split_blocks(r, k, m, scal, is_first) * r * m
            for r in range(1, rows + 1)
            for k, m, is_first in _layers(sizes, first)
            if split_blocks(r, k, m, scal, is_first) > 1
        ]
        assert max(needed, default=0) <= size
        # The cases the split is for: W3's first layer, and W4's in batches of 10-196.
        if blocks > 1 and first and sizes[:2] in ((784, 30), (784, 100)) and rows >= 10:
            assert needed


@TRANSPOSED
@pytest.mark.parametrize("activation", ["identity", "tanh", "relu"])
def test_forward(shape, activation, transposed, dtype):
    A, W, b, _ = _arrays(shape, dtype)
    Z = np.full((A.shape[0], W.shape[1]), np.nan, dtype=dtype)
    scal = make_scalars(np.dtype(dtype))
    _forward(A, W, b, Z, ACTIVATIONS[activation], scal, np.int64(ONE), transposed=transposed)
    A64, W64, b64 = (x.astype(np.float64) for x in (A, W, b))
    assert_close(Z, reference.ACTIVATIONS[activation](A64 @ W64 + b64), dtype, factor=10)


# Kept transposed, the product's blocks: one loop on the calling thread
# (scal[TRANSPOSED] 1), two parallel blocks, and two blocks of which the
# call chose to run one (see nnjit.transposed.parallel_transposed).
TRANSPOSED_WAYS = pytest.mark.parametrize(
    ("transposed", "blocks", "preferred"),
    [(False, 1, 0.0), (True, 1, 0.0), (True, 2, -1.0), (True, 2, 1.0)],
    ids=["", "transposed", "transposed, two blocks", "transposed, one of two blocks"],
)


@TRANSPOSED_WAYS
@pytest.mark.parametrize("value", [np.nan, -np.inf, np.inf])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_forward_gathers_and_checks_its_batch(
    shape, value, activation, transposed, blocks, preferred, dtype
):
    """The first layer copies a shuffled batch's rows in, and tests them, before its product.

    Kept transposed, it reads them where they are, and tests them in its
    blocks.  Sigmoid maps an infinite input to a finite output: a check of
    the layer's output would miss it.
    """
    A, W, b, _ = _arrays(shape, dtype)
    rows = A.shape[0]
    source = np.random.default_rng(1).standard_normal((2 * rows + 3, A.shape[1])).astype(dtype)
    order = np.random.default_rng(2).permutation(len(source))[:rows]
    code, scal, one = ACTIVATIONS[activation], make_scalars(np.dtype(dtype)), np.int64(ONE)
    scal[dense.TRANSPOSED] = blocks
    scal[-CHOICE_SLOTS] = preferred
    batch = np.full_like(A, np.nan)
    Z = np.full((rows, W.shape[1]), np.nan, dtype=dtype)
    partial = _partial(A, W)
    table = kernel_table(W.dtype)
    stored = np.ascontiguousarray(W.T) if transposed else W

    def forward(data, check):
        args = (data, order, check, partial, True, transposed, (False, NO_ROWS, Z))
        return dense_forward(table, batch, stored, b, Z, code, scal, one, *args)

    assert forward(source, True)
    if transposed:  # nothing gathered
        assert np.isnan(batch).all()
    else:
        np.testing.assert_array_equal(batch, source[order])
    expected = Z.copy()
    _forward(source[order], W, b, Z, code, scal, one, transposed=transposed)
    np.testing.assert_array_equal(Z, expected)
    # A non-finite value in a row of the batch, then in a row left out of it.
    outside = np.setdiff1d(np.arange(len(source)), order)[0]
    for where, finite in ((order[-1], False), (order[0], False), (outside, True)):
        bad = source.copy()
        bad[where, -1] = value
        assert forward(bad, True) == finite
        assert forward(bad, False)


@TRANSPOSED
def test_a_finite_batch_whose_product_overflows_passes_the_check(shape, transposed, dtype):
    """A product that overflows from finite inputs is no bad input: the check is of the inputs."""
    A, W, b, _ = _arrays(shape, dtype)
    big = np.sqrt(np.finfo(dtype).max) * 4
    A = np.abs(A) * big + big
    W = (np.abs(W) * big + big).astype(dtype)
    A = A.astype(dtype)
    assert np.isfinite(A).all() and np.isfinite(W).all()
    Z = np.full((A.shape[0], W.shape[1]), np.nan, dtype=dtype)
    code, scal, one = ACTIVATIONS["relu"], make_scalars(np.dtype(dtype)), np.int64(ONE)
    stored = np.ascontiguousarray(W.T) if transposed else W
    rows = _every_row(A) if transposed else NO_ROWS
    args = (A, rows, True, _partial(A, W), True, transposed, (False, NO_ROWS, Z))
    assert dense_forward(kernel_table(W.dtype), A, stored, b, Z, code, scal, one, *args)
    assert np.isinf(Z).all()


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "leaky_relu"])
def test_input_grad(shape, activation, dtype):
    A, W, _, dZ = _arrays(shape, dtype)
    activate(A, ACTIVATIONS[activation])
    dA = np.full_like(A, np.nan)
    dense_input_grad(
        kernel_table(W.dtype),
        dZ,
        W,
        A,
        dA,
        ACTIVATIONS[activation],
        make_scalars(np.dtype(dtype)),
        np.int64(ONE),
        False,
    )
    A64, W64, dZ64 = (x.astype(np.float64) for x in (A, W, dZ))
    expected = (dZ64 @ W64.T) * reference.DERIVATIVES[activation](A64)
    assert_close(dA, expected, dtype, factor=10)


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_input_grad_with_the_step(shape, activation, l2, dtype):
    """A single sample takes the SGD step in the input gradient's loop; more leave ``W`` be.

    ``A`` is the layer's input: the activation's output, whose derivative
    the gradient takes, and the batch the step multiplies.  The gradient
    reads the weights from before the step.
    """
    A, W, _, dZ = _arrays(shape, dtype)
    activate(A, ACTIVATIONS[activation])
    before = W.copy()
    dA = np.full_like(A, np.nan)
    lr = 0.1
    scal = make_scalars(np.dtype(dtype))
    scal[MINUS_LR] = -lr
    scal[DECAY] = 1 - lr * l2
    args = (dZ, W, A, dA, ACTIVATIONS[activation], scal, np.int64(ONE), True)
    stepped = dense_input_grad(kernel_table(W.dtype), *args)
    assert stepped == (shape[0] == 1)
    A64, W64, dZ64 = (x.astype(np.float64) for x in (A, before, dZ))
    expected = (dZ64 @ W64.T) * reference.DERIVATIVES[activation](A64)
    assert_close(dA, expected, dtype, factor=10)
    if stepped:
        assert_close(W, (1 - lr * l2) * W64 - lr * A64.T @ dZ64, dtype, factor=10)
        if l2 == 0:  # the same values, to the bit, as the step on its own
            alone = _outer(A, dZ, before.copy(), scal, MINUS_LR, DECAY, False)
            np.testing.assert_array_equal(W, alone)
    else:
        np.testing.assert_array_equal(W, before)


@pytest.mark.parametrize("sizes", SPLIT_SIZES)
@pytest.mark.parametrize("first", [True, False], ids=["", "first layer left out"])
def test_the_python_rule_of_splits_is_the_compiled_one(sizes, first):
    """``splits_any`` decides which calls load the split kernel: it must agree."""
    scal = make_scalars(np.dtype("float64"))
    for blocks in (1, 2, 3, BLOCK_LIMIT):
        scal[BLOCKS] = blocks
        for r in range(1, 300):
            layers = _layers(sizes, first)
            compiled = any(split_blocks(r, k, m, scal, is_first) > 1 for k, m, is_first in layers)
            assert splits_any(sizes, (r,), blocks, first) == compiled, (blocks, r)


def test_a_workspace_allows_splits_only_where_a_product_may_split():
    """A workspace that denies splits denies none that the rule would take.

    So the choice of workspace never changes a result, and the split's
    kernel, which only some networks compile, is never called without it.
    """
    for sizes, rows in [((784, 30, 10), 10), ((3, 4, 2), 8), ((784, 100, 10), 200)]:
        work = make_workspace(sizes, rows, np.dtype("float64"))
        may_split = work.partial.size > 0
        assert work.scal[SPLITS] == may_split
        allowed = work.scal.copy()
        allowed[SPLITS] = 1
        if not may_split:
            for k, m, first in _layers(sizes):
                for r in range(1, rows + 1):
                    assert split_blocks(r, k, m, allowed, first) == 1
        if sizes in ((784, 30, 10), (784, 100, 10)):
            assert may_split == (MAX_BLOCKS > 1)
    scal = make_scalars(np.dtype("float64"), splits=False)
    assert split_blocks(*SHAPES["split over the inputs"], scal, False) == 1
    assert split_blocks(*SHAPES["first layer, few rows"], scal, True) == 1


def test_a_split_forward_pass_without_room_for_its_blocks_runs_whole(dtype):
    """``partial`` too small for the blocks: the product is not split, and nothing is written."""
    A, W, b, _ = _arrays(SHAPES["split over the inputs"], dtype)
    code, one = ACTIVATIONS["relu"], np.int64(ONE)
    split = _partial(A, W)
    small = np.full(A.shape[0] * W.shape[1], np.nan, dtype=dtype)
    Z_split, Z_whole = (np.full((A.shape[0], W.shape[1]), np.nan, dtype=dtype) for _ in range(2))
    _forward(A, W, b, Z_split, code, make_scalars(np.dtype(dtype)), one, split)
    _forward(A, W, b, Z_whole, code, make_scalars(np.dtype(dtype)), one, small)
    assert np.isnan(small).all()
    if MAX_BLOCKS > 1:
        assert not np.isnan(split).all()
    expected = np.maximum(A.astype(np.float64) @ W.astype(np.float64) + b, 0)
    for Z in (Z_split, Z_whole):
        assert_close(Z, expected, dtype, factor=10)


@pytest.mark.parametrize("name", ["blas", "parallel blocks", "split over the inputs"])
def test_blas_products_apply_the_weight_factor(name, dtype):
    """BLAS multiplies ``W`` by the factor in its slot; see nnjit.propagation.backward."""
    A, W, b, dZ = _arrays(SHAPES[name], dtype)
    scal = make_scalars(np.dtype(dtype))
    scal[WEIGHT_SCALES] = 0.75
    slot = np.int64(WEIGHT_SCALES)
    Z = np.full((A.shape[0], W.shape[1]), np.nan, dtype=dtype)
    _forward(A, W, b, Z, ACTIVATIONS["relu"], scal, slot)
    A64, W64, b64, dZ64 = (x.astype(np.float64) for x in (A, W, b, dZ))
    assert_close(Z, np.maximum(A64 @ (0.75 * W64) + b64, 0), dtype, factor=10)
    dA = np.full_like(A, np.nan)
    dense_input_grad(
        kernel_table(W.dtype), dZ, W, A, dA, ACTIVATIONS["identity"], scal, slot, False
    )
    assert_close(dA, dZ64 @ (0.75 * W64).T, dtype, factor=10)


def _outer(A, dZ, C, scal, alpha, beta, transposed):
    """``C <- scal[alpha] A.T @ dZ + scal[beta] C``, no momentum; ``C`` stored transposed or not."""
    stored = np.ascontiguousarray(C.T) if transposed else C
    table, slots = kernel_table(dZ.dtype), (np.int64(alpha), np.int64(beta))
    if transposed:
        transposed_outer(table, A, _every_row(A), dZ, stored, scal, *slots, stored, stored, False)
        return stored.T
    dense_outer(table, A, dZ, stored, scal, *slots, stored, stored, False, True)
    return stored


@TRANSPOSED
def test_outer_product(shape, transposed, dtype):
    A, _, _, dZ = _arrays(shape, dtype)
    C = np.full((A.shape[1], dZ.shape[1]), np.nan, dtype=dtype)
    C = _outer(A, dZ, C, make_scalars(np.dtype(dtype)), ONE, ZERO, transposed)
    assert_close(C, A.astype(np.float64).T @ dZ.astype(np.float64), dtype, factor=10)


@TRANSPOSED
def test_outer_product_as_sgd_step(shape, transposed, dtype):
    """``W <- (1 - lr l2) W - lr A.T @ dZ``: the fused step of plain SGD."""
    A, W, _, dZ = _arrays(shape, dtype)
    lr = 0.1
    for l2 in (0.0, 0.01):
        scal = make_scalars(np.dtype(dtype))
        scal[MINUS_LR] = -lr
        scal[DECAY] = 1 - lr * l2
        stepped = _outer(A, dZ, W.copy(), scal, MINUS_LR, DECAY, transposed)
        A64, W64, dZ64 = (x.astype(np.float64) for x in (A, W, dZ))
        assert_close(stepped, (1 - lr * l2) * W64 - lr * A64.T @ dZ64, dtype, factor=10)


@pytest.mark.parametrize(("blocks", "l2"), [(1, 0.0), (1, 0.01), (2, 0.01), (3, 0.0)])
def test_a_transposed_forward_pass_takes_the_pending_step_first(shape, blocks, l2, dtype):
    """The step the last batch left pending, then the product, as the two apart.

    See :func:`nnjit.propagation.backward`: the first layer kept transposed
    takes its step in the next forward pass's parallel blocks.
    """
    A_step, W, b, dZ = _arrays(shape, dtype)
    A = np.random.default_rng(3).standard_normal(A_step.shape).astype(dtype)
    scal = make_scalars(np.dtype(dtype))
    scal[MINUS_LR], scal[DECAY] = -0.1, 1 - 0.1 * l2
    scal[dense.TRANSPOSED] = blocks
    code, one = ACTIVATIONS["relu"], np.int64(ONE)
    apart = _outer(A_step, dZ, W.copy(), scal, MINUS_LR, DECAY, True)
    expected = np.full((A.shape[0], W.shape[1]), np.nan, dtype=dtype)
    _forward(A, apart, b, expected, code, scal, one, transposed=True)
    stored = np.ascontiguousarray(W.T)
    Z = np.full_like(expected, np.nan)
    # Both batches are rows of one array, the data, read where they are.
    source = np.concatenate([A_step, A])
    rows_step, rows = np.split(_every_row(source), 2)
    args = (source, rows, False, _partial(A, W), True, True, (True, rows_step, dZ))
    dense_forward(kernel_table(W.dtype), A, stored, b, Z, code, scal, one, *args)
    np.testing.assert_array_equal(stored.T, apart)
    np.testing.assert_array_equal(Z, expected)


@pytest.mark.parametrize("preferred", [-1.0, 1.0])
def test_a_transposed_product_gives_the_same_bits_split_or_as_one_block(shape, preferred, dtype):
    """A layer kept transposed runs split or as one block, whichever was quicker, alike.

    ``preferred`` starts the choice on the split (-1) or on one block (+1);
    the calls from ``CHOICE_TRIAL`` try the other way, and the second call
    of each way is timed (see ``nnjit.transposed._compare``).
    """
    A, W, b, dZ = _arrays(shape, dtype)
    stored = np.ascontiguousarray(W.T)
    scal = make_scalars(np.dtype(dtype))
    scal[dense.TRANSPOSED] = 2
    scal[-CHOICE_SLOTS] = preferred
    code, one = ACTIVATIONS["relu"], np.int64(ONE)
    expected = np.full((A.shape[0], W.shape[1]), np.nan, dtype=dtype)
    _forward(A, W, b, expected, code, make_scalars(np.dtype(dtype)), one, transposed=True)
    args = (A, _every_row(A), False, _partial(A, W), True, True, (False, NO_ROWS, dZ))
    for _ in range(CHOICE_TRIAL + 4):
        Z = np.full_like(expected, np.nan)
        dense_forward(kernel_table(W.dtype), A, stored, b, Z, code, scal, one, *args)
        np.testing.assert_array_equal(Z, expected)
    assert scal[-1] == CHOICE_TRIAL + 4  # the calls were counted
    assert scal[-2] != 0  # and the try timed


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_step_in_the_blocks_equals_the_serial_step(shape, nesterov, dtype):
    """Large layers take the momentum step inside the blocks of their weight gradient."""
    A, W, _, dZ = _arrays(shape, dtype)
    k, m = W.shape
    dt = np.dtype(dtype).type
    cfg = SGDConfig(dt(0.1), dt(0.9), nesterov, dt(0.01))
    scal = make_scalars(np.dtype(dtype))
    blocks = max(n_blocks(A.shape[0], k, m, k, scal), split_blocks(A.shape[0], k, m, scal, True))
    scal[[MINUS_LR, MOMENTUM, L2, NESTEROV]] = -cfg.lr, cfg.momentum, cfg.l2, nesterov
    V = np.random.default_rng(5).standard_normal(W.shape).astype(dtype)
    G = np.empty_like(W)
    one, zero = np.int64(ONE), np.int64(ZERO)
    dense_outer(kernel_table(dZ.dtype), A, dZ, G, scal, one, zero, W, V, False, True)
    W_serial, V_serial = W.copy(), V.copy()
    sgd_step(W_serial.ravel(), G.ravel(), V_serial.ravel(), cfg, cfg.l2, 0, W.size)
    G_blocks = np.empty_like(W)
    table = kernel_table(dZ.dtype)
    stepped = dense_outer(table, A, dZ, G_blocks, scal, one, zero, W, V, True, True)
    assert stepped == (blocks > 1)
    np.testing.assert_array_equal(G_blocks, G)
    if stepped:
        np.testing.assert_array_equal(W, W_serial)
        np.testing.assert_array_equal(V, V_serial)


@pytest.mark.parametrize("rows", [1, 3, 4, 37])
def test_column_sums(rows, dtype):
    D = np.random.default_rng(3).standard_normal((rows, 6)).astype(dtype)
    out = np.full(6, np.nan, dtype=dtype)
    column_sums(D, out)
    assert_close(out, D.astype(np.float64).sum(axis=0), dtype)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_rows_finite_finds_any_nonfinite_value_in_its_rows(value, dtype):
    A = np.random.default_rng(4).standard_normal((9, 13)).astype(dtype)
    assert rows_finite(A, 0, 9)
    for n, j in [(0, 0), (4, 7), (8, 12)]:
        bad = A.copy()
        bad[n, j] = value
        assert not rows_finite(bad, 0, 9)
        assert not rows_finite(bad, n, n + 1)
        assert rows_finite(bad, 0, n)  # rows before it
        assert rows_finite(bad, n + 1, 9)  # and after it


def test_rows_finite_accepts_the_largest_values(dtype):
    largest = np.finfo(dtype).max
    A = np.full((5, 6), largest, dtype=dtype)
    A[::2] = -largest
    assert rows_finite(A, 0, 5)
