"""Compiled forward and backward passes through the whole network for one batch.

The network is described by ``table`` (see :class:`nnjit.layout.Layout`);
parameters, gradients and activations live in flat buffers and each layer
works on 2-D views of them, so no kernel takes more than a few arguments.

:func:`forward` and :func:`backward` are kernels of the table (see
:mod:`nnjit.kernel_calls`): the entry point calls them through their
addresses, and they compile on their own, in the same process as the entry
point.  Inlined into the entry point, as they were before, their
intermediate representation was copied once per block with every variable
of the function (numba's inliner does so): in one process, the entry point
took 8.1 s to compile, against 2.6 s now plus 1.4-1.8 s for each pass.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import inline, jit_native
from nnjit._views import copy_matrix, row, segment, view2d
from nnjit.activations import IDENTITY
from nnjit.dense import (
    DECAY,
    L2,
    MINUS_LR,
    MOMENTUM,
    NESTEROV,
    ONE,
    STEP,
    TRANSPOSED,
    WEIGHT_SCALES,
    ZERO,
    blocks_here,
    column_sums,
    dense_forward,
    dense_input_grad,
    dense_outer,
    make_scalars,
    split_buffer_size,
    transposed_outer,
    use_blas,
)
from nnjit.kernel_calls import ACTIVATE_ROWS, OUTPUT_DELTA, SGD_STEP, call
from nnjit.layout import ACTIVATION, B_OFFSET, N_IN, N_OUT, ROW_OFFSET, W_OFFSET
from nnjit.workspace import Workspace


def make_workspace(sizes: tuple[int, ...], rows: int, dtype: np.dtype) -> Workspace:
    """Allocate the buffers for batches of up to ``rows`` samples."""
    widest = max(sizes[1:])
    partial = split_buffer_size(sizes, rows, blocks_here())
    return Workspace(
        inputs=np.empty((rows, sizes[0]), dtype=dtype),
        targets=np.empty((rows, sizes[-1]), dtype=dtype),
        acts=np.empty(rows * sum(sizes[1:]), dtype=dtype),
        logits=np.empty(rows * sizes[-1], dtype=dtype),
        delta=np.empty(2 * rows * widest, dtype=dtype),
        row_loss=np.empty(rows, dtype=np.float64),
        row_correct=np.empty(rows, dtype=np.int64),
        scal=make_scalars(dtype, len(sizes) - 1, splits=partial > 0),
        partial=np.empty(partial, dtype=dtype),
    )


@inline
def layer_params(params, table, layer):
    """Views ``W`` (n_in, n_out) and ``b`` (n_out,) of one layer in a flat vector."""
    n_in = table[layer, N_IN]
    n_out = table[layer, N_OUT]
    w_off = table[layer, W_OFFSET]
    b_off = table[layer, B_OFFSET]
    W = view2d(params, w_off, n_in, n_out)
    return W, segment(params, b_off, n_out)


@inline
def first_transposed(flat, table):
    """View (n_out, n_in) of the first layer's weights stored transposed in ``flat``.

    The parameters, or the gradient, of a call that keeps the layer
    transposed (see :mod:`nnjit.transposed`).
    """
    return view2d(flat, table[0, W_OFFSET], table[0, N_OUT], table[0, N_IN])


@inline
def layer_output(work, table, layer, B):
    """View (B, n_out) of one layer's output for a batch of ``B`` samples."""
    n_out = table[layer, N_OUT]
    start = B * table[layer, ROW_OFFSET]
    return view2d(work.acts, start, B, n_out)


@inline
def settle_scale(W, scal, slot):
    """Multiply ``W`` by its pending factor ``scal[slot]``, which becomes 1."""
    factor = scal[slot]
    if factor != 1:
        for i in range(W.shape[0]):
            w = row(W, i)
            for j in range(w.size):
                w[j] *= factor
        scal[slot] = 1


@inline
def settle_scales(params, table, scal):
    """Multiply every layer's weights by its pending factor; see :func:`backward`."""
    for layer in range(table.shape[0]):
        W, _ = layer_params(params, table, layer)
        settle_scale(W, scal, WEIGHT_SCALES + layer)


@jit_native
def forward(kernels, params, table, X, work, logits, source, rows, check, pending):
    """Forward pass of the batch ``X`` (B, n_in) into ``work.acts``; whether it was finite.

    :func:`layer_output` views each layer's output; with ``logits`` true
    the output layer also keeps its ``Z`` in ``work.logits``, which the
    cross-entropies need; the mean squared error and predictions do not.

    If ``rows`` is not empty, ``X`` is first filled with the rows ``rows``
    of ``source``.  With ``check``, the batch is then tested for NaN and
    infinity; if it holds one, the pass stops there and returns False.  A
    first layer kept transposed reads the rows ``rows`` of ``source`` where
    they are instead (``X`` then gives only the batch's size), and tests
    them in its own loops: the pass then stops after that layer.

    Each layer's weights are multiplied by their factor in
    ``work.scal[WEIGHT_SCALES + layer]`` (see :func:`backward`).

    ``pending`` is ``(stepping, rows_step, D_step)``: if ``stepping``, the
    first layer, kept transposed, first takes the step that :func:`backward`
    left pending for the batch of the rows ``rows_step`` of ``source``, whose
    first layer's ``Z`` had the gradient ``D_step``.
    """
    B = X.shape[0]
    L = table.shape[0]
    A = X
    for layer in range(L):
        W, b = layer_params(params, table, layer)
        n_out = b.size
        # The first layer's weights may be stored transposed (nnjit.transposed).
        transposed = layer == 0 and work.scal[TRANSPOSED] != 0
        if transposed:
            W = first_transposed(params, table)
        out = layer_output(work, table, layer, B)
        code = table[layer, ACTIVATION]
        scale = WEIGHT_SCALES + layer
        if transposed or not use_blas(B, W.shape[0], n_out):
            settle_scale(W, work.scal, scale)  # only BLAS applies the factor
        keep_logits = layer == L - 1 and logits
        Z = view2d(work.logits, 0, B, n_out) if keep_logits else out
        first = layer == 0
        # One call site: each one inlines dense_forward again.
        finite = dense_forward(
            kernels, A, W, b, Z, IDENTITY if keep_logits else code, work.scal, scale,
            source if first else A, rows if first else rows[:0], check and first,
            work.partial, first, transposed, pending,
        )  # fmt: skip
        if not finite:
            return False
        if keep_logits:
            copy_matrix(out, Z)
            call(kernels, ACTIVATE_ROWS, (out, np.int64(0), B, code))
        A = out
    return True


@inline
def output_loss(kernels, table, loss_code, Y, work):
    """The batch's mean data loss after :func:`forward`, against the targets ``Y``.

    The forward pass must have kept the logits unless ``loss_code`` is MSE.
    Each sample's loss and whether it was predicted right are written to
    ``work.row_loss`` and ``work.row_correct``, and the gradient of the mean
    loss with respect to the output layer's ``Z`` to ``work.delta``, where
    :func:`backward` starts from.
    """
    B = Y.shape[0]
    L = table.shape[0]
    n_out = table[L - 1, N_OUT]
    Z = view2d(work.logits, 0, B, n_out)
    dZ = view2d(work.delta, 0, B, n_out)
    A_out = layer_output(work, table, L - 1, B)
    out_code = table[L - 1, ACTIVATION]
    args = (loss_code, out_code, Z, A_out, Y, dZ, work.row_loss, work.row_correct)
    return call(kernels, OUTPUT_DELTA, args)


@jit_native
def backward(kernels, params, table, X, source, rows, work, optimizer, step, defer):
    """Back-propagate the batch ``X`` after :func:`forward` and :func:`output_loss`.

    A first layer kept transposed reads its batch as its forward pass did,
    the rows ``rows`` of ``source``, where they are (see
    :func:`nnjit.dense.dense_forward`); ``X`` then only gives its size.
    ``optimizer`` is ``(cfg, velocity, grad)``.  With ``step=False`` the flat
    gradient of the mean loss plus ``(cfg.l2/2) sum ||W||^2`` is written to
    ``grad``.  With ``step=True`` the SGD step is applied to ``params`` instead,
    layer by layer once the layer's input gradient no longer needs its weights;
    without momentum the weight step happens inside the gradient's BLAS call.

    The weight decay of that step, ``W <- d W - lr G`` with ``d = 1 - lr l2``,
    would make BLAS scale all of ``W`` in a pass of its own before adding
    ``-lr G``: in W4 that pass took 7% of the time.  Instead a layer whose
    products go to BLAS keeps ``W`` divided by a factor ``s`` (in
    ``scal[WEIGHT_SCALES + layer]``), which BLAS applies as alpha wherever
    ``W`` is used: the step makes ``s <- d s`` and adds ``-(lr / s) G`` to
    the stored weights.  :func:`settle_scales` multiplies the factors in at
    the end of every call, and :func:`settle_scale` when ``s`` leaves
    [0.5, 2] or the loops, which ignore it, are about to read ``W``.

    With ``defer``, plain SGD, and the first layer kept transposed, the step
    of that layer's weights is left to the next forward pass, which takes it
    in the same parallel loop as its product (see :func:`forward`), or to
    :func:`step_first_layer` after the last batch: a parallel loop fewer per
    batch.  Its bias is stepped here.  Returns where in ``work.delta`` the
    gradient of the first layer's ``Z``, which the pending step needs,
    starts.
    """
    cfg, velocity, grad = optimizer
    B = X.shape[0]
    L = table.shape[0]
    n_out = table[L - 1, N_OUT]
    half = work.delta.size // 2
    scal = work.scal
    scal[MINUS_LR] = -cfg.lr
    scal[DECAY] = 1 - cfg.lr * cfg.l2
    scal[MOMENTUM] = cfg.momentum
    scal[L2] = cfg.l2
    scal[NESTEROV] = 1 if cfg.nesterov else 0
    dZ = view2d(work.delta, 0, B, n_out)
    dZ_start = 0
    fused = step and cfg.momentum == 0
    momentum = step and not fused
    use_second = True
    for layer in range(L - 1, -1, -1):
        W, b = layer_params(params, table, layer)
        dW, db = layer_params(grad, table, layer)
        # The first layer's weights, and so its gradient, may be transposed.
        transposed = layer == 0 and scal[TRANSPOSED] != 0
        if transposed:
            W = first_transposed(params, table)
            dW = first_transposed(grad, table)
        A_prev = X if layer == 0 else layer_output(work, table, layer - 1, B)
        dA, dA_start = dZ, dZ_start
        scale = WEIGHT_SCALES + layer
        # With plain SGD and a single sample, the input gradient's loop over
        # the weights takes their step too.
        stepped = False
        if layer > 0:
            dA_start = half if use_second else 0
            dA = view2d(work.delta, dA_start, B, W.shape[0])
            code = table[layer - 1, ACTIVATION]
            stepped = dense_input_grad(kernels, dZ, W, A_prev, dA, code, scal, scale, fused)
            use_second = not use_second
        column_sums(dZ, db)
        w_lo = table[layer, W_OFFSET]
        b_lo = table[layer, B_OFFSET]
        # The weight gradient, or with plain SGD the whole step of the weights.
        # One call site: each one inlines dense_outer again.
        C, alpha, beta = dW, np.int64(ONE), np.int64(ZERO)
        lazy = False
        if fused:
            C = W
            # The factor is 1 unless the layer went to BLAS with the same
            # decay earlier in this call: forward() settles it for the loops.
            lazy = not transposed and use_blas(B, W.shape[0], W.shape[1])
            lazy = lazy and 0.5 <= scal[DECAY] <= 2
            if lazy:
                scal[scale] *= scal[DECAY]
                scal[STEP] = -cfg.lr / scal[scale]
                alpha, beta = np.int64(STEP), np.int64(ONE)
            else:
                alpha, beta = np.int64(MINUS_LR), np.int64(DECAY)
        V = W  # the velocity, stored as the weights are
        if momentum and transposed:
            V = first_transposed(velocity, table)
        elif momentum:
            V = layer_params(velocity, table, layer)[0]
        if transposed and not defer:  # defer implies plain SGD
            transposed_outer(kernels, source, rows, dZ, C, scal, alpha, beta, W, V, momentum)
            stepped = momentum
        elif not (stepped or transposed):
            stepped = dense_outer(
                kernels, A_prev, dZ, C, scal, alpha, beta, W, V, momentum, layer == 0
            )
        if lazy and not 0.5 <= scal[scale] <= 2:
            settle_scale(W, scal, scale)
        if not fused:
            if step and not stepped:
                call(kernels, SGD_STEP, (params, grad, velocity, cfg, cfg.l2, w_lo, b_lo))
            elif cfg.l2 != 0:
                for i in range(W.shape[0]):
                    for j in range(W.shape[1]):
                        dW[i, j] += cfg.l2 * W[i, j]
        if step:
            args = (params, grad, velocity, cfg, scal[ZERO], b_lo, b_lo + b.size)
            call(kernels, SGD_STEP, args)
        dZ, dZ_start = dA, dA_start
    return dZ_start


@inline
def step_first_layer(kernels, params, table, source, rows, dZ, work):
    """Take the step of the first layer's weights that :func:`backward` left pending.

    The batch is the rows ``rows`` of ``source``, and ``dZ`` the gradient of
    the layer's ``Z`` that :func:`backward` returned; the layer is kept
    transposed.
    """
    WT = first_transposed(params, table)
    lr, decay = np.int64(MINUS_LR), np.int64(DECAY)
    transposed_outer(kernels, source, rows, dZ, WT, work.scal, lr, decay, WT, WT, False)


@inline
def weight_penalty(params, table, l2):
    """``(l2 / 2) * sum ||W||^2`` over the weights, never the biases."""
    if l2 == 0:
        return 0.0
    total = 0.0
    for layer in range(table.shape[0]):
        W, _ = layer_params(params, table, layer)
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                total += W[i, j] * W[i, j]
    return 0.5 * l2 * total
