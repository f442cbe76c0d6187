"""Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (dampening 0).

``v <- mu v + g``; plain momentum ``p <- p - lr v``; Nesterov
``p <- p - lr (g + mu v)``.  With ``mu = 0`` this is ``p <- p - lr g``.  The
optimiser owns the velocity ``v``; the model owns ``p``.
"""

from __future__ import annotations

from typing import NamedTuple

from numba import prange

from nnjit._config import PARALLEL_MIN_ELEMENTS, jit, jit_parallel

_CHUNK = 4096


class SGDConfig(NamedTuple):
    """One step's hyper-parameters, as scalars of the model's dtype."""

    lr: float
    momentum: float
    nesterov: bool
    l2: float


@jit
def _step_range(params, grad, velocity, cfg, lo, hi):
    lr = cfg.lr
    mu = cfg.momentum
    if mu == 0:
        for i in range(lo, hi):
            params[i] -= lr * grad[i]
    elif cfg.nesterov:
        for i in range(lo, hi):
            v = mu * velocity[i] + grad[i]
            velocity[i] = v
            params[i] -= lr * (grad[i] + mu * v)
    else:
        for i in range(lo, hi):
            v = mu * velocity[i] + grad[i]
            velocity[i] = v
            params[i] -= lr * v


@jit_parallel
def _step_parallel(params, grad, velocity, cfg):
    # Fixed-size chunks: each element is updated by exactly one iteration.
    n_chunks = (params.size + _CHUNK - 1) // _CHUNK
    for c in prange(n_chunks):
        _step_range(params, grad, velocity, cfg, c * _CHUNK, min((c + 1) * _CHUNK, params.size))


@jit
def sgd_step(params, grad, velocity, cfg):
    """Update ``params`` (and ``velocity``) in place from ``grad``."""
    if params.size >= PARALLEL_MIN_ELEMENTS:
        _step_parallel(params, grad, velocity, cfg)
    else:
        _step_range(params, grad, velocity, cfg, 0, params.size)
