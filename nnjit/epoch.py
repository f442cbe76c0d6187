"""Compiled training epoch and full-data entry points of the ``numba`` backend.

:func:`train_epoch` runs a range of mini-batches (a whole epoch, or a slice
of one when a progress bar is shown) without returning to Python: gather the
batch, forward, backward, SGD step.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import jit
from nnjit.layout import ACTIVATION
from nnjit.losses import output_delta
from nnjit.propagation import backward, forward, weight_penalty


@jit
def _gather(X, Y, order, lo, hi, work):
    """Copy the rows ``order[lo:hi]`` of ``X`` and ``Y`` into the batch buffers."""
    B = hi - lo
    Xb = work.inputs[:B]
    Yb = work.targets[:B]
    for n in range(B):
        src = order[lo + n]
        Xb[n] = X[src]
        Yb[n] = Y[src]
    return Xb, Yb


@jit
def train_epoch(model, data, optimizer, work, first, stop, batch_size):
    """Mini-batches ``first .. stop - 1`` of one epoch.

    Parameters
    ----------
    model : tuple
        ``(params, table, loss_code)``; ``params`` is updated in place.
    data : tuple
        ``(X, Y, order)``: inputs, 2-D targets and the epoch's sample order.
    optimizer : tuple
        ``(cfg, velocity, grad)``: :class:`nnjit.sgd.SGDConfig`, the momentum
        buffer and the gradient buffer.
    work : Workspace
        Buffers for ``batch_size`` rows.
    first, stop, batch_size : int
        The batch range; batch ``i`` holds samples ``order[i*bs : (i+1)*bs]``
        (the last one may be smaller).

    Returns
    -------
    loss_sum : float
        Sum over the samples seen of their data loss, before each step.
    correct : int
        Samples predicted right before each step (classifiers).
    seen : int
        Samples whose batch was completed.
    finite : bool
        False if a batch loss was NaN or infinite; the epoch stopped before
        that batch's update.
    """
    params, table, loss_code = model
    X, Y, order = data
    N = order.size
    loss_sum = 0.0
    correct = 0
    seen = 0
    for batch in range(first, stop):
        lo = batch * batch_size
        hi = min(lo + batch_size, N)
        Xb, Yb = _gather(X, Y, order, lo, hi, work)
        forward(params, table, Xb, work)
        loss = backward(params, table, loss_code, Xb, Yb, work, optimizer, True)
        if not np.isfinite(loss):
            return loss_sum, correct, seen, False
        B = hi - lo
        loss_sum += loss * B
        for n in range(B):
            correct += work.row_correct[n]
        seen += B
    return loss_sum, correct, seen, True


@jit
def loss_and_grad(model, X, Y, optimizer, work):
    """Full-batch loss (data + L2) and its flat gradient, written to ``optimizer[2]``.

    ``optimizer`` is ``(cfg, velocity, grad)``; only ``cfg.l2`` is used.
    """
    params, table, loss_code = model
    forward(params, table, X, work)
    loss = backward(params, table, loss_code, X, Y, work, optimizer, False)
    return loss + weight_penalty(params, table, optimizer[0].l2)


@jit
def predict_chunks(params, table, X, out, work):
    """Output activations of every row of ``X`` into ``out``, a chunk at a time."""
    rows = work.inputs.shape[0]
    for lo in range(0, X.shape[0], rows):
        hi = min(lo + rows, X.shape[0])
        Xb = work.inputs[: hi - lo]
        Xb[:] = X[lo:hi]
        out[lo:hi] = forward(params, table, Xb, work)


@jit
def data_loss(model, X, Y, work):
    """Mean data loss over every row of ``X``, a chunk at a time (no L2)."""
    params, table, loss_code = model
    L = table.shape[0]
    rows = work.inputs.shape[0]
    order = np.arange(X.shape[0])
    total = 0.0
    for lo in range(0, X.shape[0], rows):
        hi = min(lo + rows, X.shape[0])
        Xb, Yb = _gather(X, Y, order, lo, hi, work)
        A_out = forward(params, table, Xb, work)
        B, m = A_out.shape
        Z = work.logits[: B * m].reshape((B, m))
        dZ = work.delta[: B * m].reshape((B, m))
        batch_mean = output_delta(
            loss_code, table[L - 1, ACTIVATION], Z, A_out, Yb, dZ, work.row_loss, work.row_correct
        )
        total += batch_mean * B
    return total / X.shape[0]
