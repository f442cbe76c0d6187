"""The first layer's weights, kept transposed while small batches train.

With a mini-batch of ten samples through a 784 x 30 first layer (W3), BLAS on
one core took 20 µs for the forward product and 8 µs for the weight step in
float32, 21 and 14 µs in float64: a product that small is mostly BLAS's
packing and set-up.  Written as loops, the forward product is a set of dot
products between the samples and the columns of ``W``, and the step adds
multiples of the samples to those columns: with ``W`` stored transposed,
both run along the 784 inputs in long vectors, three columns and five
samples per pass, and took 2.6 and 2.5-3.6 µs in float32, 6.8-6.9 and
6.9-7.8 µs in float64.

The first layer has no input gradient, so those two are all it computes.
Both read the batch's rows where they are in the training data, through
the batch's row numbers, rather than from a batch gathered first: see
:func:`nnjit.dense.dense_forward`.
A training call whose batches qualify (:func:`transposes_first`) transposes
the layer's weights in place in the parameter vector before the compiled
call and back after it (:func:`transpose_first`), and sets
``scal[TRANSPOSED]`` for the compiled code.  With momentum the layer's
gradient is written transposed too, and the step, which takes each value of
the weights, velocity and gradient alone, needs no change: each block takes
it for the rows it computed (see :func:`nnjit.dense.transposed_outer`).  The velocity
stays in the layout the step writes it in: it starts at zero with each
``fit``, whose calls all keep the layer transposed or none does, since the
batch size decides.  Nothing else reads the first layer's weights in
between, and what reads all the parameters (the copy kept to undo a
diverging epoch, the finiteness check, the L2 term) reads every value
alike.  With enough work the outputs are split into parallel blocks
(:func:`transposed_blocks`, :func:`parallel_transposed`), which depend on
the shapes and the process's cores only; each output is computed by one
block, in a fixed order, so the results do not depend on the number of
threads.  Without momentum, the step of a batch waits for the next batch's
forward pass, and each block steps its outputs and then computes them in
one parallel loop.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnjit._config import inline, jit_native, jit_parallel_native
from nnjit._views import row
from nnjit.activations import negative_slope
from nnjit.cycles import cycle_count
from nnjit.dense import (
    BLAS_MIN_ROWS,
    BLAS_MIN_WEIGHTS,
    CHECK_ROWS,
    CHOICE_SLOTS,
    FORWARD,
    PARALLEL_MIN_WORK,
    _piecewise,
    block_bounds,
    check_rows,
    transposed_block_count,
    transposed_range,
)
from nnjit.layout import W_OFFSET, Layout

# Batches of fewer samples than this keep the first layer transposed ...
TRANSPOSED_MAX_ROWS = 32
# ... if it has at least this many inputs.
TRANSPOSED_MIN_INPUTS = 256
# Multiply-adds per product from which its rows are split over the cores, in
# float64; in float32, whose loops take half as long, twice as many.
TRANSPOSED_PARALLEL_MIN_WORK = 1 << 17
# Calls between two tries of the way not taken, and the place of the try in
# them, from the start of a call (see _compare).
CHOICE_PERIOD = 128
CHOICE_TRIAL = 64


def transposes_first(sizes: tuple[int, ...], rows: int) -> bool:
    """Whether training with batches of ``rows`` samples keeps the first layer transposed.

    Batches of 4 to 31 samples (BLAS's products at that size, too small to
    split into row blocks) through a first layer with at least 256 inputs,
    and fewer than ``PARALLEL_MIN_WORK`` multiply-adds per product.  Smaller
    batches go to the loops of :mod:`nnjit.dense`, which are built for them,
    and so do layers with fewer inputs, where vectors along the inputs are
    short.  Larger products go to BLAS split over the two cores, which was
    faster in float64 from 16 samples through 784 x 100 (0.11-0.12 s
    against 0.14-0.16 s for 20,000 samples).  Only a training call uses it: see
    :mod:`nnjit.transposed`.
    """
    n_in, n_out = sizes[0], sizes[1]
    return (
        BLAS_MIN_ROWS <= rows < TRANSPOSED_MAX_ROWS
        and n_in >= TRANSPOSED_MIN_INPUTS
        and n_in * n_out >= BLAS_MIN_WEIGHTS
        and rows * n_in * n_out < PARALLEL_MIN_WORK
    )


def transposed_blocks(
    sizes: tuple[int, ...], rows: int, blocks: int, dtype: np.dtype, plain: bool = False
) -> int:
    """The parallel blocks of a first layer kept transposed, with batches of ``rows`` samples.

    Up to ``blocks`` (the process's cores, ``nnjit.dense.blocks_here``), each
    of at least one pass of three outputs, from ``TRANSPOSED_PARALLEL_MIN_WORK``
    multiply-adds per parallel loop in float64 (twice as many in float32);
    else 1.  Training with ``plain`` SGD (no momentum), a loop takes a batch's
    step and the next batch's product (see :func:`parallel_transposed`):
    twice a product's work.  For W3 (784 x 30, batches of 10) in float64 the
    forward product and the step took 14.2 µs on two cores against 20.4 µs
    on one (medians of seven runs of 5,000 steps), and a W3 epoch 0.120 s
    against 0.136 s (medians of six processes, alternated).  In float32,
    with plain SGD, seven runs of 30-40 fits alternated in one process gave
    median ratios of 0.88-1.03, 0.93 in the middle, two blocks against one;
    with ``momentum=0.9``, a loop for the product and one for the step,
    1.06-1.10 (in float64 0.73).  The compiled code reads the count from
    ``scal[TRANSPOSED]``.
    """
    n_in, n_out = sizes[0], sizes[1]
    loop = rows * n_in * n_out * (2 if plain else 1)
    work = loop * np.dtype(dtype).itemsize // 8
    if work < TRANSPOSED_PARALLEL_MIN_WORK:
        return 1
    return max(1, min(blocks, (n_out + 2) // 3))


def transpose_first(params: np.ndarray, layout: Layout, back: bool = False) -> None:
    """Store the first layer's weights in ``params`` transposed, or with ``back`` as they were."""
    n_in, n_out = layout.sizes[0], layout.sizes[1]
    offset = layout.table[0, W_OFFSET]
    weights = params[offset : offset + n_in * n_out]
    weights[:] = weights.reshape((n_out, n_in) if back else (n_in, n_out)).T.ravel()


@jit_parallel_native
def parallel_transposed(
    kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step, D_step
):
    """:func:`transposed_rows` over all the rows of ``WT``, in ``scal[TRANSPOSED]`` parallel blocks.

    The batch is the rows ``index`` of ``A``.  With ``CHECK_ROWS`` in
    ``task`` each block first checks a share of them for NaN and infinity,
    into ``scal[FINITE + block]`` (see :func:`nnjit.dense.check_rows`).
    With ``STEP_FIRST`` (a forward pass), each block first takes the step of
    its rows with the previous batch, the rows ``index_step`` of ``A_step``,
    and the gradient ``D_step``, then the product of ``task``: each row is
    stepped and read by the same block, so the two share one parallel loop (see
    :func:`nnjit.propagation.backward`).  W3's epoch in float64 took 0.109 s
    against 0.114 s with a loop each (medians of 16 processes, alternated;
    the median of the pairs' ratios 1.05).

    The blocks hold whole passes of three rows (the layer's outputs), each
    row is computed by one block, and the blocks depend on the shapes and
    the process's cores only (see :func:`transposed_blocks`), never on the
    number of threads.  Each call runs either those blocks or one block on
    the calling thread, whichever has been quicker (see :func:`_compare`):
    the rows, and so the results, are the same.  It calls
    :func:`transposed_rows` through the table ``kernels`` (see
    :mod:`nnjit.kernel_calls`): linked in, the kernel would compile again
    inside the parallel loop, and that took W3's cold first fit from
    11.4-12.3 s to 13.6-17.7 s.
    """
    m = WT.shape[0]
    passes = (m + 2) // 3
    blocks = transposed_block_count(scal, m)
    choice = scal.size - CHOICE_SLOTS  # the slots of _compare
    count = int(scal[choice + 2]) - CHOICE_TRIAL
    scal[choice + 2] = (count + CHOICE_TRIAL + 1) % CHOICE_PERIOD
    one = (scal[choice] > 0) != (count == 0 or count == 1)
    timed = count == 1 or count == 3  # two calls in CHOICE_PERIOD read the counter
    start = cycle_count() if timed else np.int64(0)
    if one:
        if task & CHECK_ROWS:  # the blocks' shares, as the split checks them
            for block in range(blocks):
                check_rows(A, index, scal, block, blocks)
        lo, hi = np.int64(0), np.int64(m)
        transposed_range(
            kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step, D_step,
            lo, hi,
        )  # fmt: skip
    else:
        for block in prange(blocks):
            if task & CHECK_ROWS:
                check_rows(A, index, scal, block, blocks)
            first, stop = block_bounds(passes, blocks, block)
            lo, hi = 3 * first, min(3 * stop, m)
            transposed_range(
                kernels, task, A, index, WT, b, D, code, scal, alpha, beta, A_step, index_step,
                D_step, lo, hi,
            )  # fmt: skip
    if timed:
        _compare(scal, choice, count, one, cycle_count() - start)


@inline
def _compare(scal, choice, count, one, cycles):
    """Fold call ``count`` (1 or 3) of a try of :func:`parallel_transposed` into its choice.

    Each call runs either the split or one block on the calling thread, the
    split at first.  In every :data:`CHOICE_PERIOD` calls, the way not taken
    is tried: from call :data:`CHOICE_TRIAL`, two calls go that way (``count``
    0 and 1), then the calls go the way taken again, and the second call of
    each way (1 and 3) is timed, in ``cycles``.  The first call after a
    change of way moves the weights' cache lines between the cores and may
    wake the second core's thread, asleep after a hundred calls without
    work, which would count against the split whenever one block was taken.
    With momentum, a batch makes two calls, the product and the step, so the
    two timed calls are both steps.  ``scal[choice + 1]`` holds the first
    timed call's cycles, negated for one block; after the second,
    ``scal[choice]`` moves a quarter of the way to +1 if one block was
    quicker, else to -1, and the calls take one block while it is above 0:
    a vote of pairs taken back to back, so that neither a slow spell nor a
    call held up by the operating system decides alone.

    On the second core of the 2-core machine nnjit is developed on, a thread
    sometimes ran a block half again as slowly as on the first, or began it
    tens of microseconds late, for minutes at a time: then W3 in float32
    took 1.25 times as long on two cores as on one (the median of seven fits
    alternated in one process), and minutes later 0.80 times as long.
    """
    signed = scal.dtype.type(-cycles if one else cycles)
    if count == 1:
        scal[choice + 1] = signed
    elif cycles > 0:  # a target without a cycle counter reads 0
        vote = 1 if scal[choice + 1] + signed > 0 else -1
        scal[choice] += (vote - scal[choice]) / 4


@jit_native
def transposed_rows(task, A, index, WT, b, D, code, scal, alpha, beta, lo, hi):
    """Outputs ``lo:hi`` of a product of a layer whose weights are stored transposed.

    ``WT`` has shape ``(n_out, n_in)``; the batch is the rows ``index`` of
    ``A``, written ``A`` below.  ``task`` ``FORWARD``: ``D = f(A @ WT.T +
    b)`` for the activation ``code`` if piecewise-linear, else the identity
    (see :func:`nnjit.dense.dense_forward`).  Otherwise the SGD step ``WT <-
    scal[beta] WT + scal[alpha] D.T @ A`` with ``D`` the gradient of the
    layer's ``Z``; ``b`` is unused.  Only the outputs ``lo:hi`` (the
    columns of ``D``, the rows of ``WT``) are computed or stepped.  Three
    rows of ``WT`` and five samples per pass over the inputs: for W3 in
    float64 that took 6.8 and 6.9 µs against 8.8 and 9.0 µs with two rows.  A last pass with fewer
    samples repeats the last sample, whose repeats are neither stored nor
    stepped with (their coefficients are 0); with fewer outputs, it repeats
    the last output, which the forward pass computes again and the step takes
    alone.  The loops are written out: numba took 1.4 s longer to compile
    them as calls to inlined functions.
    """
    B = index.size
    zero = WT.dtype.type(0.0)
    one = WT.dtype.type(1.0)
    if task == FORWARD:
        Z = D
        for j in range(lo, hi, 3):
            j1 = min(j + 1, hi - 1)
            j2 = min(j + 2, hi - 1)
            u = row(WT, j)
            v = row(WT, j1)
            w = row(WT, j2)
            for n in range(0, B, 5):
                a0 = row(A, index[n])
                a1 = row(A, index[min(n + 1, B - 1)])
                a2 = row(A, index[min(n + 2, B - 1)])
                a3 = row(A, index[min(n + 3, B - 1)])
                a4 = row(A, index[min(n + 4, B - 1)])
                s0 = s1 = s2 = s3 = s4 = t0 = t1 = t2 = t3 = t4 = zero
                r0 = r1 = r2 = r3 = r4 = zero
                for i in range(u.size):
                    ui = u[i]
                    vi = v[i]
                    wi = w[i]
                    x = a0[i]
                    s0 += x * ui
                    t0 += x * vi
                    r0 += x * wi
                    x = a1[i]
                    s1 += x * ui
                    t1 += x * vi
                    r1 += x * wi
                    x = a2[i]
                    s2 += x * ui
                    t2 += x * vi
                    r2 += x * wi
                    x = a3[i]
                    s3 += x * ui
                    t3 += x * vi
                    r3 += x * wi
                    x = a4[i]
                    s4 += x * ui
                    t4 += x * vi
                    r4 += x * wi
                z = row(Z, n)
                z[j], z[j1], z[j2] = s0, t0, r0
                if n + 1 < B:
                    z = row(Z, n + 1)
                    z[j], z[j1], z[j2] = s1, t1, r1
                if n + 2 < B:
                    z = row(Z, n + 2)
                    z[j], z[j1], z[j2] = s2, t2, r2
                if n + 3 < B:
                    z = row(Z, n + 3)
                    z[j], z[j1], z[j2] = s3, t3, r3
                if n + 4 < B:
                    z = row(Z, n + 4)
                    z[j], z[j1], z[j2] = s4, t4, r4
        slope = negative_slope(code, Z)
        for n in range(B):
            z = row(Z, n)
            for j in range(lo, hi):
                z[j] = _piecewise(z[j] + b[j], slope)
        return
    dZ = D
    lr = scal[alpha]
    decay = scal[beta]
    for j in range(lo, hi):
        u = row(WT, j)
        if decay == 0:  # overwrites, as BLAS's beta does, whatever u held
            for i in range(u.size):
                u[i] = 0
        elif decay != 1:
            for i in range(u.size):
                u[i] *= decay
    for j in range(lo, hi, 3):
        # A last pass over fewer rows steps the others with coefficients 0.
        j1 = min(j + 1, hi - 1)
        j2 = min(j + 2, hi - 1)
        g1 = lr if j + 1 < hi else zero
        g2 = lr if j + 2 < hi else zero
        u = row(WT, j)
        v = row(WT, j1)
        w = row(WT, j2)
        for n in range(0, B, 5):
            n1 = min(n + 1, B - 1)
            n2 = min(n + 2, B - 1)
            n3 = min(n + 3, B - 1)
            n4 = min(n + 4, B - 1)
            a0 = row(A, index[n])
            a1 = row(A, index[n1])
            a2 = row(A, index[n2])
            a3 = row(A, index[n3])
            a4 = row(A, index[n4])
            # Repeated samples weigh 0.
            k1 = one if n + 1 < B else zero
            k2 = one if n + 2 < B else zero
            k3 = one if n + 3 < B else zero
            k4 = one if n + 4 < B else zero
            c0, c1, c2 = lr * dZ[n, j], k1 * lr * dZ[n1, j], k2 * lr * dZ[n2, j]
            c3, c4 = k3 * lr * dZ[n3, j], k4 * lr * dZ[n4, j]
            d0, d1, d2 = g1 * dZ[n, j1], k1 * g1 * dZ[n1, j1], k2 * g1 * dZ[n2, j1]
            d3, d4 = k3 * g1 * dZ[n3, j1], k4 * g1 * dZ[n4, j1]
            e0, e1, e2 = g2 * dZ[n, j2], k1 * g2 * dZ[n1, j2], k2 * g2 * dZ[n2, j2]
            e3, e4 = k3 * g2 * dZ[n3, j2], k4 * g2 * dZ[n4, j2]
            for i in range(u.size):
                x0 = a0[i]
                x1 = a1[i]
                x2 = a2[i]
                x3 = a3[i]
                x4 = a4[i]
                u[i] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4
                v[i] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3 + d4 * x4
                w[i] += e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3 + e4 * x4
