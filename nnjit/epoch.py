"""The two compiled entry points of the ``numba`` backend.

:func:`train_epochs` trains without returning to Python: whole epochs, a
slice of one when a progress bar is shown, or a full-batch gradient.  Each
mini-batch is gathered, passed forward and backward, and stepped.
:func:`evaluate` gives outputs and losses.  Every entry point compiles the
whole network's code again, so there are as few as can be.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import inline, jit
from nnjit._views import borrow, copy_matrix, copy_vector, row, view2d
from nnjit.dense import batch_finite, values_finite
from nnjit.layout import ACTIVATION
from nnjit.losses import MSE, output_delta
from nnjit.propagation import backward, forward, settle_scales, weight_penalty
from nnjit.sgd import SGDConfig

# How a run of batches ends.
COMPLETED, DIVERGED, NONFINITE_INPUT = 0, 1, 2
# What train_epochs returns when it found a NaN or infinite input.
BAD_INPUT = -1


@inline
def is_sequential(order):
    """Whether ``order`` is ``0, 1, 2, ...``: the batches are then slices of the data."""
    for n in range(order.size):
        if order[n] != n:
            return False
    return True


@inline
def _gather(X, Y, order, lo, hi, work, sequential):
    """The batch ``order[lo:hi]`` of ``X`` and ``Y``.

    Rows taken in order are views of the data; otherwise they are copied into
    the batch buffers.
    """
    if sequential:
        return X[lo:hi], Y[lo:hi]
    B = hi - lo
    Xb = work.inputs[:B]
    Yb = work.targets[:B]
    for n in range(B):
        src = order[lo + n]
        copy_vector(row(Xb, n), row(X, src))
        copy_vector(row(Yb, n), row(Y, src))
    return Xb, Yb


@jit
def train_epochs(model, data, optimizer, work, schedule, stats, kept):
    """Epochs, or slices of one, in one compiled call: the training entry point.

    Parameters
    ----------
    model, work
        As for :func:`train_batches`.
    data : tuple
        ``(X, Y, orders)``; row ``e`` of ``orders`` is epoch ``e``'s sample
        order, or ``orders`` has one row that every epoch uses.
    optimizer : tuple
        ``(cfg, velocity, grad)``; ``cfg.lr`` is replaced by each epoch's rate.
    schedule : tuple
        ``(lrs, batch_size, batches, step, check)``: the learning rate of
        every epoch; the batch size; the range ``(first, stop)`` of batches
        each epoch runs, all of them or a slice when a progress bar is shown;
        whether to take SGD steps; and whether to check that the inputs of
        the first epoch are finite.  Without steps, one epoch of one batch of
        every sample leaves the full-batch gradient in ``grad``.

        The check costs almost nothing: each batch is read into the cache
        just before the forward pass reads it.  A separate pass over the data
        in Python took about 7 ms for W4's inputs in float32.
    stats : ndarray of float64, shape (n_epochs, 4)
        Written: each epoch's loss sum, correct predictions and samples, and
        the L2 term ``(l2/2) sum ||W||^2`` at its end.
    kept : ndarray
        Scratch of the parameters' size, for the parameters at the start of
        each epoch; unused without steps, which leave the parameters alone.

    Returns
    -------
    int
        Epochs completed with a finite loss and finite parameters.  If it is
        less than ``len(lrs)``, the next epoch diverged and ``params`` are back
        where that epoch started.  ``BAD_INPUT`` if the check found a NaN or
        an infinity; ``params`` are then back where they started.
    """
    model, data, optimizer, work, stats, kept = borrow((model, data, optimizer, work, stats, kept))
    params, table, loss_code = model
    X, Y, orders = data
    cfg, velocity, grad = optimizer
    lrs, batch_size, batches, step, check = schedule
    for e in range(lrs.size):
        if step:
            copy_vector(kept, params)
        order = orders[e] if orders.shape[0] > 1 else orders[0]
        N = order.size
        sequential = is_sequential(order)
        epoch_optimizer = (SGDConfig(lrs[e], cfg.momentum, cfg.nesterov, cfg.l2), velocity, grad)
        # The batches, written out here rather than in a function of their
        # own: inlining a function this large cost a second of compile time.
        loss_sum = 0.0
        correct = 0
        seen = 0
        status = COMPLETED
        for batch in range(batches[0], batches[1]):
            lo = batch * batch_size
            hi = min(lo + batch_size, N)
            Xb, Yb = _gather(X, Y, order, lo, hi, work, sequential)
            if check and e == 0 and not batch_finite(Xb, work.scal):
                status = NONFINITE_INPUT
                break
            forward(params, table, Xb, work, loss_code != MSE)
            loss = backward(params, table, loss_code, Xb, Yb, work, epoch_optimizer, step)
            loss_sum += loss * (hi - lo)
            if not np.isfinite(loss):
                status = DIVERGED
                break
            for n in range(hi - lo):
                correct += work.row_correct[n]
            seen += hi - lo
        settle_scales(params, table, work.scal)
        if status == NONFINITE_INPUT:
            if step:
                copy_vector(params, kept)
            return BAD_INPUT
        stats[e, 0] = loss_sum
        stats[e, 1] = correct
        stats[e, 2] = seen
        stats[e, 3] = weight_penalty(params, table, cfg.l2)
        if status == DIVERGED or not values_finite(params):
            if step:
                copy_vector(params, kept)
            return e
    return lrs.size


@jit
def evaluate(model, X, Y, out, work):
    """Outputs and mean data loss (no L2) over every row of ``X``, a chunk at a time.

    The outputs are written to ``out`` if it has a row per sample, and the
    loss is taken against ``Y`` if it has a row per sample (else it is 0).
    """
    model, X, Y, out, work = borrow((model, X, Y, out, work))
    params, table, loss_code = model
    L = table.shape[0]
    N = X.shape[0]
    rows = work.inputs.shape[0]
    total = 0.0
    for lo in range(0, N, rows):
        hi = min(lo + rows, N)
        A_out = forward(params, table, X[lo:hi], work, loss_code != MSE and Y.shape[0] == N)
        if out.shape[0] == N:
            copy_matrix(out[lo:hi], A_out)
        if Y.shape[0] == N:
            B, m = A_out.shape
            Z = view2d(work.logits, 0, B, m)
            dZ = view2d(work.delta, 0, B, m)
            batch_mean = output_delta(
                loss_code, table[L - 1, ACTIVATION], Z, A_out, Y[lo:hi], dZ,
                work.row_loss, work.row_correct,
            )  # fmt: skip
            total += batch_mean * B
    return total / max(N, 1)
