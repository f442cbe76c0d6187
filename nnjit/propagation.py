"""Compiled forward and backward passes through the whole network for one batch.

The network is described by ``table`` (see :class:`nnjit.layout.Layout`);
parameters, gradients and activations live in flat buffers and each layer
works on 2-D views of them, so no kernel takes more than a few arguments.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nnjit._config import jit
from nnjit.activations import IDENTITY, activate, bias_activate, multiply_derivative
from nnjit.dense import dense_backward, matmul, matmul_nt
from nnjit.layout import ACTIVATION, B_OFFSET, N_IN, N_OUT, ROW_OFFSET, W_OFFSET
from nnjit.losses import output_delta


class Workspace(NamedTuple):
    """Buffers for batches of up to ``rows`` samples, allocated once per call."""

    inputs: np.ndarray  # (rows, n_in): the gathered mini-batch
    targets: np.ndarray  # (rows, n_out)
    acts: np.ndarray  # rows * sum(sizes[1:]): every layer's output
    logits: np.ndarray  # rows * n_out: the output layer's Z
    delta: np.ndarray  # rows * max(sizes[1:]), two halves used in turn
    row_loss: np.ndarray  # (rows,) float64
    row_correct: np.ndarray  # (rows,) int64


def make_workspace(sizes: tuple[int, ...], rows: int, dtype: np.dtype) -> Workspace:
    """Allocate the buffers for batches of up to ``rows`` samples."""
    widest = max(sizes[1:])
    return Workspace(
        inputs=np.empty((rows, sizes[0]), dtype=dtype),
        targets=np.empty((rows, sizes[-1]), dtype=dtype),
        acts=np.empty(rows * sum(sizes[1:]), dtype=dtype),
        logits=np.empty(rows * sizes[-1], dtype=dtype),
        delta=np.empty(2 * rows * widest, dtype=dtype),
        row_loss=np.empty(rows, dtype=np.float64),
        row_correct=np.empty(rows, dtype=np.int64),
    )


@jit
def layer_params(params, table, layer):
    """Views ``W`` (n_in, n_out) and ``b`` (n_out,) of one layer in a flat vector."""
    n_in = table[layer, N_IN]
    n_out = table[layer, N_OUT]
    w_off = table[layer, W_OFFSET]
    b_off = table[layer, B_OFFSET]
    W = params[w_off : w_off + n_in * n_out].reshape((n_in, n_out))
    return W, params[b_off : b_off + n_out]


@jit
def layer_output(work, table, layer, B):
    """View (B, n_out) of one layer's output for a batch of ``B`` samples."""
    n_out = table[layer, N_OUT]
    start = B * table[layer, ROW_OFFSET]
    return work.acts[start : start + B * n_out].reshape((B, n_out))


@jit
def forward(params, table, X, work):
    """Forward pass of the batch ``X`` (B, n_in); returns the output view (B, n_out).

    Hidden layers are computed in place in their output view; the output layer
    keeps its logits in ``work.logits`` for the losses.
    """
    B = X.shape[0]
    L = table.shape[0]
    A = X
    for layer in range(L):
        W, b = layer_params(params, table, layer)
        out = layer_output(work, table, layer, B)
        code = table[layer, ACTIVATION]
        if layer < L - 1:
            matmul(A, W, out)
            bias_activate(out, b, code)
        else:
            Z = work.logits[: B * W.shape[1]].reshape((B, W.shape[1]))
            matmul(A, W, Z)
            bias_activate(Z, b, IDENTITY)
            out[:] = Z
            activate(out, code)
        A = out
    return A


@jit
def backward(params, table, loss_code, l2, X, Y, work, grad):
    """Gradient of the batch mean loss after :func:`forward` of the same batch.

    Writes the flat gradient into ``grad`` (the L2 term ``l2 W`` included) and
    returns the batch mean data loss.
    """
    B = X.shape[0]
    L = table.shape[0]
    n_out = table[L - 1, N_OUT]
    half = work.delta.size // 2
    Z = work.logits[: B * n_out].reshape((B, n_out))
    A_out = layer_output(work, table, L - 1, B)
    dZ = work.delta[: B * n_out].reshape((B, n_out))
    loss = output_delta(
        loss_code, table[L - 1, ACTIVATION], Z, A_out, Y, dZ, work.row_loss, work.row_correct
    )
    use_second = True
    for layer in range(L - 1, -1, -1):
        W, _ = layer_params(params, table, layer)
        dW, db = layer_params(grad, table, layer)
        A_prev = X if layer == 0 else layer_output(work, table, layer - 1, B)
        dense_backward(A_prev, W, dZ, l2, dW, db)
        if layer > 0:
            n_in = W.shape[0]
            start = half if use_second else 0
            dA = work.delta[start : start + B * n_in].reshape((B, n_in))
            matmul_nt(dZ, W, dA)
            multiply_derivative(dA, A_prev, table[layer - 1, ACTIVATION])
            dZ = dA
            use_second = not use_second
    return loss


@jit
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
