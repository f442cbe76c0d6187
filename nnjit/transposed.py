"""The first layer's weights, kept transposed while small batches train.

With a mini-batch of ten samples through a 784 x 30 first layer (W3), BLAS on
one core took 20 µs for the forward product and 8 µs for the weight step in
float32, 21 and 14 µs in float64: a product that small is mostly BLAS's
packing and set-up.  Written as loops, the forward product is a set of dot
products between the samples and the columns of ``W``, and the step adds
multiples of the samples to those columns: with ``W`` stored transposed,
both run along the 784 inputs in long vectors, two columns and five samples
per pass, and took 3.2 and 4.1 µs in float32, 7.8 and 7.8 µs in float64.

The first layer has no input gradient, so those two are all it computes.
A training call without momentum whose batches qualify
(:func:`transposes_first`) transposes the layer's weights in place in the
parameter vector before the compiled call and back after it
(:func:`transpose_first`), and sets ``scal[TRANSPOSED]`` for the compiled
code.  Nothing else reads the first layer's weights in between, and what
reads all the parameters (the copy kept to undo a diverging epoch, the
finiteness check, the L2 term) reads every value alike.  The loops run on
one thread in a fixed order, so the results do not depend on the number of
threads.
"""

from __future__ import annotations

import numpy as np

from nnjit._config import jit
from nnjit._views import row
from nnjit.activations import negative_slope
from nnjit.dense import BLAS_MIN_ROWS, BLAS_MIN_WEIGHTS, FORWARD, _piecewise
from nnjit.layout import W_OFFSET, Layout

# Batches of fewer samples than this keep the first layer transposed ...
TRANSPOSED_MAX_ROWS = 32
# ... if it has at least this many inputs.
TRANSPOSED_MIN_INPUTS = 256


def transposes_first(sizes: tuple[int, ...], rows: int) -> bool:
    """Whether training with batches of ``rows`` samples keeps the first layer transposed.

    Batches of 4 to 31 samples (BLAS's products at that size, too small to
    split into row blocks) through a first layer with at least 256 inputs.
    Smaller batches go to the loops of :mod:`nnjit.dense`, which are built
    for them, and so do layers with fewer inputs, where vectors along the
    inputs are short.  Only a training call without momentum uses it: see
    :mod:`nnjit.transposed`.
    """
    n_in, n_out = sizes[0], sizes[1]
    return (
        BLAS_MIN_ROWS <= rows < TRANSPOSED_MAX_ROWS
        and n_in >= TRANSPOSED_MIN_INPUTS
        and n_in * n_out >= BLAS_MIN_WEIGHTS
    )


def transpose_first(params: np.ndarray, layout: Layout, back: bool = False) -> None:
    """Store the first layer's weights in ``params`` transposed, or with ``back`` as they were."""
    n_in, n_out = layout.sizes[0], layout.sizes[1]
    offset = layout.table[0, W_OFFSET]
    weights = params[offset : offset + n_in * n_out]
    weights[:] = weights.reshape((n_out, n_in) if back else (n_in, n_out)).T.ravel()


@jit
def transposed_rows(task, A, WT, b, D, code, scal, alpha, beta):
    """A product of a layer whose weights are stored transposed, ``WT`` of shape ``(n_out, n_in)``.

    ``task`` ``FORWARD``: ``D = f(A @ WT.T + b)`` for the activation ``code``
    if piecewise-linear, else the identity (see
    :func:`nnjit.dense.dense_forward`).  Otherwise the SGD step
    ``WT <- scal[beta] WT + scal[alpha] D.T @ A`` with ``D`` the gradient of
    the layer's ``Z``; ``b`` is unused.  Two rows of ``WT`` and five samples
    per pass over the inputs.  The loops are written out: numba took 1.4 s
    longer to compile them as calls to inlined functions.
    """
    B = A.shape[0]
    m = WT.shape[0]
    zero = WT.dtype.type(0.0)
    if task == FORWARD:
        Z = D
        slope = negative_slope(code, Z)
        # With an odd number of outputs the last pass computes the last twice.
        for j in range(0, m, 2):
            j2 = min(j + 1, m - 1)
            u = row(WT, j)
            v = row(WT, j2)
            n = 0
            while n + 5 <= B:
                a0 = row(A, n)
                a1 = row(A, n + 1)
                a2 = row(A, n + 2)
                a3 = row(A, n + 3)
                a4 = row(A, n + 4)
                s0 = s1 = s2 = s3 = s4 = t0 = t1 = t2 = t3 = t4 = zero
                for i in range(u.size):
                    ui = u[i]
                    vi = v[i]
                    s0 += a0[i] * ui
                    t0 += a0[i] * vi
                    s1 += a1[i] * ui
                    t1 += a1[i] * vi
                    s2 += a2[i] * ui
                    t2 += a2[i] * vi
                    s3 += a3[i] * ui
                    t3 += a3[i] * vi
                    s4 += a4[i] * ui
                    t4 += a4[i] * vi
                Z[n, j], Z[n + 1, j], Z[n + 2, j], Z[n + 3, j], Z[n + 4, j] = s0, s1, s2, s3, s4
                Z[n, j2], Z[n + 1, j2], Z[n + 2, j2], Z[n + 3, j2], Z[n + 4, j2] = (
                    t0,
                    t1,
                    t2,
                    t3,
                    t4,
                )
                n += 5
            for r in range(n, B):
                a = row(A, r)
                s = t = zero
                for i in range(u.size):
                    s += a[i] * u[i]
                    t += a[i] * v[i]
                Z[r, j] = s
                Z[r, j2] = t
        for n in range(B):
            z = row(Z, n)
            for j in range(m):
                z[j] = _piecewise(z[j] + b[j], slope)
        return
    dZ = D
    lr = scal[alpha]
    decay = scal[beta]
    for j in range(m):
        u = row(WT, j)
        if decay == 0:  # overwrites, as BLAS's beta does, whatever u held
            for i in range(u.size):
                u[i] = 0
        elif decay != 1:
            for i in range(u.size):
                u[i] *= decay
    for j in range(0, m, 2):
        # With an odd number of outputs the last pass steps the last alone.
        pair = j + 1 < m
        j2 = j + 1 if pair else j
        u = row(WT, j)
        v = row(WT, j2)
        n = 0
        while n + 5 <= B:
            a0 = row(A, n)
            a1 = row(A, n + 1)
            a2 = row(A, n + 2)
            a3 = row(A, n + 3)
            a4 = row(A, n + 4)
            c0, c1, c2 = lr * dZ[n, j], lr * dZ[n + 1, j], lr * dZ[n + 2, j]
            c3, c4 = lr * dZ[n + 3, j], lr * dZ[n + 4, j]
            if pair:
                d0, d1, d2 = lr * dZ[n, j2], lr * dZ[n + 1, j2], lr * dZ[n + 2, j2]
                d3, d4 = lr * dZ[n + 3, j2], lr * dZ[n + 4, j2]
                for i in range(u.size):
                    x0 = a0[i]
                    x1 = a1[i]
                    x2 = a2[i]
                    x3 = a3[i]
                    x4 = a4[i]
                    u[i] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4
                    v[i] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3 + d4 * x4
            else:
                for i in range(u.size):
                    u[i] += c0 * a0[i] + c1 * a1[i] + c2 * a2[i] + c3 * a3[i] + c4 * a4[i]
            n += 5
        for r in range(n, B):
            a = row(A, r)
            c = lr * dZ[r, j]
            d = lr * dZ[r, j2]
            if pair:
                for i in range(u.size):
                    u[i] += c * a[i]
                    v[i] += d * a[i]
            else:
                for i in range(u.size):
                    u[i] += c * a[i]
