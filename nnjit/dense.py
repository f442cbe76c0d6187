"""Dense layers: the three matrix products of a layer, fused with what follows them.

A layer is ``Z = A_prev @ W + b`` with ``W`` of shape ``(n_in, n_out)`` and one
sample per row.  Its products are

* forward, ``A = f(A_prev @ W + b)``;
* input gradient, ``dA_prev = (dZ @ W.T) * f'(A_prev)``;
* weight gradient, ``A_prev.T @ dZ``, either written out or applied at once
  as an SGD step ``W <- (1 - lr l2) W - lr A_prev.T @ dZ``.

Each goes to BLAS when the matrices are large enough to pay for the call, and
to plain loops otherwise (a single sample, tiny layers).  Large products are
split into row blocks run in parallel; each block is one single-threaded
BLAS call followed, while the block is still in cache, by the elementwise work
of those rows.  Every row of the result is written by one block only, and the
blocks depend on the shapes and on the machine's core count (see
``MAX_BLOCKS``), never on the number of threads, so the result is the same
for any number of threads.
"""

from __future__ import annotations

import os

import numpy as np
from numba import prange

from nnjit._config import jit, jit_parallel
from nnjit._views import copy_vector
from nnjit.activations import activate_row, derivative_row
from nnjit.blas import NOTRANS, TRANS, gemm

# A product goes to BLAS from this many samples and this many weights on.
BLAS_MIN_ROWS = 4
BLAS_MIN_WEIGHTS = 256
# Multiply-adds from which a product is split into parallel row blocks.
PARALLEL_MIN_WORK = 1 << 20
MIN_BLOCK_ROWS = 16


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Row blocks per product: one per core, at most 8.  Each block packs the whole
# weight matrix for its BLAS call, so more blocks than cores only cost time.
# The value is fixed when the kernels are compiled: the blocks, and so every
# result, never depend on the number of threads a run uses (they may differ
# between machines, as the BLAS kernels themselves do).
MAX_BLOCKS = max(1, min(8, _cores()))
# Below this many outputs the loops accumulate in registers, not in rows.
NARROW = 8

# What a parallel block computes.
FORWARD, INPUT_GRAD, OUTER = 0, 1, 2

# Slots of the scalar array handed to BLAS: alpha and beta must be pointers.
ONE, ZERO, MINUS_LR, DECAY = 0, 1, 2, 3
N_SCALARS = 4


@jit
def use_blas(rows, n_in, n_out):
    return rows >= BLAS_MIN_ROWS and n_in * n_out >= BLAS_MIN_WEIGHTS


@jit
def n_blocks(rows, work):
    """How many parallel row blocks: 1 for small work, else fixed by ``rows``."""
    if work < PARALLEL_MIN_WORK:
        return 1
    return max(1, min(MAX_BLOCKS, rows // MIN_BLOCK_ROWS))


@jit
def block_bounds(rows, blocks, index):
    size = (rows + blocks - 1) // blocks
    return min(index * size, rows), min((index + 1) * size, rows)


# -- forward -------------------------------------------------------------------


@jit
def _forward_rows(A, W, b, Z, code, scal, lo, hi):
    """Rows ``lo:hi`` of ``Z = f(A @ W + b)``."""
    k, m = W.shape
    if use_blas(A.shape[0], k, m):
        gemm(NOTRANS, NOTRANS, m, hi - lo, k, scal[ONE:], W, m, A[lo:], k, scal[ZERO:], Z[lo:], m)
        for n in range(lo, hi):
            z = Z[n]
            for j in range(m):
                z[j] += b[j]
            activate_row(z, code)
        return
    if m >= NARROW:
        for n in range(lo, hi):
            z = Z[n]
            copy_vector(z, b)
            a = A[n]
            for i in range(k):
                w = W[i]
                ai = a[i]
                for j in range(m):
                    z[j] += ai * w[j]
            activate_row(z, code)
    else:
        # Few outputs: accumulate in a register rather than through memory.
        for n in range(lo, hi):
            a = A[n]
            z = Z[n]
            for j in range(m):
                total = b[j]
                for i in range(k):
                    total += a[i] * W[i, j]
                z[j] = total
            activate_row(z, code)


@jit
def dense_forward(A, W, b, Z, code, scal):
    """``Z <- f(A @ W + b)`` with activation ``code``; ``Z`` may not alias ``A``."""
    rows = A.shape[0]
    blocks = n_blocks(rows, rows * W.shape[0] * W.shape[1])
    if blocks > 1:
        _parallel_blocks(np.int64(FORWARD), (A, W, Z, Z), b, code, scal, _no_slots(), blocks)
    else:
        _forward_rows(A, W, b, Z, code, scal, 0, rows)


# -- input gradient ------------------------------------------------------------


@jit
def _input_grad_rows(dZ, W, A, dA, code, scal, lo, hi):
    """Rows ``lo:hi`` of ``dA = (dZ @ W.T) * f'(A)``."""
    k, m = W.shape
    if use_blas(dZ.shape[0], k, m):
        gemm(TRANS, NOTRANS, k, hi - lo, m, scal[ONE:], W, m, dZ[lo:], m, scal[ZERO:], dA[lo:], k)
    else:
        for n in range(lo, hi):
            d = dZ[n]
            out = dA[n]
            for i in range(k):
                w = W[i]
                total = d.dtype.type(0.0)
                for j in range(m):
                    total += d[j] * w[j]
                out[i] = total
    for n in range(lo, hi):
        derivative_row(dA[n], A[n], code)


@jit
def dense_input_grad(dZ, W, A, dA, code, scal):
    """``dA <- (dZ @ W.T) * f'(A)``, with ``f'`` written from the output ``A``."""
    rows = dZ.shape[0]
    blocks = n_blocks(rows, rows * W.shape[0] * W.shape[1])
    if blocks > 1:
        _parallel_blocks(
            np.int64(INPUT_GRAD), (dZ, W, dA, A), scal, code, scal, _no_slots(), blocks
        )
    else:
        _input_grad_rows(dZ, W, A, dA, code, scal, 0, rows)


# -- weight gradient -----------------------------------------------------------


@jit
def _outer_rows(A, dZ, C, scal, alpha, beta, lo, hi):
    """Rows ``lo:hi`` of ``C <- scal[alpha] * A.T @ dZ + scal[beta] * C``."""
    B, k = A.shape
    m = dZ.shape[1]
    if use_blas(B, k, m):
        gemm(
            NOTRANS, TRANS, m, hi - lo, B,
            scal[alpha:], dZ, m, A[:, lo:], k, scal[beta:], C[lo:], m,
        )  # fmt: skip
        return
    a_scale = scal[alpha]
    c_scale = scal[beta]
    for i in range(lo, hi):
        c = C[i]
        if c_scale == 0:
            c[:] = 0
        elif c_scale != 1:
            for j in range(m):
                c[j] *= c_scale
        if m >= NARROW:
            for n in range(B):
                an = a_scale * A[n, i]
                d = dZ[n]
                for j in range(m):
                    c[j] += an * d[j]
        else:
            for j in range(m):
                total = c.dtype.type(0.0)
                for n in range(B):
                    total += A[n, i] * dZ[n, j]
                c[j] += a_scale * total


@jit
def dense_outer(A, dZ, C, scal, alpha, beta):
    """``C <- scal[alpha] * A.T @ dZ + scal[beta] * C``, in row blocks of ``C``.

    With ``C = W``, ``alpha = MINUS_LR`` and ``beta = DECAY`` this is the
    whole SGD step of the weights, with no gradient buffer in between.
    """
    k = A.shape[1]
    blocks = n_blocks(k, A.shape[0] * k * dZ.shape[1])
    if blocks > 1:
        _parallel_blocks(
            np.int64(OUTER), (A, dZ, C, C), scal, np.int64(0), scal, (alpha, beta), blocks
        )
    else:
        _outer_rows(A, dZ, C, scal, alpha, beta, 0, k)


@jit_parallel
def _parallel_blocks(task, matrices, b, code, scal, slots, blocks):
    """Run the row blocks of one product in parallel; one compiled loop serves all three.

    ``matrices`` is ``(A, W, Z, Z)`` for the forward pass, ``(dZ, W, dA, A)``
    for the input gradient and ``(A, dZ, C, C)`` for the outer product.
    """
    M1, M2, M3, M4 = matrices
    rows = M1.shape[1] if task == OUTER else M1.shape[0]
    for index in prange(blocks):
        lo, hi = block_bounds(rows, blocks, index)
        if task == FORWARD:
            _forward_rows(M1, M2, b, M3, code, scal, lo, hi)
        elif task == INPUT_GRAD:
            _input_grad_rows(M1, M2, M4, M3, code, scal, lo, hi)
        else:
            _outer_rows(M1, M2, M3, scal, slots[0], slots[1], lo, hi)


@jit
def _no_slots():
    return np.int64(ZERO), np.int64(ZERO)


@jit
def column_sums(D, out):
    """``out = D.sum(axis=0)``, rows added in order."""
    out[:] = 0
    for n in range(D.shape[0]):
        d = D[n]
        for j in range(d.size):
            out[j] += d[j]


def make_scalars(dtype: np.dtype) -> np.ndarray:
    """The scalar slots, with the constants filled in."""
    scal = np.zeros(N_SCALARS, dtype=dtype)
    scal[ONE] = 1
    return scal
