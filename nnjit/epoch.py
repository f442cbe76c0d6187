"""The compiled entry point of the ``numba`` backend.

:func:`run_epochs` trains without returning to Python: whole epochs, a slice
of one when a progress bar is shown, or a full-batch gradient.  Each
mini-batch is gathered, passed forward and backward, and stepped.  It also
evaluates: outputs and losses, a chunk of samples at a time.  It calls the
kernels through a table of their addresses (see :mod:`nnjit.kernel_calls`),
so it compiles apart from them.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import inline, jit
from nnjit._views import borrow, copy_matrix, copy_vector, row, view2d
from nnjit.dense import TRANSPOSED, values_finite
from nnjit.kernel_calls import BACKWARD, FORWARD, call
from nnjit.layout import N_OUT
from nnjit.losses import MSE
from nnjit.propagation import (
    layer_output,
    output_loss,
    settle_scales,
    step_first_layer,
    weight_penalty,
)
from nnjit.sgd import SGDConfig

# What a call does with each batch: an SGD step, the gradient left in the
# gradient buffer, or the forward pass alone.
TRAIN, GRADIENT, EVALUATE = 0, 1, 2
# How a run of batches ends.
COMPLETED, DIVERGED, NONFINITE_INPUT = 0, 1, 2
# What run_epochs returns when it found a NaN or infinite input.
BAD_INPUT = -1


@inline
def is_sequential(order):
    """Whether ``order`` is ``0, 1, 2, ...``: the batches are then slices of the data."""
    for n in range(order.size):
        if order[n] != n:
            return False
    return True


@inline
def _batch(X, Y, order, lo, hi, work, sequential):
    """The batch ``order[lo:hi]`` of ``X`` and ``Y``, and the rows still to gather into it.

    Rows taken in order are views of the data, with no rows to gather.
    Otherwise the rows of ``Y`` are copied into the batch buffer here, and
    those of ``X``, ``order[lo:hi]``, are left to the first layer (see
    :func:`nnjit.dense.dense_forward`), which gathers them into
    ``work.inputs``.  A first layer kept transposed reads its rows where
    they are, by their numbers, ``order[lo:hi]`` in either case.
    """
    if sequential:
        rows = order[lo:hi] if work.scal[TRANSPOSED] != 0 else order[:0]
        return X[lo:hi], Y[lo:hi], rows
    B = hi - lo
    Yb = work.targets[:B]
    for n in range(B):
        copy_vector(row(Yb, n), row(Y, order[lo + n]))
    return work.inputs[:B], Yb, order[lo:hi]


@jit
def run_epochs(kernels, model, data, optimizer, work, schedule, stats, kept):
    """Epochs, slices of one, or an evaluation, in one compiled call.

    Parameters
    ----------
    kernels : ndarray of int64
        The kernels' addresses, :func:`nnjit.kernel_compile.kernel_table`.
    model : tuple
        ``(params, table, loss_code)``; ``params`` is updated in place.
    data : tuple
        ``(X, Y, orders, out)``: inputs, 2-D targets, sample orders and
        outputs.  Row ``e`` of ``orders`` is epoch ``e``'s sample order, or
        ``orders`` has one row that every epoch uses.  Batch ``i`` holds the
        samples ``order[i*bs : (i+1)*bs]`` (the last one may be smaller).
        With ``EVALUATE``, ``Y`` may have no rows (no loss is taken), and
        ``out`` receives every sample's output if it has a row per sample.
    optimizer : tuple
        ``(cfg, velocity, grad)``: :class:`nnjit.sgd.SGDConfig`, the momentum
        buffer and the gradient buffer; ``cfg.lr`` is replaced by each
        epoch's rate.
    work : Workspace
        Buffers for batches of ``bs`` rows.
    schedule : tuple
        ``(lrs, bs, batches, task, check)``: the learning rate of every epoch;
        the batch size; the range ``(first, stop)`` of batches each epoch
        runs, all of them or a slice when a progress bar is shown; the task
        (below); and whether to check that the inputs of the first epoch are
        finite, each batch as the first layer reads it.

        ``TRAIN`` takes the SGD step of every batch.  ``GRADIENT`` leaves the
        gradient of the mean loss plus ``(cfg.l2/2) sum ||W||^2`` over the
        last batch in ``grad``, and the parameters as they are: with one batch
        of every sample, this is the full-batch gradient.  ``EVALUATE`` runs
        the forward pass alone.

        The check costs almost nothing: each batch is checked as it is read
        into the cache, by the first layer's parallel blocks when the layer
        is large, just before its product reads it.  A separate pass over the
        data in Python took about 7 ms for W4's inputs in float32.  The rows
        of a shuffled batch are gathered the same way: in W4, gathering them
        on one thread before the forward pass made an epoch 5-11% slower.
    stats : ndarray of float64, shape (n_epochs, 4)
        Written: each epoch's sum over the samples of their data loss before
        each step, its correct predictions (classifiers) and samples, and the
        L2 term ``(cfg.l2/2) sum ||W||^2`` at its end.
    kept : ndarray
        Scratch of the parameters' size, for the parameters at the start of
        each epoch; unused without steps, which leave the parameters alone.

    Returns
    -------
    int
        Epochs completed with a finite loss and finite parameters.  If it is
        less than ``len(lrs)``, the next epoch diverged: it stopped before the
        update of the batch whose loss was not finite (that batch's loss is
        in the sum), and ``params`` are back where that epoch started.  An
        evaluation never stops early.  ``BAD_INPUT`` if the check found a NaN
        or an infinity; ``params`` are then back where they started.
    """
    model, data, optimizer, work, stats, kept = borrow((model, data, optimizer, work, stats, kept))
    params, table, loss_code = model
    X, Y, orders, out = data
    cfg, velocity, grad = optimizer
    lrs, batch_size, batches, task, check = schedule
    step = task == TRAIN
    backprop = task != EVALUATE
    # One order for every epoch is scanned once: W1's thousand one-batch
    # epochs spent 5% of their time scanning it again.
    shared = orders.shape[0] == 1
    shared_sequential = shared and is_sequential(orders[0])
    # Plain SGD through a first layer kept transposed leaves the step of its
    # weights to the next batch's forward pass (see propagation.backward).
    defer = step and cfg.momentum == 0 and work.scal[TRANSPOSED] != 0
    for e in range(lrs.size):
        if step:
            copy_vector(kept, params)
        order = orders[0] if shared else orders[e]
        N = order.size
        sequential = shared_sequential if shared else is_sequential(order)
        targets = backprop or Y.shape[0] == N
        logits = targets and loss_code != MSE
        check_inputs = check and e == 0
        epoch_optimizer = (SGDConfig(lrs[e], cfg.momentum, cfg.nesterov, cfg.l2), velocity, grad)
        # The batches are written out here rather than in a function of their
        # own: inlining a function this large cost a second of compile time.
        loss_sum = 0.0
        correct = 0
        seen = 0
        status = COMPLETED
        # The rows of X and the gradient of the first layer's Z of a pending step.
        rows_step = order[:0]
        dZ_step = view2d(work.delta, 0, 0, table[0, N_OUT])
        pending = False
        for batch in range(batches[0], batches[1]):
            lo = batch * batch_size
            hi = min(lo + batch_size, N)
            B = hi - lo
            Xb, Yb, rows = _batch(X, Y, order, lo, hi, work, sequential)
            previous = (pending, rows_step, dZ_step)
            pending = False
            args = (params, table, Xb, work, logits, X, rows, check_inputs, previous)
            if not call(kernels, FORWARD, (kernels, *args)):
                status = NONFINITE_INPUT
                break
            loss = output_loss(kernels, table, loss_code, Yb, work) if targets else 0.0
            loss_sum += loss * B
            if step and not np.isfinite(loss):
                status = DIVERGED
                break
            if backprop:
                args = (params, table, Xb, X, rows, work, epoch_optimizer, step, defer)
                dZ_start = call(kernels, BACKWARD, (kernels, *args))
                dZ_step = view2d(work.delta, dZ_start, B, table[0, N_OUT])
                rows_step = rows
                pending = defer
            elif out.shape[0] == N:
                copy_matrix(out[lo:hi], layer_output(work, table, table.shape[0] - 1, B))
            if targets:
                for n in range(B):
                    correct += work.row_correct[n]
            seen += B
        if pending:
            step_first_layer(kernels, params, table, X, rows_step, dZ_step, work)
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
