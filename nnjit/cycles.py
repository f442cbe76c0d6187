"""The processor's cycle counter, read from compiled code."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def cycle_count(typingctx):
    """The processor's cycle counter (``llvm.readcyclecounter``; the TSC on x86-64).

    For timing a stretch of compiled code on one thread: counts from
    different cores need not agree, and a count may be 0 where the target
    has no counter.
    """

    def codegen(context, builder, signature, args):
        function_type = ir.FunctionType(ir.IntType(64), [])
        counter = cgutils.get_or_insert_function(
            builder.module, function_type, "llvm.readcyclecounter"
        )
        return builder.call(counter, [])

    return types.int64(), codegen
