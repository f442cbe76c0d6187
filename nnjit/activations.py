"""Activation functions: the name table and the compiled row kernels.

Every derivative is written from the activation's *output* ``A`` so that the
pre-activations ``Z`` of hidden layers never need to be kept.  This works for
all hidden activations here, leaky ReLU included, because its output has the
sign of its input.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from nnjit._config import PARALLEL_MIN_ELEMENTS, jit, jit_parallel

IDENTITY = 0
RELU = 1
LEAKY_RELU = 2
SIGMOID = 3
TANH = 4
SOFTMAX = 5

LEAKY_SLOPE = 0.01

ACTIVATIONS = {
    "identity": IDENTITY,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "softmax": SOFTMAX,
}
ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}
HIDDEN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "softmax")
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS)


@jit
def activate_row(z, code):
    """Apply activation ``code`` to one row ``z`` in place."""
    one = z.dtype.type(1.0)
    if code == RELU:
        for j in range(z.size):
            if z[j] < 0:
                z[j] = 0
    elif code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_SLOPE)
        for j in range(z.size):
            if z[j] < 0:
                z[j] = slope * z[j]
    elif code == SIGMOID:
        for j in range(z.size):
            # Split on the sign so that exp never overflows.
            if z[j] >= 0:
                z[j] = one / (one + np.exp(-z[j]))
            else:
                e = np.exp(z[j])
                z[j] = e / (one + e)
    elif code == TANH:
        for j in range(z.size):
            z[j] = np.tanh(z[j])
    elif code == SOFTMAX:
        zmax = z[0]
        for j in range(1, z.size):
            zmax = max(zmax, z[j])
        total = z.dtype.type(0.0)
        for j in range(z.size):
            z[j] = np.exp(z[j] - zmax)
            total += z[j]
        for j in range(z.size):
            z[j] = z[j] / total


@jit
def derivative_row(d, a, code):
    """Multiply the row ``d`` in place by the activation's derivative at output ``a``."""
    one = d.dtype.type(1.0)
    if code == RELU:
        for j in range(d.size):
            if not a[j] > 0:
                d[j] = 0
    elif code == LEAKY_RELU:
        slope = d.dtype.type(LEAKY_SLOPE)
        for j in range(d.size):
            if not a[j] > 0:
                d[j] = slope * d[j]
    elif code == SIGMOID:
        for j in range(d.size):
            d[j] = d[j] * (a[j] * (one - a[j]))
    elif code == TANH:
        for j in range(d.size):
            d[j] = d[j] * (one - a[j] * a[j])


@jit
def _bias_activate_serial(Z, b, code):
    for n in range(Z.shape[0]):
        z = Z[n]
        for j in range(z.size):
            z[j] += b[j]
        activate_row(z, code)


@jit_parallel
def _bias_activate_parallel(Z, b, code):
    for n in prange(Z.shape[0]):
        z = Z[n]
        for j in range(z.size):
            z[j] += b[j]
        activate_row(z, code)


@jit
def bias_activate(Z, b, code):
    """``Z <- f(Z + b)`` row by row, in place; each row is one sample."""
    if Z.size >= PARALLEL_MIN_ELEMENTS:
        _bias_activate_parallel(Z, b, code)
    else:
        _bias_activate_serial(Z, b, code)


@jit
def activate(Z, code):
    """``Z <- f(Z)`` row by row, in place."""
    for n in range(Z.shape[0]):
        activate_row(Z[n], code)


@jit
def _derivative_serial(D, A, code):
    for n in range(D.shape[0]):
        derivative_row(D[n], A[n], code)


@jit_parallel
def _derivative_parallel(D, A, code):
    for n in prange(D.shape[0]):
        derivative_row(D[n], A[n], code)


@jit
def multiply_derivative(D, A, code):
    """``D <- D * f'(Z)`` in place, with ``f'`` written from the output ``A``."""
    if code == IDENTITY:
        return
    if D.size >= PARALLEL_MIN_ELEMENTS:
        _derivative_parallel(D, A, code)
    else:
        _derivative_serial(D, A, code)
