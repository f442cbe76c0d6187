"""The first layer's weights, kept transposed while small batches train.

With a mini-batch of ten samples through a 784 x 30 first layer (W3), the
forward product and the weight step each took 20 and 8 µs in BLAS on one core
in float32 (14 and 8 µs in float64): a product that small is mostly BLAS's
packing and set-up.  Written as loops, the forward product is a set of dot
products between the samples and the columns of ``W``, and the step adds
multiples of the samples to those columns: with ``W`` stored transposed,
both run along the 784 inputs in long vectors, two columns and five samples
per pass, and took 3.2 and 4.1 µs (float32), 7.8 and 7.8 µs (float64).

The first layer has no input gradient, so those two are all it computes.
A training call without momentum whose batches qualify
(:func:`transposes_first`) transposes the layer's weights in place in the
parameter vector as it starts, runs both products on them, and transposes
them back before it returns (:func:`transpose_weights`); nothing else reads
the weights in between, and what does (the copy kept to undo a diverging
epoch, the finiteness check, the L2 term) reads every value alike.  The
loops run on one thread in a fixed order, so the results do not depend on
the number of threads.
"""

from __future__ import annotations

from nnjit._config import inline, jit
from nnjit._views import copy_vector, row, view2d
from nnjit.activations import negative_slope
from nnjit.dense import BLAS_MIN_ROWS, BLAS_MIN_WEIGHTS, FORWARD, _piecewise

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


@inline
def transpose_weights(flat, offset, rows, cols, scratch):
    """Transpose the ``(rows, cols)`` matrix at ``flat[offset:]`` in place, through ``scratch``."""
    size = rows * cols
    copy_vector(scratch[:size], flat[offset : offset + size])
    before = view2d(scratch, 0, rows, cols)
    after = view2d(flat, offset, cols, rows)
    for c in range(cols):
        out = row(after, c)
        for r in range(rows):
            out[r] = before[r, c]


@jit
def transposed_rows(task, A, WT, b, D, code, scal, alpha, beta):
    """A product of a layer whose weights are stored transposed, ``WT`` of shape ``(n_out, n_in)``.

    ``task`` ``FORWARD``: ``D = f(A @ WT.T + b)`` for the activation ``code``
    if piecewise-linear, else the identity (see
    :func:`nnjit.dense.dense_forward`).  Otherwise the SGD step
    ``WT <- scal[beta] WT + scal[alpha] D.T @ A`` with ``D`` the gradient of
    the layer's ``Z``; ``b`` is unused.
    """
    if task == FORWARD:
        _forward(A, WT, b, D, negative_slope(code, D))
    else:
        _step(A, D, WT, scal[alpha], scal[beta])


@inline
def _forward(A, WT, b, Z, slope):
    """``Z = f(A @ WT.T + b)``: two outputs and five samples per pass over the inputs.

    With an odd number of outputs the last pass computes the last one twice.
    """
    B = A.shape[0]
    m = WT.shape[0]
    for j in range(0, m, 2):
        j2 = min(j + 1, m - 1)
        u = row(WT, j)
        v = row(WT, j2)
        n = 0
        while n + 5 <= B:
            s0, s1, s2, s3, s4, t0, t1, t2, t3, t4 = _ten_dots(A, n, u, v)
            Z[n, j] = _piecewise(b[j] + s0, slope)
            Z[n + 1, j] = _piecewise(b[j] + s1, slope)
            Z[n + 2, j] = _piecewise(b[j] + s2, slope)
            Z[n + 3, j] = _piecewise(b[j] + s3, slope)
            Z[n + 4, j] = _piecewise(b[j] + s4, slope)
            Z[n, j2] = _piecewise(b[j2] + t0, slope)
            Z[n + 1, j2] = _piecewise(b[j2] + t1, slope)
            Z[n + 2, j2] = _piecewise(b[j2] + t2, slope)
            Z[n + 3, j2] = _piecewise(b[j2] + t3, slope)
            Z[n + 4, j2] = _piecewise(b[j2] + t4, slope)
            n += 5
        for r in range(n, B):
            a = row(A, r)
            s = t = u.dtype.type(0.0)
            for i in range(u.size):
                s += a[i] * u[i]
                t += a[i] * v[i]
            Z[r, j] = _piecewise(b[j] + s, slope)
            Z[r, j2] = _piecewise(b[j2] + t, slope)


@inline
def _ten_dots(A, n, u, v):
    """The dot products of rows ``n .. n+4`` of ``A`` with ``u``, then with ``v``."""
    a0 = row(A, n)
    a1 = row(A, n + 1)
    a2 = row(A, n + 2)
    a3 = row(A, n + 3)
    a4 = row(A, n + 4)
    s0 = s1 = s2 = s3 = s4 = t0 = t1 = t2 = t3 = t4 = u.dtype.type(0.0)
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
    return s0, s1, s2, s3, s4, t0, t1, t2, t3, t4


@inline
def _step(A, dZ, WT, alpha, decay):
    """``WT <- decay WT + alpha dZ.T @ A``: two rows of ``WT`` and five samples per pass."""
    B = A.shape[0]
    m = WT.shape[0]
    for j in range(0, m - 1, 2):
        u = row(WT, j)
        v = row(WT, j + 1)
        _scale(u, decay)
        _scale(v, decay)
        n = 0
        while n + 5 <= B:
            a0 = row(A, n)
            a1 = row(A, n + 1)
            a2 = row(A, n + 2)
            a3 = row(A, n + 3)
            a4 = row(A, n + 4)
            c0, c1, c2, c3, c4 = _five_scaled(dZ, n, j, alpha)
            d0, d1, d2, d3, d4 = _five_scaled(dZ, n, j + 1, alpha)
            for i in range(u.size):
                x0 = a0[i]
                x1 = a1[i]
                x2 = a2[i]
                x3 = a3[i]
                x4 = a4[i]
                u[i] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3 + c4 * x4
                v[i] += d0 * x0 + d1 * x1 + d2 * x2 + d3 * x3 + d4 * x4
            n += 5
        for r in range(n, B):
            a = row(A, r)
            c = alpha * dZ[r, j]
            d = alpha * dZ[r, j + 1]
            for i in range(u.size):
                u[i] += c * a[i]
                v[i] += d * a[i]
    if m % 2:
        j = m - 1
        u = row(WT, j)
        _scale(u, decay)
        for r in range(B):
            a = row(A, r)
            c = alpha * dZ[r, j]
            for i in range(u.size):
                u[i] += c * a[i]


@inline
def _scale(u, decay):
    """``u *= decay``; 0 overwrites ``u``, as BLAS's beta does, whatever it held."""
    if decay == 0:
        for i in range(u.size):
            u[i] = 0
    elif decay != 1:
        for i in range(u.size):
            u[i] *= decay


@inline
def _five_scaled(dZ, n, j, alpha):
    """``alpha * dZ[n:n+5, j]`` as five scalars."""
    return (
        alpha * dZ[n, j],
        alpha * dZ[n + 1, j],
        alpha * dZ[n + 2, j],
        alpha * dZ[n + 3, j],
        alpha * dZ[n + 4, j],
    )
