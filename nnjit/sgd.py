"""Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (dampening 0).

``g <- g + l2 p`` (weights only), ``v <- mu v + g``; plain momentum
``p <- p - lr v``; Nesterov ``p <- p - lr (g + mu v)``.  With ``mu = 0`` this
is ``p <- p - lr g``, which :mod:`nnjit.dense` applies inside the weight
gradient's BLAS call; this module updates what remains (biases, and every
parameter under momentum).  The optimiser owns the velocity ``v``; the model
owns ``p``.
"""

from __future__ import annotations

from typing import NamedTuple

from numba import prange

from nnjit._config import inline, jit, jit_parallel

# Parameters from which an update runs in parallel, in chunks of _CHUNK.
PARALLEL_MIN_PARAMS = 1 << 16
_CHUNK = 1 << 13


class SGDConfig(NamedTuple):
    """One step's hyper-parameters, as scalars of the model's dtype."""

    lr: float
    momentum: float
    nesterov: bool
    l2: float


@jit
def _step_chunk(params, grad, velocity, cfg, decay, lo, hi):
    lr = cfg.lr
    mu = cfg.momentum
    if mu == 0:
        for i in range(lo, hi):
            params[i] -= lr * (grad[i] + decay * params[i])
    elif cfg.nesterov:
        for i in range(lo, hi):
            g = grad[i] + decay * params[i]
            v = mu * velocity[i] + g
            velocity[i] = v
            params[i] -= lr * (g + mu * v)
    else:
        for i in range(lo, hi):
            v = mu * velocity[i] + grad[i] + decay * params[i]
            velocity[i] = v
            params[i] -= lr * v


@jit_parallel
def _step_chunks(params, grad, velocity, cfg, decay, lo, hi):
    # Fixed-size chunks: each element is updated by exactly one iteration.
    chunks = (hi - lo + _CHUNK - 1) // _CHUNK
    for c in prange(chunks):
        start = lo + c * _CHUNK
        _step_chunk(params, grad, velocity, cfg, decay, start, min(start + _CHUNK, hi))


@inline
def sgd_step(params, grad, velocity, cfg, decay, lo, hi):
    """Update ``params[lo:hi]`` (and ``velocity``) from ``grad[lo:hi] + decay * params``.

    ``decay`` is ``cfg.l2`` for weights and 0 for biases.
    """
    if hi - lo >= PARALLEL_MIN_PARAMS:
        _step_chunks(params, grad, velocity, cfg, decay, lo, hi)
    else:
        _step_chunk(params, grad, velocity, cfg, decay, lo, hi)
