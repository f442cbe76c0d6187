"""2-D views into flat buffers, and copies between them, for compiled code.

Every layer works on 2-D views of the flat parameter, gradient and activation
buffers.  ``flat[a:b].reshape(...)`` would do, but numba compiles an error
path with string formatting for each reshape, which costs seconds of compile
time per dtype; the callers here always pass valid bounds (the layout is
built and checked in Python), so :func:`view2d` builds the view directly.
For the same reason copies go through :func:`copy_vector` and
:func:`copy_matrix` rather than ``a[:] = b``, whose shape check compiles a
formatted error message at every use.
"""

from __future__ import annotations

from numba import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from nnjit._config import jit


@intrinsic
def view2d(typingctx, flat, start, rows, cols):
    """C-contiguous ``(rows, cols)`` view of ``flat[start : start + rows * cols]``.

    No bounds are checked: the caller guarantees them.
    """
    result = types.Array(flat.dtype, 2, "C")
    signature = result(flat, types.intp, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        flat_value, start_value, rows_value, cols_value = args
        source = make_array(sig.args[0])(context, builder, flat_value)
        view = make_array(result)(context, builder)
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(flat.dtype))
        )
        populate_array(
            view,
            data=builder.gep(source.data, [start_value]),
            shape=[rows_value, cols_value],
            strides=[builder.mul(cols_value, itemsize), itemsize],
            itemsize=itemsize,
            meminfo=source.meminfo,
            parent=source.parent,
        )
        return impl_ret_borrowed(context, builder, result, view._getvalue())

    return signature, codegen


@jit
def copy_vector(dst, src):
    """``dst[:] = src`` for 1-D arrays of the same length (not checked)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@jit
def copy_matrix(dst, src):
    """``dst[:] = src`` for 2-D arrays of the same shape (not checked)."""
    for n in range(dst.shape[0]):
        copy_vector(dst[n], src[n])
