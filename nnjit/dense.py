"""Dense layers: the three matrix products of a layer and its backward pass.

A layer is ``Z = A_prev @ W + b`` with ``W`` of shape ``(n_in, n_out)`` and one
sample per row.  Each product goes to BLAS (``np.dot`` inside compiled code)
when it is large enough to pay for the call, and to a plain loop otherwise.
The choice depends on the shapes only, so the result never depends on the
number of threads.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import jit

# Multiply-adds below which a plain loop beats the BLAS call.
BLAS_MIN_WORK = 1 << 12


@jit
def matmul(A, W, out):
    """``out = A @ W``."""
    B, k = A.shape
    m = W.shape[1]
    if B * k * m >= BLAS_MIN_WORK:
        np.dot(A, W, out)
        return
    for n in range(B):
        row = out[n]
        row[:] = 0
        for i in range(k):
            a = A[n, i]
            w = W[i]
            for j in range(m):
                row[j] += a * w[j]


@jit
def matmul_tn(A, D, out):
    """``out = A.T @ D``: the weight gradient of a layer."""
    B, k = A.shape
    m = D.shape[1]
    if B * k * m >= BLAS_MIN_WORK:
        np.dot(A.T, D, out)
        return
    out[:] = 0
    for n in range(B):
        d = D[n]
        for i in range(k):
            a = A[n, i]
            row = out[i]
            for j in range(m):
                row[j] += a * d[j]


@jit
def matmul_nt(D, W, out):
    """``out = D @ W.T``: the gradient with respect to a layer's input."""
    B, m = D.shape
    k = W.shape[0]
    if B * k * m >= BLAS_MIN_WORK:
        np.dot(D, W.T, out)
        return
    for n in range(B):
        d = D[n]
        for i in range(k):
            w = W[i]
            total = d.dtype.type(0.0)
            for j in range(m):
                total += d[j] * w[j]
            out[n, i] = total


@jit
def column_sums(D, out):
    """``out = D.sum(axis=0)``, rows added in order."""
    out[:] = 0
    for n in range(D.shape[0]):
        d = D[n]
        for j in range(d.size):
            out[j] += d[j]


@jit
def dense_backward(A_prev, W, dZ, l2, dW, db):
    """Parameter gradients of one layer: ``dW = A_prev.T @ dZ + l2 W``, ``db``."""
    matmul_tn(A_prev, dZ, dW)
    if l2 != 0:
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                dW[i, j] += l2 * W[i, j]
    column_sums(dZ, db)
