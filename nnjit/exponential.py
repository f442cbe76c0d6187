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


@intrinsic
def _bits_as_float(typingctx, bits):
    """The float whose bits are ``bits`` (int64 -> float64, int32 -> float32)."""
    result = types.float64 if bits.bitwidth == 64 else types.float32

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(bits), codegen


@intrinsic
def _float_as_bits(typingctx, value):
    """The bits of a float, as int64 for float64 and int32 for float32."""
    result = types.int64 if value.bitwidth == 64 else types.int32

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(result))

    return result(value), codegen


# No ``reassoc``: it would fold ``(y * LOG2E + SHIFT) - SHIFT`` to ``y * LOG2E``.
@overload(exp_nonpositive, jit_options={**OPTIONS, "fastmath": FASTMATH - {"reassoc"}})
def _exp_nonpositive(x):
    if x == types.float64:
        return _exp64
    if x == types.float32:
        return _exp32
    return None


def _exp64(x):
    y = max(x, LOWEST64)
    t = y * LOG2E + SHIFT64
    k = t - SHIFT64
    r = (y - k * LN2_HI) - k * LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _bits_as_float((_float_as_bits(t) + np.int64(1023)) << np.int64(52))
    result = p * scale
    result = result if x >= LOWEST64 else 0.0
    return result if x == x else x


def _exp32(x):
    one = np.float32(1.0)
    y = max(x, np.float32(LOWEST32))
    t = y * np.float32(LOG2E) + np.float32(SHIFT32)
    k = t - np.float32(SHIFT32)
    r = (y - k * np.float32(LN2_HI)) - k * np.float32(LN2_LO)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + one
    p = p * r + one
    # numba widens int32 arithmetic to int64: keep the low 32 bits.
    scale = _bits_as_float(np.int32((np.int64(_float_as_bits(t)) + 127) << 23))
    result = p * scale
    result = result if x >= np.float32(LOWEST32) else np.float32(0.0)
    return result if x == x else x
