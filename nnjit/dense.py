"""Dense layers: the three matrix products of a layer, fused with what follows them.

A layer is ``Z = A_prev @ W + b`` with ``W`` of shape ``(n_in, n_out)`` and one
sample per row.  Its products are

* forward, ``A = f(A_prev @ W + b)``;
* input gradient, ``dA_prev = (dZ @ W.T) * f'(A_prev)``;
* weight gradient, ``A_prev.T @ dZ``, either written out or applied at once
  as an SGD step ``W <- (1 - lr l2) W - lr A_prev.T @ dZ``.

Each goes to BLAS when the matrices are large enough to pay for the call, and
to plain loops otherwise (a single sample, tiny layers).  The loops over narrow
layers take four samples at a time, and apply ReLU, leaky ReLU and identity
inside their last pass; with plain SGD on a single sample, the loop that reads
a layer's weights for its input gradient also takes their step.  Large BLAS
products are split into row blocks run in parallel; each block is one
single-threaded BLAS call followed, while the block is still in cache, by the
bias, the piecewise-linear activations and their derivatives, and under
momentum the step of its rows of the weights.  The first layer's forward blocks
also gather their rows of a shuffled mini-batch from the data and check them
for NaN and infinity, just before their product reads them.  Sigmoid, tanh and
softmax and their derivatives follow the whole product in a pass of their own:
inside the blocks they were compiled again in every library that linked the
blocks, about a tenth of the cold compile when the entry point still linked
them all, for a pass that costs little next to the product.  Every row of the
result is written by one block only, and the blocks depend on the shapes and on
the process's core count (see ``MAX_BLOCKS``), never on the number of threads,
so the result is the same for any number of threads.
"""

from __future__ import annotations

import itertools
import os

import numba
import numpy as np
from numba import prange

from nnjit._config import POOL_PID, inline, jit, jit_native, jit_parallel_native
from nnjit._views import as_vector, copy_vector, row, view2d
from nnjit.activations import (
    LEAKY_RELU,
    RELU,
    is_piecewise_linear,
    negative_slope,
)
from nnjit.blas import NOTRANS, TRANS, gemm
from nnjit.kernel_calls import (
    ACTIVATE_ROWS,
    DERIVATIVE_ROWS,
    FORWARD_BLAS,
    FORWARD_ROWS,
    INPUT_GRAD_BLAS,
    INPUT_GRAD_ROWS,
    OUTER_BLAS,
    OUTER_ROWS,
    PARALLEL_BLOCKS,
    PARALLEL_INPUTS,
    PARALLEL_TRANSPOSED,
    SGD_STEP,
    SPLIT_BLOCKS,
    SUM_BLOCKS,
    TRANSPOSED_ROWS,
    call,
)
from nnjit.sgd import SGDConfig

# A product goes to BLAS from this many samples and this many weights on.
BLAS_MIN_ROWS = 4
BLAS_MIN_WEIGHTS = 256
# Multiply-adds from which a product is split into parallel row blocks.
PARALLEL_MIN_WORK = 1 << 20
MIN_BLOCK_ROWS = 16
# Multiply-adds from which a product too small for row blocks is split over
# the layer's inputs instead (see split_blocks), and the fewest inputs a
# block takes.
SPLIT_MIN_WORK = 1 << 17
MIN_BLOCK_INPUTS = 64
# A first layer's product large enough for row blocks is split over its
# inputs all the same if it has at least INPUTS_PER_ROW inputs per row of the
# batch and at most SPLIT_MAX_RESULT values in its result (see split_blocks).
INPUTS_PER_ROW = 4
SPLIT_MAX_RESULT = 1 << 15


# Row blocks per product: one per core, at most BLOCK_LIMIT.  Each block packs
# the whole weight matrix for its BLAS call, so more blocks than cores only
# cost time.  The blocks, and so every result, never depend on the number of
# threads a run uses (they may differ between machines and core counts, as
# the BLAS kernels themselves do).  The compiled kernels read MAX_BLOCKS from
# the scalar slots at run time (see make_scalars), never as a constant: the
# kernels in numba's cache may come from a process with other cores.  The
# cores are those numba counted when it was imported, before its thread pool
# started: with OMP_PLACES or OMP_PROC_BIND set, OpenMP binds the main thread
# to one core as it starts its threads.
BLOCK_LIMIT = 8
MAX_BLOCKS = max(1, min(BLOCK_LIMIT, numba.config.NUMBA_DEFAULT_NUM_THREADS))
# Below this many outputs the loops accumulate in registers, not in rows.
NARROW = 8

# What a parallel block computes: the low bits are the product; a forward
# block may first gather its rows of the batch from the data and check them.
FORWARD, INPUT_GRAD, OUTER = 0, 1, 2
PRODUCT = 3
GATHER_ROWS, CHECK_ROWS = 4, 8
# A forward pass through a first layer kept transposed may first take the
# previous batch's step of its weights, in the same parallel blocks.
STEP_FIRST = 16

# Slots of the scalar array handed to BLAS: alpha and beta must be pointers.
# Then the momentum, L2 and Nesterov flag of the step (see _block_config),
# MAX_BLOCKS, whether products may be split over their inputs (the kernel
# that runs them is in the table; see split_blocks), and whether the call
# keeps the first layer's weights transposed (see nnjit.transposed).  After
# them, one slot per block for the result of a finiteness check, then one per
# layer for the factor its stored weights are to be multiplied by (see
# nnjit.propagation), and last the CHOICE_SLOTS of the transposed layer's
# choice between one block and the split (see
# nnjit.transposed.parallel_transposed), counted from the end.  The layout
# is the same on every machine.
(ONE, ZERO, MINUS_LR, DECAY, STEP, MOMENTUM, L2, NESTEROV, BLOCKS, SPLITS, TRANSPOSED, FINITE) = (
    range(12)
)
WEIGHT_SCALES = FINITE + BLOCK_LIMIT
CHOICE_SLOTS = 3


@inline
def transposed_product(
    kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step, D_step
):
    """A product of a layer whose weights are stored transposed (see :mod:`nnjit.transposed`).

    Its batch is the rows ``index`` of ``A``, read where they are.  Split
    into ``scal[TRANSPOSED]`` parallel blocks if more than one.  With
    ``STEP_FIRST`` in ``task``, the step with the batch of the rows
    ``index_step`` of ``A_step`` and the gradient ``D_step`` comes first
    (see :func:`nnjit.transposed.parallel_transposed`).  With ``CHECK_ROWS``
    and parallel blocks, the batch is checked for NaN and infinity, a share
    of its rows in each block, into ``scal[FINITE + block]``; on one loop
    the caller checks it (the check inlined here cost each function that
    inlines this one about a second of compile time).  An ``OUTER`` product
    with ``code`` not 0 is followed by the momentum step (see
    :func:`transposed_outer`).
    """
    if scal[TRANSPOSED] > 1:
        args = (kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step)
        call(kernels, PARALLEL_TRANSPOSED, (*args, D_step))
    else:
        lo, hi = np.int64(0), np.int64(WT.shape[0])
        transposed_range(
            kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step,
            D_step, lo, hi,
        )  # fmt: skip


@inline
def transposed_block_count(scal, n_out):
    """The parallel blocks of a layer kept transposed with ``n_out`` outputs.

    ``scal[TRANSPOSED]``, and at most one per pass of three outputs (see
    :func:`nnjit.transposed.parallel_transposed`); one block runs on the
    calling thread.
    """
    return min(int(scal[TRANSPOSED]), (n_out + 2) // 3)


@inline
def check_rows(A, index, scal, block, blocks):
    """Write whether block ``block`` of ``blocks``' share of the rows ``index`` of ``A`` is finite.

    To ``scal[FINITE + block]``, 1 or 0.
    """
    lo, hi = block_bounds(index.size, blocks, block)
    finite = True
    for n in range(lo, hi):
        finite = finite and values_finite(row(A, index[n]))
    scal[FINITE + block] = 1 if finite else 0


@inline
def transposed_outer(kernels, A, index, dZ, WT, scal, alpha, beta, W, V, momentum):
    """``WT <- scal[alpha] * dZ.T @ A[index] + scal[beta] * WT`` for weights stored transposed.

    The weight step (or gradient) of a first layer kept transposed: with
    ``alpha = MINUS_LR`` and ``beta = DECAY``, its SGD step.  The batch is
    the rows ``index`` of ``A``.  The product reads no bias and no
    activation.  With ``momentum``, ``WT`` is the gradient, and the rows
    that each block computed then take the momentum step of the weights
    ``W`` with the velocity ``V`` (both stored as ``WT`` is), with the
    settings of :func:`_block_config`, in the same parallel loop: each row
    stays with one core.  W3 with ``momentum=0.9`` in float64 took a median
    0.338 s against 0.182 s on one thread when the step ran after the loop,
    on the main thread (30 alternated fits in one process): every step
    moved the weights and gradient between the cores.
    """
    task = np.int64(OUTER)
    flag = np.int64(1) if momentum else np.int64(0)
    # The step's weights and velocity take the places of the pending step's
    # batch and gradient, which an OUTER product never reads.
    transposed_product(kernels, task, A, index, WT, scal, dZ, flag, scal, alpha, beta, W, index, V)


@inline
def transposed_range(
    kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step, D_step, lo, hi
):
    """Rows ``lo:hi`` of :func:`transposed_product`.

    The pending step if asked, then the product, then for an ``OUTER``
    product with ``code`` not 0 the momentum step of the weights ``A_step``
    with the velocity ``D_step`` and the gradient ``WT`` (see
    :func:`transposed_outer`).
    """
    if task & STEP_FIRST:
        step = (np.int64(OUTER), A_step, index_step, WT, b, D_step, np.int64(0), scal, alpha, beta)
        call(kernels, TRANSPOSED_ROWS, (*step, lo, hi))
    product = (task & PRODUCT, A, index, WT, b, D, code, scal, alpha, beta, lo, hi)
    call(kernels, TRANSPOSED_ROWS, product)
    if task & PRODUCT == OUTER and code != 0:
        _momentum_rows(kernels, A_step, WT, D_step, scal, lo, hi)


@inline
def use_blas(rows, n_in, n_out):
    return rows >= BLAS_MIN_ROWS and n_in * n_out >= BLAS_MIN_WEIGHTS


@inline
def n_blocks(batch, n_in, n_out, rows, scal):
    """How many parallel blocks of ``rows`` rows a product of a layer takes.

    Only BLAS products with at least ``PARALLEL_MIN_WORK`` multiply-adds are
    split, into at most ``scal[BLOCKS]`` blocks; the blocks are fixed by
    ``rows``.
    """
    if batch * n_in * n_out < PARALLEL_MIN_WORK or not use_blas(batch, n_in, n_out):
        return 1
    return max(1, min(int(scal[BLOCKS]), rows // MIN_BLOCK_ROWS))


@jit
def split_blocks(batch, n_in, n_out, scal, first):
    """How many blocks over the inputs a product of a layer takes; 1 if not split.

    A product too small for row blocks (see :func:`n_blocks`), such as a
    mini-batch of ten samples through a 784 x 30 layer, is split over the
    layer's inputs, the rows of ``W``, the way the weight gradient already
    is: each block multiplies the columns ``lo:hi`` of the batch by the rows
    ``lo:hi`` of ``W``, and the forward pass sums the blocks' results in a
    fixed order.  Every block then reads and writes only its own rows of
    ``W``, which stay in its core's cache from one step to the next; split
    over the samples, both cores would read all of ``W`` just after the
    other core wrote half of it.  The blocks, like the row blocks, depend on
    the shapes and ``scal[BLOCKS]`` only.  1 unless ``scal[SPLITS]``: the
    kernel that runs the blocks compiles only for the calls that need it,
    which :func:`split_count`, the same rule in Python, tells from their
    batch sizes.

    The ``first`` layer of a network, which has no input gradient, is split
    over its inputs even where row blocks are possible if the batch has few
    rows for the layer's inputs (at least ``INPUTS_PER_ROW`` inputs a row)
    and a result of at most ``SPLIT_MAX_RESULT`` values: each core then
    keeps its rows of ``W`` and its columns of the batch in its cache from
    the forward product to the step, and the blocks' partial results, which
    one core adds up, stay small.  Batches of 32 and 64 samples through a
    784 x 100 first layer trained in 0.65-0.85 of the time of row blocks,
    and batches of 128 in 0.95-1.01 (``docs/performance.md``).  W4's
    batches of 200, 3.9 inputs a row, keep row blocks: split, they gained
    3-7 %, while a cold first fit of W4 would compile the split's kernel.
    """
    if scal[SPLITS] == 0:
        return 1
    if batch * n_in * n_out < SPLIT_MIN_WORK or not use_blas(batch, n_in, n_out):
        return 1
    few = first and few_rows(batch, n_in, n_out)
    if n_blocks(batch, n_in, n_out, batch, scal) > 1 and not few:
        return 1
    return max(1, min(int(scal[BLOCKS]), n_in // MIN_BLOCK_INPUTS))


@inline
def few_rows(batch, n_in, n_out):
    """Whether a first layer's batch has few rows for its inputs (see :func:`split_blocks`).

    The compiled rule and its Python twin :func:`split_count` (through
    ``few_rows.py_func``) share this one statement of it.
    """
    return n_in >= INPUTS_PER_ROW * batch and batch * n_out <= SPLIT_MAX_RESULT


@inline
def block_bounds(rows, blocks, index):
    size = (rows + blocks - 1) // blocks
    return min(index * size, rows), min((index + 1) * size, rows)


# -- forward -------------------------------------------------------------------


@jit_native
def _forward_rows(A, W, b, Z, code, scal, alpha, lo, hi):
    """Rows ``lo:hi`` of ``Z = f(A @ W + b)`` by loops, for a piecewise-linear ``f``.

    For the products that :func:`use_blas` leaves to loops; the others go
    to :func:`_forward_blas`.  Other activations are left to
    :func:`dense_forward`.  Only BLAS applies ``scal[alpha]``: the loops need
    it to be 1.
    """
    m = W.shape[1]
    slope = negative_slope(code, Z)
    if m >= NARROW:
        _forward_wide(A, W, b, Z, slope, lo, hi)
    else:
        _forward_narrow(A, W, b, Z, slope, lo, hi)


@jit_native
def _forward_blas(A, W, b, Z, code, scal, alpha, lo, hi):
    """Rows ``lo:hi`` of ``Z = f(A @ (scal[alpha] W) + b)`` by BLAS; ``f`` piecewise-linear."""
    k, m = W.shape
    slope = negative_slope(code, Z)
    gemm(NOTRANS, NOTRANS, m, hi - lo, k, scal[alpha:], W, m, A[lo:], k, scal[ZERO:], Z[lo:], m)
    for n in range(lo, hi):
        z = row(Z, n)
        for j in range(m):
            z[j] = _piecewise(z[j] + b[j], slope)


@inline
def _forward_wide(A, W, b, Z, slope, lo, hi):
    """``Z[n] = b + sum_i A[n, i] W[i]``, up to four rows of ``W`` per pass over ``Z[n]``.

    The first pass, two rows, starts from ``b`` and the last, one or two,
    applies the piecewise-linear activation: a pass of its own over a row
    just written costs as much as a product pass.  With one or two inputs
    the first pass is the last: W1's 2-10-1 network spent a quarter of its
    step in this loop, and its two passes over ten outputs took 1.7 times as
    long as one.  The passes in between take four rows each, and two if
    two are left: on one sample through a 128 x 128 layer, four rows per
    pass took 1.66-1.73 µs against 2.0-2.1 µs for two in float64, and
    0.87-0.89 µs against 1.09-1.19 µs in float32; eight were no faster.
    """
    k, m = W.shape
    w0 = row(W, 0)
    last = row(W, k - 1)
    # The rows of the last pass: two if k is even, else one.
    tail = 2 - k % 2
    for n in range(lo, hi):
        z = row(Z, n)
        a = row(A, n)
        a0 = a[0]
        a_last = a[k - 1]
        if k == 1:
            for j in range(m):
                z[j] = _piecewise(b[j] + a0 * w0[j], slope)
            continue
        if k == 2:
            for j in range(m):
                z[j] = _piecewise(b[j] + a0 * w0[j] + a_last * last[j], slope)
            continue
        u = row(W, 1)
        au = a[1]
        for j in range(m):
            z[j] = b[j] + a0 * w0[j] + au * u[j]
        i = 2
        while i + 4 <= k - tail:
            u = row(W, i)
            v = row(W, i + 1)
            x = row(W, i + 2)
            y = row(W, i + 3)
            au = a[i]
            av = a[i + 1]
            ax = a[i + 2]
            ay = a[i + 3]
            for j in range(m):
                z[j] += (au * u[j] + av * v[j]) + (ax * x[j] + ay * y[j])
            i += 4
        if i < k - tail:
            u = row(W, i)
            v = row(W, i + 1)
            au = a[i]
            av = a[i + 1]
            for j in range(m):
                z[j] += au * u[j] + av * v[j]
        if tail == 2:
            u = row(W, k - 2)
            au = a[k - 2]
            for j in range(m):
                z[j] = _piecewise(z[j] + au * u[j] + a_last * last[j], slope)
        else:
            for j in range(m):
                z[j] = _piecewise(z[j] + a_last * last[j], slope)


@inline
def _forward_narrow(A, W, b, Z, slope, lo, hi):
    """``Z = A @ W + b`` for few outputs: a dot product per output and row.

    The one column of a single-output layer is viewed as the contiguous
    vector it is, so its dot products vectorise.
    """
    m = W.shape[1]
    if m == 1:
        _forward_column(A, as_vector(W), b, Z, 0, slope, lo, hi)
    else:
        for j in range(m):
            _forward_column(A, W[:, j], b, Z, j, slope, lo, hi)


@inline
def _forward_column(A, w, b, Z, j, slope, lo, hi):
    """``Z[n, j] = f(b[j] + A[n] @ w)`` for ``n`` in ``lo:hi``, four rows at a time."""
    n = lo
    while n + 4 <= hi:
        t0, t1, t2, t3 = _four_dots(A, n, w)
        Z[n, j] = _piecewise(b[j] + t0, slope)
        Z[n + 1, j] = _piecewise(b[j] + t1, slope)
        Z[n + 2, j] = _piecewise(b[j] + t2, slope)
        Z[n + 3, j] = _piecewise(b[j] + t3, slope)
        n += 4
    for r in range(n, hi):
        Z[r, j] = _piecewise(b[j] + _dot(row(A, r), w), slope)


@inline
def _four_dots(M, i, v):
    """The dot products of rows ``i .. i+3`` of ``M`` with ``v``, in one loop over ``v``."""
    m0 = row(M, i)
    m1 = row(M, i + 1)
    m2 = row(M, i + 2)
    m3 = row(M, i + 3)
    t0 = t1 = t2 = t3 = v.dtype.type(0.0)
    for j in range(v.size):
        vj = v[j]
        t0 += m0[j] * vj
        t1 += m1[j] * vj
        t2 += m2[j] * vj
        t3 += m3[j] * vj
    return t0, t1, t2, t3


@inline
def _dot(u, v):
    """``u @ v`` for 1-D arrays of ``v``'s length."""
    total = v.dtype.type(0.0)
    for j in range(v.size):
        total += u[j] * v[j]
    return total


@inline
def _piecewise(v, slope):
    """A piecewise-linear activation at ``v``."""
    return v if v > 0 else slope * v


@inline
def _piecewise_from_output(v, a, slope):
    """``v`` times a piecewise-linear activation's derivative at output ``a``."""
    return v if a > 0 else slope * v


@inline
def dense_forward(
    kernels, A, W, b, Z, code, scal, alpha, source, rows, check, partial, first, transposed, pending
):
    """``Z <- f(A @ (scal[alpha] W) + b)`` with activation ``code``; ``Z`` may not alias ``A``.

    ``scal[alpha]`` must be 1 unless ``use_blas(A.shape[0], n_in, n_out)``.

    If ``rows`` is not empty, ``A`` is first filled with the rows ``rows``
    of ``source``: the first layer gathers a shuffled mini-batch.  With
    ``check``, ``A`` is then tested for NaN and infinity.  Large products do
    both in their parallel blocks, each on its own rows, while the rows are
    on their way into the cache for the product: the batch is read from
    memory once, by every core, in the product's own parallel loop.  A
    product split over the inputs (see :func:`split_blocks`) writes each
    block's result to the flat buffer ``partial``, which must hold
    ``split_blocks(...) * Z.size`` values, or the product runs unsplit;
    ``first``: the layer is the network's first (see :func:`split_blocks`).
    With ``transposed``, ``W`` is stored transposed, ``(n_out, n_in)``, and
    ``scal[alpha]`` must be 1 (see :mod:`nnjit.transposed`); the batch is
    then the rows ``rows`` of ``source``, which the product reads where they
    are (``A``, unread, gives the batch's size), and ``pending`` is
    ``(stepping, rows_step, D_step)``: if ``stepping``, the pass first takes
    the SGD step of the weights that the previous batch, the rows
    ``rows_step`` of ``source``, with the gradient ``D_step`` of its ``Z``,
    left pending (see :func:`nnjit.propagation.backward`), row by row with
    the product.  Its parallel blocks check the batch, a share of the rows
    each (see :func:`transposed_product`).  Gathered first on one core, W3's
    batches took that core 10-12 µs of a 40-50 µs step while the other
    waited, and the other core then read them from the first's cache: read
    where they are, W3's epochs took a median 0.83 of the time in float64
    and 0.82 in float32 (six alternated processes each).  Returns whether
    the batch is finite (True unchecked); if not, ``Z`` holds whatever it
    was computed from.
    """
    n = A.shape[0]
    k, m = W.shape
    blocks = 1 if transposed else n_blocks(n, k, m, n, scal)
    split = 1 if transposed else call(kernels, SPLIT_BLOCKS, (n, k, m, scal, first))
    task = FORWARD | (GATHER_ROWS if rows.size > 0 else 0) | (CHECK_ROWS if check else 0)
    finite = True
    if 1 < split and split * n * m <= partial.size:
        blocks = split
        P = view2d(partial, 0, split * n, m)
        args = (np.int64(task), (A, W, Z, source, P), b, code, scal, alpha, blocks, rows)
        call(kernels, PARALLEL_INPUTS, args)
        call(kernels, SUM_BLOCKS, (P, b, Z, split, code))
    elif blocks > 1:
        slots = (alpha, np.int64(ZERO))
        args = (np.int64(task), (A, W, Z, source, Z), b, code, scal, slots, blocks, rows)
        call(kernels, PARALLEL_BLOCKS, args)
    elif transposed:
        stepping, rows_step, D_step = pending
        product = FORWARD | (STEP_FIRST if stepping else 0) | (CHECK_ROWS if check else 0)
        if check and scal[TRANSPOSED] <= 1:  # else the parallel blocks check it
            check_rows(source, rows, scal, np.int64(0), np.int64(1))
        # The slots are the step's: the forward product reads none.
        lr, decay = np.int64(MINUS_LR), np.int64(DECAY)
        transposed_product(
            kernels, np.int64(product), source, rows, W, b, Z, code, scal, lr, decay, source,
            rows_step, D_step,
        )  # fmt: skip
        if check:
            for block in range(transposed_block_count(scal, k)):
                finite = finite and scal[FINITE + block] != 0
    else:
        for i in range(rows.size):
            copy_vector(row(A, i), row(source, rows[i]))
        if check:
            finite = rows_finite(A, np.int64(0), n)
        if use_blas(n, k, m):
            call(kernels, FORWARD_BLAS, (A, W, b, Z, code, scal, alpha, np.int64(0), n))
        else:
            call(kernels, FORWARD_ROWS, (A, W, b, Z, code, scal, alpha, np.int64(0), n))
    if check and blocks > 1:  # each parallel block checked its own part
        for index in range(blocks):
            finite = finite and scal[FINITE + index] != 0
    if not is_piecewise_linear(code):
        call(kernels, ACTIVATE_ROWS, (Z, np.int64(0), n, code))
    return finite


@inline
def _forward_inputs(A, W, source, P, rows, task, scal, alpha, index, lo, hi):
    """Block ``index`` of a forward pass split over the inputs ``lo:hi``.

    Writes ``A[:, lo:hi] @ (scal[alpha] W[lo:hi])`` to the rows ``index * B``
    on of ``P``, where :func:`_sum_blocks` adds it up.  With ``GATHER_ROWS``
    in ``task`` it first copies the columns ``lo:hi`` of the rows ``rows`` of
    ``source`` into ``A``; with ``CHECK_ROWS`` it writes whether they are
    finite to ``scal[FINITE + index]``.
    """
    B = A.shape[0]
    k, m = W.shape
    if task & GATHER_ROWS:
        for n in range(B):
            copy_vector(row(A, n)[lo:hi], row(source, rows[n])[lo:hi])
    if task & CHECK_ROWS:
        finite = True
        for n in range(B):
            finite = finite and values_finite(row(A, n)[lo:hi])
        scal[FINITE + index] = finite
    gemm(
        NOTRANS, NOTRANS, m, B, hi - lo,
        scal[alpha:], W[lo:], m, A[:, lo:], k, scal[ZERO:], P[index * B :], m,
    )  # fmt: skip


@jit_native
def _sum_blocks(P, b, Z, blocks, code):
    """``Z = f(b + P[0] + P[1] + ...)``, the blocks' ``Z.shape[0]`` rows each, in order.

    ``f`` is the activation ``code`` if piecewise-linear, else the identity
    (see :func:`dense_forward`); ``blocks`` is at least 2.
    """
    slope = negative_slope(code, Z)
    B, m = Z.shape
    for n in range(B):
        z = row(Z, n)
        p = row(P, n)
        for j in range(m):
            z[j] = b[j] + p[j]
        for index in range(1, blocks - 1):
            p = row(P, index * B + n)
            for j in range(m):
                z[j] += p[j]
        p = row(P, (blocks - 1) * B + n)
        for j in range(m):
            z[j] = _piecewise(z[j] + p[j], slope)


# -- input gradient ------------------------------------------------------------


@jit_native
def _input_grad_rows(dZ, W, A, dA, code, scal, alpha, step, lo, hi):
    """Rows ``lo:hi`` of ``dA = (dZ @ W.T) * f'(A)`` by loops, for a piecewise-linear ``f``.

    As in the forward pass, for the products that :func:`use_blas` leaves to
    loops (the others go to :func:`_input_grad_blas`); other derivatives are
    left to :func:`dense_input_grad`, and the loops need ``scal[alpha]`` to
    be 1.  With ``step`` (one sample), the loop also takes the SGD step of
    ``W`` (see :func:`_input_grad_step`).
    """
    m = W.shape[1]
    slope = negative_slope(code, dA)
    if step:
        _input_grad_step(dZ, W, A, dA, slope, scal[MINUS_LR], scal[DECAY])
    elif m >= NARROW:
        _input_grad_wide(dZ, W, A, dA, slope, lo, hi)
    else:
        _input_grad_narrow(dZ, W, A, dA, slope, lo, hi)


@jit_native
def _input_grad_blas(dZ, W, A, dA, code, scal, alpha, lo, hi):
    """Rows ``lo:hi`` of ``dA = (dZ @ (scal[alpha] W).T) * f'(A)`` by BLAS; ``f`` piecewise."""
    k, m = W.shape
    gemm(TRANS, NOTRANS, k, hi - lo, m, scal[alpha:], W, m, dZ[lo:], m, scal[ZERO:], dA[lo:], k)
    if code == RELU or code == LEAKY_RELU:
        slope = negative_slope(code, dA)
        for n in range(lo, hi):
            _piecewise_derivative(row(dA, n), row(A, n), slope)


@inline
def _input_grad_inputs(dZ, W, A, dA, code, scal, alpha, lo, hi):
    """Columns ``lo:hi`` of ``dA = (dZ @ (scal[alpha] W).T) * f'(A)`` by BLAS; ``f`` piecewise.

    A block of an input gradient split over the inputs: it reads only the
    rows ``lo:hi`` of ``W``.
    """
    k, m = W.shape
    B = dZ.shape[0]
    gemm(TRANS, NOTRANS, hi - lo, B, m, scal[alpha:], W[lo:], m, dZ, m, scal[ZERO:], dA[:, lo:], k)
    if code == RELU or code == LEAKY_RELU:
        slope = negative_slope(code, dA)
        for n in range(B):
            _piecewise_derivative(row(dA, n)[lo:hi], row(A, n)[lo:hi], slope)


@inline
def _piecewise_derivative(d, a, slope):
    for i in range(d.size):
        d[i] = _piecewise_from_output(d[i], a[i], slope)


@inline
def _input_grad_wide(dZ, W, A, dA, slope, lo, hi):
    """``dA = dZ @ W.T``: dot products with four rows of ``W`` at a time.

    The four share each load of ``dZ[n]`` and the loop around them: one
    row at a time, the input gradient of W6's 128 x 128 layers on one
    sample took 1.3 times as long in float64.
    """
    k = W.shape[0]
    for n in range(lo, hi):
        d = row(dZ, n)
        a = row(A, n)
        out = row(dA, n)
        i = 0
        while i + 4 <= k:
            t0, t1, t2, t3 = _four_dots(W, i, d)
            out[i] = _piecewise_from_output(t0, a[i], slope)
            out[i + 1] = _piecewise_from_output(t1, a[i + 1], slope)
            out[i + 2] = _piecewise_from_output(t2, a[i + 2], slope)
            out[i + 3] = _piecewise_from_output(t3, a[i + 3], slope)
            i += 4
        for r in range(i, k):
            out[r] = _piecewise_from_output(_dot(row(W, r), d), a[r], slope)


@inline
def _input_grad_step(dZ, W, A, dA, slope, minus_lr, decay):
    """``dA = (dZ @ W.T) * f'(A)``, then ``W <- decay W + minus_lr A.T @ dZ``, for one sample.

    The plain SGD step of a layer, taken in the same loop over each row of
    ``W`` as the row's dot product with ``dZ``: the loop reads the row once
    and writes it back stepped.  Apart, the two read the weights twice: on
    a 128 x 128 layer they took 4.8-5.4 µs a sample in float64 and
    2.4-2.5 µs in float32, against 2.6-3.1 µs and 1.3-1.5 µs in one loop.
    Four rows per loop, sharing the loads of ``dZ``, were no faster.
    """
    d = row(dZ, 0)
    a = row(A, 0)
    out = row(dA, 0)
    zero = W.dtype.type(0.0)
    for i in range(W.shape[0]):
        w = row(W, i)
        s = minus_lr * a[i]
        total = zero
        # Without L2, no multiply by the decay: the step's values are then
        # those of the step on its own (_outer_rows), to the bit.
        if decay == 1:
            for j in range(d.size):
                wj = w[j]
                total += wj * d[j]
                w[j] = wj + s * d[j]
        else:
            for j in range(d.size):
                wj = w[j]
                total += wj * d[j]
                w[j] = decay * wj + s * d[j]
        out[i] = _piecewise_from_output(total, a[i], slope)


@inline
def _input_grad_narrow(dZ, W, A, dA, slope, lo, hi):
    """``dA = dZ @ W.T`` for few outputs: a sum of columns of ``W``.

    The last column's pass applies the derivative.
    """
    k, m = W.shape
    for n in range(lo, hi):
        d = row(dZ, n)
        a = row(A, n)
        out = row(dA, n)
        if m == 1:
            d0 = d[0]
            for i in range(k):
                out[i] = _piecewise_from_output(d0 * W[i, 0], a[i], slope)
            continue
        d0 = d[0]
        for i in range(k):
            out[i] = d0 * W[i, 0]
        for j in range(1, m - 1):
            dj = d[j]
            for i in range(k):
                out[i] += dj * W[i, j]
        dj = d[m - 1]
        for i in range(k):
            out[i] = _piecewise_from_output(out[i] + dj * W[i, m - 1], a[i], slope)


@inline
def dense_input_grad(kernels, dZ, W, A, dA, code, scal, alpha, step):
    """``dA <- (dZ @ (scal[alpha] W).T) * f'(A)``, with ``f'`` written from the output ``A``.

    ``scal[alpha]`` must be 1 unless ``use_blas(rows, n_in, n_out)``.

    With ``step``, for a single sample, ``A`` is the input of the layer and
    the call also takes the layer's plain SGD step ``W <- scal[DECAY] W +
    scal[MINUS_LR] A.T @ dZ`` in the same loop over ``W`` (see
    :func:`_input_grad_step`).  Returns whether it took it.
    """
    rows = dZ.shape[0]
    stepping = step and rows == 1
    blocks = n_blocks(rows, W.shape[0], W.shape[1], rows, scal)
    split = call(kernels, SPLIT_BLOCKS, (rows, W.shape[0], W.shape[1], scal, False))
    matrices = (dZ, W, dA, A, A)
    task = np.int64(INPUT_GRAD)
    if split > 1:
        args = (task, matrices, scal, code, scal, alpha, split, _no_rows(kernels))
        call(kernels, PARALLEL_INPUTS, args)
    elif blocks > 1:
        slots = (alpha, np.int64(ZERO))
        args = (task, matrices, scal, code, scal, slots, blocks, _no_rows(kernels))
        call(kernels, PARALLEL_BLOCKS, args)
    elif use_blas(rows, W.shape[0], W.shape[1]):
        args = (dZ, W, A, dA, code, scal, alpha, np.int64(0), rows)
        call(kernels, INPUT_GRAD_BLAS, args)
    else:
        flag = np.int64(1) if stepping else np.int64(0)
        args = (dZ, W, A, dA, code, scal, alpha, flag, np.int64(0), rows)
        call(kernels, INPUT_GRAD_ROWS, args)
    if not is_piecewise_linear(code):
        call(kernels, DERIVATIVE_ROWS, (dA, A, np.int64(0), rows, code))
    return stepping


# -- weight gradient -----------------------------------------------------------


@jit_native
def _outer_rows(A, dZ, C, scal, alpha, beta, lo, hi):
    """Rows ``lo:hi`` of ``C <- scal[alpha] * A.T @ dZ + scal[beta] * C`` by loops.

    For the products that :func:`use_blas` leaves to loops; the others go
    to :func:`_outer_blas`.
    """
    m = dZ.shape[1]
    c_scale = scal[beta]
    for i in range(lo, hi):
        c = row(C, i)
        if c_scale == 0:
            for j in range(m):
                c[j] = 0
        elif c_scale != 1:
            for j in range(m):
                c[j] *= c_scale
    if m >= NARROW:
        _outer_wide(A, dZ, C, scal[alpha], lo, hi)
    else:
        _outer_narrow(A, dZ, C, scal[alpha], lo, hi)


@jit_native
def _outer_blas(A, dZ, C, scal, alpha, beta, lo, hi):
    """Rows ``lo:hi`` of ``C <- scal[alpha] * A.T @ dZ + scal[beta] * C`` by BLAS."""
    B, k = A.shape
    m = dZ.shape[1]
    gemm(
        NOTRANS, TRANS, m, hi - lo, B,
        scal[alpha:], dZ, m, A[:, lo:], k, scal[beta:], C[lo:], m,
    )  # fmt: skip


@inline
def _outer_wide(A, dZ, C, alpha, lo, hi):
    """``C[lo:hi] += alpha A[:, lo:hi].T @ dZ``, a row of ``C`` at a time."""
    for i in range(lo, hi):
        _add_rows(row(C, i), dZ, A, i, alpha, 0, dZ.shape[1])


@inline
def _outer_narrow(A, dZ, C, alpha, lo, hi):
    """``C[lo:hi] += alpha A[:, lo:hi].T @ dZ`` for few outputs: a column of ``C`` at a time.

    As in the forward pass, a single column is viewed as a contiguous vector:
    through ``C[:, 0]`` the loop over W2's 64 hidden units stayed scalar.
    """
    m = dZ.shape[1]
    if m == 1:
        _add_rows(as_vector(C)[lo:hi], A, dZ, 0, alpha, lo, hi)
    else:
        for j in range(m):
            _add_rows(C[lo:hi, j], A, dZ, j, alpha, lo, hi)


@inline
def _add_rows(t, R, S, s, alpha, lo, hi):
    """``t += alpha sum_n S[n, s] R[n, lo:hi]``, four rows of ``R`` a pass.

    The loops run over slices from 0: indexed from ``lo``, whose sign LLVM
    cannot know, every access carries numba's test for a negative index,
    and the loop stays scalar.
    """
    B = R.shape[0]
    n = 0
    while n + 4 <= B:
        s0 = alpha * S[n, s]
        s1 = alpha * S[n + 1, s]
        s2 = alpha * S[n + 2, s]
        s3 = alpha * S[n + 3, s]
        r0 = row(R, n)[lo:hi]
        r1 = row(R, n + 1)[lo:hi]
        r2 = row(R, n + 2)[lo:hi]
        r3 = row(R, n + 3)[lo:hi]
        for i in range(t.size):
            t[i] += (s0 * r0[i] + s1 * r1[i]) + (s2 * r2[i] + s3 * r3[i])
        n += 4
    for r in range(n, B):
        sr = alpha * S[r, s]
        rr = row(R, r)[lo:hi]
        for i in range(t.size):
            t[i] += sr * rr[i]


@inline
def dense_outer(kernels, A, dZ, C, scal, alpha, beta, W, V, momentum, first):
    """``C <- scal[alpha] * A.T @ dZ + scal[beta] * C``, in row blocks of ``C``.

    With ``C = W``, ``alpha = MINUS_LR`` and ``beta = DECAY`` this is the
    whole SGD step of the weights, with no gradient buffer in between.

    With ``momentum``, if the product is split into parallel blocks, each
    block also takes the momentum step of its rows of the weights ``W``,
    with velocity ``V`` and the gradient ``C``, while they are in cache; the
    step's settings are those of :func:`_block_config`.  Returns whether the
    step was taken.  ``first``: the layer is the network's first (see
    :func:`split_blocks`).  A layer stored transposed takes
    :func:`transposed_outer` instead.
    """
    k = A.shape[1]
    blocks = n_blocks(A.shape[0], k, dZ.shape[1], k, scal)
    # A layer whose forward pass is split over its inputs keeps its blocks.
    split = call(kernels, SPLIT_BLOCKS, (A.shape[0], k, dZ.shape[1], scal, first))
    if split > 1:
        blocks = split
    if blocks > 1:
        matrices = (A, dZ, C, W, V)
        flag = np.int64(1) if momentum else np.int64(0)
        task = np.int64(OUTER)
        # The table in the place of the rows: the blocks call the momentum step through it.
        args = (task, matrices, scal, flag, scal, (alpha, beta), blocks, kernels)
        call(kernels, PARALLEL_BLOCKS, args)
        return momentum
    args = (A, dZ, C, scal, alpha, beta, np.int64(0), k)
    if use_blas(A.shape[0], k, dZ.shape[1]):
        call(kernels, OUTER_BLAS, args)
    else:
        call(kernels, OUTER_ROWS, args)
    return False


@inline
def _block_config(scal):
    """The step's settings, from the slots ``MINUS_LR``, ``MOMENTUM``, ``NESTEROV`` and ``L2``."""
    return SGDConfig(-scal[MINUS_LR], scal[MOMENTUM], scal[NESTEROV] != 0, scal[L2])


@inline
def _momentum_rows(kernels, W, G, V, scal, lo, hi):
    """The momentum step of the rows ``lo:hi`` of ``W``, with gradient ``G`` and velocity ``V``.

    The three are C-contiguous and of one shape, so those rows are one run
    of values of each.  The step's settings are those of
    :func:`_block_config`; ``sgd_step`` is called through the table
    ``kernels``.
    """
    m = W.shape[1]
    cfg = _block_config(scal)
    args = (as_vector(W), as_vector(G), as_vector(V), cfg, cfg.l2, lo * m, hi * m)
    call(kernels, SGD_STEP, args)


@inline
def _no_rows(kernels):
    """No rows to gather, for the products that gather none: an empty int64 array.

    A view of the kernel table, which has that type: a product split over
    its inputs runs in blocks at every step, and a new empty array would be
    an allocation per step.
    """
    return kernels[:0]


@jit_parallel_native
def _parallel_blocks(task, matrices, b, code, scal, slots, blocks, rows):
    """Run the row blocks of one product in parallel; one compiled loop serves all three.

    ``matrices`` is ``(A, W, Z, source, Z)`` for the forward pass, ``(dZ,
    W, dA, A, A)`` for the input gradient and ``(A, dZ, C, W, V)`` for the
    outer product.  ``slots`` are the alpha and beta slots of the products
    (only alpha for the first two).  ``code`` is the activation of the
    forward pass and the input gradient; for the outer product, whether to
    take the momentum step of :func:`dense_outer`.  A forward ``task`` with
    ``GATHER_ROWS`` first copies rows ``rows`` of ``source`` into its rows of
    ``A``, and with ``CHECK_ROWS`` writes whether they are finite to
    ``scal[FINITE + block]``; see :func:`dense_forward`.  For the outer
    product ``rows`` is the table of kernels (see :mod:`nnjit.kernel_calls`),
    through which the momentum step is called: linked in, ``sgd_step`` would
    compile with this loop, and a cold compile's second process, which
    compiles this loop, would have to wait for the first to cache it (see
    :mod:`nnjit.kernel_compile`).
    """
    M1, M2, M3, M4, M5 = matrices
    product = task & PRODUCT
    count = M1.shape[1] if product == OUTER else M1.shape[0]
    for index in prange(blocks):
        lo, hi = block_bounds(count, blocks, index)
        if product == FORWARD:
            if task & GATHER_ROWS:
                for n in range(lo, hi):
                    copy_vector(row(M1, n), row(M4, rows[n]))
            if task & CHECK_ROWS:
                scal[FINITE + index] = rows_finite(M1, lo, hi)
            _forward_blas(M1, M2, b, M3, code, scal, slots[0], lo, hi)
        elif product == INPUT_GRAD:
            _input_grad_blas(M1, M2, M4, M3, code, scal, slots[0], lo, hi)
        else:
            _outer_blas(M1, M2, M3, scal, slots[0], slots[1], lo, hi)
            if code:
                _momentum_rows(rows, M4, M3, M5, scal, lo, hi)


@jit_parallel_native
def _parallel_inputs(task, matrices, b, code, scal, alpha, blocks, rows):
    """Run the blocks of a product split over the layer's inputs in parallel.

    ``task`` is ``FORWARD`` or ``INPUT_GRAD``, with the flags of
    :func:`_parallel_blocks`; ``matrices`` is ``(A, W, Z, source, P)`` for
    the forward pass, whose blocks write their results to ``P`` (``blocks *
    B`` rows), and ``(dZ, W, dA, A, A)`` for the input gradient.  A kernel of
    its own, not a task of :func:`_parallel_blocks`: there it made the
    parallel loop take 2.5 s longer to compile.  See :func:`split_blocks`.
    """
    M1, M2, M3, M4, M5 = matrices
    k = M2.shape[0]
    for index in prange(blocks):
        lo, hi = block_bounds(k, blocks, index)
        if task & PRODUCT == FORWARD:
            _forward_inputs(M1, M2, M4, M5, rows, task, scal, alpha, index, lo, hi)
        else:
            _input_grad_inputs(M1, M2, M4, M3, code, scal, alpha, lo, hi)


# -- input check ---------------------------------------------------------------


@inline
def values_finite(v):
    """Whether every value of the 1-D array ``v`` is finite."""
    # v * 0 is 0 for a finite v and NaN otherwise; a sum, unlike a search
    # that stops early, vectorises.  Without ``nnan`` and ``ninf`` in the
    # fast-math flags LLVM may not fold the product to 0.
    zero = v.dtype.type(0.0)
    total = zero
    for j in range(v.size):
        total += v[j] * zero
    return total == 0


@inline
def rows_finite(A, lo, hi):
    """Whether every value in the rows ``lo:hi`` of ``A`` is finite."""
    for n in range(lo, hi):
        if not values_finite(row(A, n)):
            return False
    return True


@inline
def column_sums(D, out):
    """``out = D.sum(axis=0)``, four rows at a time, in a fixed order."""
    B, m = D.shape
    for j in range(m):
        out[j] = 0
    n = 0
    while n + 4 <= B:
        d0 = row(D, n)
        d1 = row(D, n + 1)
        d2 = row(D, n + 2)
        d3 = row(D, n + 3)
        for j in range(m):
            out[j] += (d0[j] + d1[j]) + (d2[j] + d3[j])
        n += 4
    for r in range(n, B):
        d = row(D, r)
        for j in range(m):
            out[j] += d[j]


def blocks_here() -> int:
    """The most row blocks a product may take in this process.

    ``MAX_BLOCKS``, but 1 in a process forked after nnjit started its thread
    pool, where a parallel loop would end the process (see
    :mod:`nnjit._config`): every product there runs on one thread.
    """
    return MAX_BLOCKS if os.getpid() == POOL_PID else 1


def split_count(rows: int, n_in: int, n_out: int, blocks: int, first: bool) -> int:
    """:func:`split_blocks` in Python, for a batch of ``rows`` and up to ``blocks`` blocks.

    With ``scal[SPLITS]`` set; the one statement of the rule outside compiled
    code, from which a call decides whether it needs the split's kernel and a
    workspace how much room the blocks need.
    """
    work = rows * n_in * n_out
    if work < SPLIT_MIN_WORK or rows < BLAS_MIN_ROWS or n_in * n_out < BLAS_MIN_WEIGHTS:
        return 1
    few = first and few_rows.py_func(rows, n_in, n_out)
    if work >= PARALLEL_MIN_WORK and min(blocks, rows // MIN_BLOCK_ROWS) > 1 and not few:
        return 1  # row blocks
    return max(1, min(blocks, n_in // MIN_BLOCK_INPUTS))


def split_buffer_size(sizes: tuple[int, ...], rows: int, blocks: int, first: bool = True) -> int:
    """Values the forward passes split over the inputs need for batches of up to ``rows``.

    The size of :func:`dense_forward`'s ``partial`` for a network of layer
    sizes ``sizes`` whose products take up to ``blocks`` blocks: the largest
    ``split_count(r, n_in, n_out, blocks, first) * r * n_out`` over the layers
    and the batch sizes ``r <= rows``.  The batches that split a layer's
    product run from the first with enough work to the last too small for
    row blocks or, in the first layer, with few enough rows (see
    :func:`split_blocks`), so the largest of them is the only one to look at.
    ``first``: whether ``sizes[:2]`` is the network's first layer.
    """
    size = 0
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        is_first = first and index == 0
        small = max(2 * MIN_BLOCK_ROWS - 1, (PARALLEL_MIN_WORK - 1) // (n_in * n_out))
        few = min(n_in // INPUTS_PER_ROW, SPLIT_MAX_RESULT // n_out) if is_first else 0
        most = min(rows, max(small, few))
        split = split_count(most, n_in, n_out, blocks, is_first)
        if split > 1:
            size = max(size, split * most * n_out)
    return size


def splits_any(
    sizes: tuple[int, ...], batches: tuple[int, ...], blocks: int, first: bool = True
) -> bool:
    """Whether a batch of one of the sizes ``batches`` splits a product over its inputs.

    A call sets ``scal[SPLITS]`` from it, so that only calls that split load
    the kernel that runs the blocks, and every call that would split does.
    ``first``: whether ``sizes[:2]`` is the network's first layer.
    """
    return any(
        split_count(rows, n_in, n_out, blocks, first and index == 0) > 1
        for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
        for rows in batches
    )


def make_scalars(dtype: np.dtype, layers: int = 1, splits: bool = True) -> np.ndarray:
    """The scalar slots for a network of ``layers`` layers, with the constants filled in.

    ``splits``: whether products may be split over their inputs, which needs
    ``_parallel_inputs`` in the kernel table (see
    ``nnjit.kernel_compile.kernel_table``); each call sets ``scal[SPLITS]``
    again for its batch sizes, and ``scal[TRANSPOSED]``.
    """
    scal = np.zeros(WEIGHT_SCALES + layers + CHOICE_SLOTS, dtype=dtype)
    scal[ONE] = 1
    scal[BLOCKS] = blocks_here()
    scal[SPLITS] = 1 if splits else 0
    scal[WEIGHT_SCALES : WEIGHT_SCALES + layers] = 1
    return scal
