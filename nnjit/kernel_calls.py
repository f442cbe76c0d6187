"""Calls from the entry point to the kernels, through a table of addresses.

numba links the machine code of every compiled function a function calls into
that function's own library and optimises it there again, so the entry point
(:func:`nnjit.epoch.run_epochs`) would compile every kernel a second time, and
could only be compiled after all of them.  It calls them instead through the
addresses in ``kernels``, an array that :mod:`nnjit.kernel_compile` fills
once per process and dtype: the entry point and the kernels then compile
apart, each once, and can compile at the same time in two processes.

Each kernel has one signature per dtype, below.  :func:`call` checks the
types of every call against it when the calling function compiles, so a call
with the wrong arguments is a typing error, never a jump into machine code
that reads them wrongly.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from nnjit.sgd import SGDConfig
from nnjit.workspace import Workspace

# Each kernel's slot in the table.
(
    FORWARD_ROWS,
    INPUT_GRAD_ROWS,
    OUTER_ROWS,
    PARALLEL_BLOCKS,
    SGD_STEP,
    ACTIVATE_ROWS,
    DERIVATIVE_ROWS,
    OUTPUT_DELTA,
    SPLIT_BLOCKS,
    SUM_BLOCKS,
    PARALLEL_INPUTS,
    TRANSPOSED_ROWS,
    PARALLEL_TRANSPOSED,
    FORWARD,
    BACKWARD,
    FORWARD_BLAS,
    INPUT_GRAD_BLAS,
    OUTER_BLAS,
) = range(18)
# The numba type of the table.
TABLE_TYPE = types.Array(types.int64, 1, "C")
NAMES = (
    "forward_rows",
    "input_grad_rows",
    "outer_rows",
    "parallel_blocks",
    "sgd_step",
    "activate_rows",
    "derivative_rows",
    "output_delta",
    "split_blocks",
    "sum_blocks",
    "parallel_inputs",
    "transposed_rows",
    "parallel_transposed",
    "forward",
    "backward",
    "forward_blas",
    "input_grad_blas",
    "outer_blas",
)


def signature(which: int, dtype: types.Float) -> types.Signature:
    """The signature of kernel ``which`` for floats of ``dtype``, a numba type."""
    matrix = types.Array(dtype, 2, "C")
    vector = types.Array(dtype, 1, "C")
    i = types.int64
    rows = types.Array(i, 1, "C")
    losses = types.Array(types.float64, 1, "C")
    cfg = types.NamedTuple((dtype, dtype, types.boolean, dtype), SGDConfig)
    layers = types.Array(i, 2, "C", readonly=True)  # nnjit.layout.Layout.table
    work = types.NamedTuple(
        (matrix, matrix, vector, vector, vector, losses, rows, vector, vector), Workspace
    )
    flag = types.boolean
    pending = types.Tuple((flag, rows, matrix))
    optimizer = types.Tuple((cfg, vector, vector))
    return (
        types.none(matrix, matrix, vector, matrix, i, vector, i, i, i),  # FORWARD_ROWS
        types.none(matrix, matrix, matrix, matrix, i, vector, i, i, i, i),  # INPUT_GRAD_ROWS
        types.none(matrix, matrix, matrix, vector, i, i, i, i),  # OUTER_ROWS
        types.none(
            i, types.UniTuple(matrix, 5), vector, i, vector, types.UniTuple(i, 2), i, rows
        ),  # PARALLEL_BLOCKS
        types.none(vector, vector, vector, cfg, dtype, i, i),  # SGD_STEP
        types.none(matrix, i, i, i),  # ACTIVATE_ROWS
        types.none(matrix, matrix, i, i, i),  # DERIVATIVE_ROWS
        types.float64(i, i, matrix, matrix, matrix, matrix, losses, rows),  # OUTPUT_DELTA
        i(i, i, i, vector, flag),  # SPLIT_BLOCKS
        types.none(matrix, vector, matrix, i, i),  # SUM_BLOCKS
        types.none(i, types.UniTuple(matrix, 5), vector, i, vector, i, i, rows),  # PARALLEL_INPUTS
        types.none(
            i, matrix, rows, matrix, vector, matrix, i, vector, i, i, i, i
        ),  # TRANSPOSED_ROWS
        types.none(
            TABLE_TYPE,
            i,
            matrix,
            rows,
            matrix,
            vector,
            matrix,
            i,
            vector,
            i,
            i,
            matrix,
            rows,
            matrix,
        ),  # PARALLEL_TRANSPOSED
        flag(
            TABLE_TYPE, vector, layers, matrix, work, flag, matrix, rows, flag, pending
        ),  # FORWARD
        i(
            TABLE_TYPE, vector, layers, matrix, matrix, rows, work, optimizer, flag, flag
        ),  # BACKWARD
        types.none(matrix, matrix, vector, matrix, i, vector, i, i, i),  # FORWARD_BLAS
        types.none(matrix, matrix, matrix, matrix, i, vector, i, i, i),  # INPUT_GRAD_BLAS
        types.none(matrix, matrix, matrix, vector, i, i, i, i),  # OUTER_BLAS
    )[which]


def _float_dtype(args: types.BaseTuple) -> types.Float | None:
    for arg in args:
        if isinstance(arg, types.Array) and isinstance(arg.dtype, types.Float):
            return arg.dtype
    return None


@intrinsic
def call(typingctx, kernels, which, args):
    """``kernel(*args)`` for the kernel in slot ``which`` of the table ``kernels``.

    ``which`` is one of the constants above; ``args`` is a tuple of exactly
    the types of that kernel's signature for the dtype of its arrays.
    """
    if not isinstance(which, types.IntegerLiteral):
        return None
    index = which.literal_value
    dtype = _float_dtype(args)
    expected = signature(index, dtype) if dtype is not None else None
    given = tuple(types.unliteral(arg) for arg in args)
    if expected is None or given != expected.args:
        raise TypingError(
            f"kernel {NAMES[index]} takes {expected.args if expected else '(...)'}, "
            f"called with {given}"
        )

    def codegen(context, builder, sig, llargs):
        table = context.make_array(sig.args[0])(context, builder, llargs[0])
        slot = cgutils.gep(builder, table.data, index)
        function_type = context.call_conv.get_function_type(expected.return_type, expected.args)
        function = builder.inttoptr(builder.load(slot), function_type.as_pointer())
        values = [builder.extract_value(llargs[2], n) for n in range(len(expected.args))]
        status, result = context.call_conv.call_function(
            builder, function, expected.return_type, expected.args, values
        )
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return result

    return expected.return_type(kernels, which, args), codegen
