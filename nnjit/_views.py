"""Views into arrays, and copies between them, for compiled code.

Every layer works on 2-D views of the flat parameter, gradient and activation
buffers.  ``flat[a:b].reshape(...)`` would do, but numba compiles an error
path with string formatting for each reshape, which costs seconds of compile
time per dtype; the callers here always pass valid bounds (the layout is
built and checked in Python), so :func:`view2d` builds the view directly.
For the same reason copies go through :func:`copy_vector` and
:func:`copy_matrix` rather than ``a[:] = b``, whose shape check compiles a
formatted error message at every use.

The views of this module are *borrowed*: they hold no reference to the
array they look into.  A numba view normally does, and taking one costs an
atomic increment and, when it is dropped, an atomic decrement; the loops over
the rows of small layers spent about 15% of their time on them.  A borrowed
view is only valid while its array is, so these views never leave the
compiled call that made them.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from nnjit._config import inline


@intrinsic
def view2d(typingctx, flat, start, rows, cols):
    """Borrowed C-contiguous ``(rows, cols)`` view of ``flat[start : start + rows * cols]``.

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
            meminfo=None,
        )
        return view._getvalue()

    return signature, codegen


@intrinsic
def row(typingctx, matrix, index):
    """Borrowed 1-D view of row ``index`` of a 2-D array; the index is not checked."""
    result = types.Array(matrix.dtype, 1, "C" if matrix.layout == "C" else "A")
    signature = result(matrix, types.intp)

    def codegen(context, builder, sig, args):
        matrix_value, index_value = args
        source = make_array(sig.args[0])(context, builder, matrix_value)
        shape = cgutils.unpack_tuple(builder, source.shape, 2)
        strides = cgutils.unpack_tuple(builder, source.strides, 2)
        start = builder.gep(
            builder.bitcast(source.data, cgutils.voidptr_t),
            [builder.mul(index_value, strides[0])],
        )
        view = make_array(result)(context, builder)
        populate_array(
            view,
            data=builder.bitcast(start, source.data.type),
            shape=[shape[1]],
            strides=[strides[1]],
            itemsize=source.itemsize,
            meminfo=None,
        )
        return view._getvalue()

    return signature, codegen


@intrinsic
def as_vector(typingctx, matrix):
    """Borrowed 1-D view of every element of a C-contiguous 2-D array, in order.

    A column of a one-column matrix is then known to be contiguous, and the
    loops over it vectorise: through ``M[i, 0]`` the stride is the number of
    columns, which LLVM only knows at run time.
    """
    if not (isinstance(matrix, types.Array) and matrix.ndim == 2 and matrix.layout == "C"):
        return None
    result = types.Array(matrix.dtype, 1, "C")
    signature = result(matrix)

    def codegen(context, builder, sig, args):
        source = make_array(sig.args[0])(context, builder, args[0])
        shape = cgutils.unpack_tuple(builder, source.shape, 2)
        view = make_array(result)(context, builder)
        populate_array(
            view,
            data=source.data,
            shape=[builder.mul(shape[0], shape[1])],
            strides=[source.itemsize],
            itemsize=source.itemsize,
            meminfo=None,
        )
        return view._getvalue()

    return signature, codegen


def _borrow_value(context, builder, typ, value):
    if isinstance(typ, types.Array):
        source = make_array(typ)(context, builder, value)
        view = make_array(typ)(context, builder)
        populate_array(
            view,
            data=source.data,
            shape=source.shape,
            strides=source.strides,
            itemsize=source.itemsize,
            meminfo=None,
        )
        return view._getvalue()
    if isinstance(typ, types.BaseTuple):
        for index, member in enumerate(typ):
            item = builder.extract_value(value, index)
            item = _borrow_value(context, builder, member, item)
            value = builder.insert_value(value, item, index)
    return value


@intrinsic
def borrow(typingctx, value):
    """``value`` with every array in it, inside tuples too, made a borrowed view.

    The compiled entry points borrow their arguments once, so that nothing
    below them counts references; the arguments live for the whole call.
    """

    def codegen(context, builder, sig, args):
        return _borrow_value(context, builder, sig.args[0], args[0])

    return value(value), codegen


@inline
def segment(flat, start, size):
    """Borrowed view of ``flat[start : start + size]``; the bounds are not checked."""
    return row(view2d(flat, start, 1, size), 0)


@inline
def copy_vector(dst, src):
    """``dst[:] = src`` for 1-D arrays of the same length (not checked)."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


@inline
def copy_matrix(dst, src):
    """``dst[:] = src`` for 2-D arrays of the same shape (not checked)."""
    for n in range(dst.shape[0]):
        copy_vector(row(dst, n), row(src, n))
