"""``exp(x)`` for ``x <= 0``, written so that the loops calling it vectorise.

numba compiles ``np.exp`` to a call of the C library's scalar ``exp``, one
element at a time: the sigmoid of a 784-30-10 network spent about a tenth of
its training time there.  Every exponential nnjit needs has an argument of at
most 0 (``exp(-|z|)`` in the sigmoid and the binary cross-entropy,
``exp(z - max z)`` in the softmax), and :func:`exp_nonpositive` is written in
arithmetic alone, so LLVM vectorises the loops around it.

The method is the usual one: ``x = k ln 2 + r`` with integer ``k`` and
``|r| <= ln(2) / 2``, ``exp(r)`` by its Taylor polynomial (degree 13 in
float64, 7 in float32, each well inside one unit in the last place) and
``2**k`` built from its bits.  Arguments below -708 (-87 in float32) give
0, where the exact result is under twice the smallest normal number; NaN
passes through.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

from nnjit._config import FASTMATH, OPTIONS

LOG2E = 1.4426950408889634
# ln 2 in two parts: k * LN2_HI is exact for the k that occur.
LN2_HI = 0.693145751953125
LN2_LO = 1.4286068203094173e-06
# Adding 1.5 * 2**52 (2**23 in float32) rounds to an integer held in the low bits.
SHIFT64 = 6755399441055744.0
SHIFT32 = 12582912.0
# Below these, exp(x) is under the smallest normal number: the result is 0.
LOWEST64 = -708.0
LOWEST32 = -87.0


def exp_nonpositive(x):
    """``exp(x)`` for a float ``x <= 0``; compiled code only."""
    raise NotImplementedError("exp_nonpositive is callable from compiled code only")


# Each type's partner of the same width, for reading a float's bits as an
# integer and back.
_SAME_WIDTH = {
    types.float64: types.int64,
    types.int64: types.float64,
    types.float32: types.int32,
    types.int32: types.float32,
}


@intrinsic
def _reinterpret(typingctx, value):
    """The bits of ``value`` read as its partner type (float64 <-> int64, float32 <-> int32)."""
    result = _SAME_WIDTH[value]

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(value), codegen


# No ``reassoc``: it would fold ``(y * LOG2E + SHIFT) - SHIFT`` to ``y * LOG2E``.
@overload(exp_nonpositive, jit_options={**OPTIONS, "fastmath": FASTMATH - {"reassoc"}})
def _exp_nonpositive(x):
    if x == types.float64:
        return _exp_for(np.float64, degree=13, shift=SHIFT64, lowest=LOWEST64, bias=1023, bits=52)
    if x == types.float32:
        return _exp_for(np.float32, degree=7, shift=SHIFT32, lowest=LOWEST32, bias=127, bits=23)
    return None


def _exp_for(dtype, degree, shift, lowest, bias, bits):
    """``exp(x)`` for ``x <= 0`` in ``dtype``, with the Taylor polynomial of ``degree``.

    ``bias`` and ``bits`` are the exponent bias and the mantissa width of the
    type, which build ``2**k`` from its bits.
    """
    coefficients = tuple(dtype(1 / math.factorial(n)) for n in range(degree, -1, -1))
    log2e, ln2_hi, ln2_lo = dtype(LOG2E), dtype(LN2_HI), dtype(LN2_LO)
    shift, lowest, zero = dtype(shift), dtype(lowest), dtype(0.0)
    exponent_type = np.int64 if dtype == np.float64 else np.int32

    def impl(x):
        y = max(x, lowest)
        t = y * log2e + shift
        k = t - shift
        r = (y - k * ln2_hi) - k * ln2_lo
        p = zero
        for c in coefficients:
            p = p * r + c
        # numba widens int32 arithmetic to int64: keep the low bits of the type.
        scale = _reinterpret(exponent_type((np.int64(_reinterpret(t)) + bias) << bits))
        result = p * scale
        result = result if x >= lowest else zero
        return result if x == x else x

    return impl
