"""Checking a network's analytic gradient against central finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnjit.network import Network


def gradcheck(net: Network, X: Any, y: Any, l2: float = 0.0, eps: float | None = None) -> float:
    """Largest relative difference between ``loss_and_grad`` and finite differences.

    The finite differences ``(L(p + eps e_i) - L(p - eps e_i)) / (2 eps)`` are
    taken of the network's own :meth:`~nnjit.Network.loss`, always in float64
    (a float32 network is copied to float64 with the same parameters and the
    same float32-rounded data), so that the check measures the gradient and
    not the rounding of the differences.

    Parameters
    ----------
    net : Network
    X, y : array-like
        Data as for :meth:`Network.loss`; keep it small, the check costs two
        loss evaluations per parameter.
    l2 : float, default 0
    eps : float, optional
        Step; by default ``1e-5`` times ``max(1, |p_i|)``, near the cube root
        of float64's epsilon, which balances truncation against rounding.

    Returns
    -------
    float
        ``max_i |g_i - d_i| / max(|g_i|, |d_i|, floor)`` with ``g`` the
        analytic and ``d`` the numerical gradient, and ``floor`` a small
        multiple of the largest gradient entry so that entries that should be
        zero do not divide by zero.  Below about 1e-5 the gradient is right
        (entries many times smaller than the largest carry the finite
        differences' rounding); a wrong sign or a missing term gives values
        near 1.
    """
    _, grad = net.loss_and_grad(net.params, X, y, l2)
    grad = grad.astype(np.float64)
    X64 = np.asarray(X, dtype=net.dtype).astype(np.float64)
    y64 = np.asarray(y)
    if y64.dtype.kind == "f":
        y64 = y64.astype(net.dtype).astype(np.float64)
    probe = Network(
        net.sizes, list(net.hidden) or "relu", net.output, net.loss_name, backend=net.backend
    )
    params = net.params.astype(np.float64)
    numeric = np.empty_like(params)
    for i in range(params.size):
        step = eps if eps is not None else 1e-5 * max(1.0, abs(params[i]))
        saved = params[i]
        params[i] = saved + step
        probe.params = params
        upper = probe.loss(X64, y64, l2)
        params[i] = saved - step
        probe.params = params
        lower = probe.loss(X64, y64, l2)
        params[i] = saved
        numeric[i] = (upper - lower) / (2 * step)
    floor = 1e-7 * max(1.0, float(np.abs(grad).max(initial=0.0)))
    scale = np.maximum(np.maximum(np.abs(grad), np.abs(numeric)), floor)
    return float((np.abs(grad - numeric) / scale).max())
