"""Losses: the name table and the compiled output-layer kernel.

Every loss is the per-sample loss summed over the outputs and averaged over
the samples of the batch.  The cross-entropies are computed from the logits
``Z`` so that they stay finite where the probabilities round to 0 or 1.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import inline, jit
from nnjit._views import row
from nnjit.activations import SOFTMAX, derivative_rows
from nnjit.exponential import exp_nonpositive

MSE = 0
CROSS_ENTROPY = 1

LOSSES = {"mse": MSE, "cross_entropy": CROSS_ENTROPY}
LOSS_NAMES = {code: name for name, code in LOSSES.items()}


@inline
def _binary_cross_entropy(z, y):
    """``softplus(z) - y z``, grouped so that a confident right answer is not cancelled.

    ``softplus(z) = max(z, 0) + log1p(exp(-|z|))``; taking ``max(z, 0) - y z``
    first leaves an exact 0 for ``y = 1, z >> 0`` instead of the difference of
    two nearly equal large numbers.
    """
    return (max(z, 0) - y * z) + np.log1p(exp_nonpositive(-abs(z)))


@inline
def _mse_rows(A, Y, dZ, out_code, scale, row_loss):
    """Row losses ``sum (a - y)^2``; ``dZ = scale * 2 (A - Y) * f'(Z)``."""
    B, m = A.shape
    two_scale = dZ.dtype.type(2.0) * scale
    for n in range(B):
        a = row(A, n)
        y = row(Y, n)
        dz = row(dZ, n)
        loss = 0.0
        for k in range(m):
            diff = a[k] - y[k]
            loss += diff * diff
            dz[k] = two_scale * diff
        row_loss[n] = loss
    if out_code == SOFTMAX:
        # Softmax Jacobian: dz_k = a_k (g_k - sum_j g_j a_j).
        for n in range(B):
            a = row(A, n)
            dz = row(dZ, n)
            inner = dz.dtype.type(0.0)
            for k in range(m):
                inner += dz[k] * a[k]
            for k in range(m):
                dz[k] = a[k] * (dz[k] - inner)
    else:
        derivative_rows(dZ, A, np.int64(0), B, out_code)


@inline
def _softmax_cross_entropy_row(z, a, y, dz, scale):
    """Row loss ``-sum y log softmax(z)``; ``dz = scale (a sum(y) - y)``.

    With one-hot or probability rows ``sum(y) = 1`` and the delta is the
    familiar ``a - y``.
    """
    zmax = z[0]
    for k in range(1, z.size):
        zmax = max(zmax, z[k])
    total = 0.0
    for k in range(z.size):
        total += exp_nonpositive(z[k] - zmax)
    log_norm = zmax + np.log(total)
    loss = 0.0
    ysum = dz.dtype.type(0.0)
    for k in range(z.size):
        loss -= y[k] * (z[k] - log_norm)
        ysum += y[k]
    for k in range(z.size):
        dz[k] = scale * (a[k] * ysum - y[k])
    return loss


@inline
def _sigmoid_cross_entropy_row(z, a, y, dz, scale):
    """Row loss ``sum softplus(z) - y z``; ``dz = scale (a - y)``.

    ``-[y log s(z) + (1 - y) log(1 - s(z))] = softplus(z) - y z``.
    """
    loss = 0.0
    for k in range(z.size):
        loss += _binary_cross_entropy(z[k], y[k])
        dz[k] = scale * (a[k] - y[k])
    return loss


@inline
def _row_correct(a, y, out_code):
    """Whether a classifier's output row predicts the target row."""
    if out_code == SOFTMAX:
        return np.argmax(a) == np.argmax(y)
    half = a.dtype.type(0.5)
    for k in range(a.size):
        if (a[k] >= half) != (y[k] >= half):
            return False
    return True


@jit
def output_delta(loss_code, out_code, Z, A, Y, dZ, row_loss, row_correct):
    """Loss of every row and the output delta ``dZ`` of the batch mean loss.

    Parameters
    ----------
    loss_code, out_code : int
        Loss and output activation codes.
    Z, A, Y : ndarray, shape (B, m)
        Logits, output activations and targets.
    dZ : ndarray, shape (B, m)
        Written: gradient of the batch mean loss with respect to ``Z``.
    row_loss : ndarray of float64, shape (>= B,)
        Written: per-sample loss.
    row_correct : ndarray of int64, shape (>= B,)
        Written for classifiers: 1 where the sample is predicted right.

    Returns
    -------
    float
        The batch mean loss, summed in a fixed order.
    """
    B = Z.shape[0]
    scale = dZ.dtype.type(1.0 / B)
    if loss_code == MSE:
        _mse_rows(A, Y, dZ, out_code, scale, row_loss)
        for n in range(B):
            row_correct[n] = 0
    else:
        for n in range(B):
            z, a, y, dz = row(Z, n), row(A, n), row(Y, n), row(dZ, n)
            if out_code == SOFTMAX:
                row_loss[n] = _softmax_cross_entropy_row(z, a, y, dz, scale)
            else:
                row_loss[n] = _sigmoid_cross_entropy_row(z, a, y, dz, scale)
            row_correct[n] = _row_correct(a, y, out_code)
    total = 0.0
    for n in range(B):
        total += row_loss[n]
    return total / B
