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

from nnjit._config import jit


class SGDConfig(NamedTuple):
    """One step's hyper-parameters, as scalars of the model's dtype."""

    lr: float
    momentum: float
    nesterov: bool
    l2: float


@jit
def sgd_step(params, grad, velocity, cfg, decay, lo, hi):
    """Update ``params[lo:hi]`` (and ``velocity``) from ``grad[lo:hi] + decay * params``.

    ``decay`` is ``cfg.l2`` for weights and 0 for biases.  Large layers take
    this step inside the parallel blocks of their weight gradient (see
    :func:`nnjit.dense.dense_outer`), a block of rows each.
    """
    lr = cfg.lr
    mu = cfg.momentum
    # Slices indexed from 0: see nnjit.dense._add_rows.
    p = params[lo:hi]
    g = grad[lo:hi]
    if mu == 0:
        for i in range(p.size):
            p[i] -= lr * (g[i] + decay * p[i])
        return
    v = velocity[lo:hi]
    if cfg.nesterov:
        for i in range(p.size):
            gi = g[i] + decay * p[i]
            vi = mu * v[i] + gi
            v[i] = vi
            p[i] -= lr * (gi + mu * vi)
    else:
        for i in range(p.size):
            vi = mu * v[i] + g[i] + decay * p[i]
            v[i] = vi
            p[i] -= lr * vi
