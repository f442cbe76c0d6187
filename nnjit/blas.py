"""BLAS ``?gemm`` callable from compiled code, and its thread pool.

Compiled code reaches scipy's BLAS through numba's own helper
``numba_xxgemm``, an external symbol resolved by name, so kernels that use it
can still be cached on disk (a ctypes function pointer would not be).

nnjit parallelises matrix products itself, over a fixed number of row blocks
chosen from the shapes alone, each block one single-threaded ``gemm`` call.
OpenBLAS's own threading splits a product differently for different thread
counts, which changes the rounding; :func:`single_threaded` therefore pins
the BLAS library the kernels call to one thread while they run, and the
results stay bit-identical whatever the number of threads.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from numba import types
from numba.extending import overload
from numba.np.linalg import ensure_blas

if TYPE_CHECKING:
    from threadpoolctl import LibController

ensure_blas()

NOTRANS = 78  # ord("N")
TRANS = 84  # ord("T")


def _gemm_signature(dtype: types.Type) -> types.Signature:
    pointer = types.CPointer(dtype)
    size = types.intp
    return types.intc(
        types.char, types.char, types.char,  # kind, transa, transb
        size, size, size,  # m, n, k
        pointer, pointer, size,  # alpha, a, lda
        pointer, size,  # b, ldb
        pointer, pointer, size,  # beta, c, ldc
    )  # fmt: skip


def gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``c <- alpha op(a) op(b) + beta c``; compiled code only.

    ``alpha`` and ``beta`` are arrays whose first element is the scalar; ``a``,
    ``b`` and ``c`` are arrays whose first element is where the matrix starts.
    """
    raise NotImplementedError("blas.gemm is callable from compiled code only")


@overload(gemm)
def _gemm_impl(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    function = types.ExternalFunction("numba_xxgemm", _gemm_signature(a.dtype))
    kind = ord("d") if a.dtype == types.float64 else ord("s")

    def impl(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        function(
            kind, transa, transb, m, n, k,
            alpha.ctypes, a.ctypes, lda, b.ctypes, ldb, beta.ctypes, c.ctypes, ldc,
        )  # fmt: skip

    return impl


# The names ``?gemm`` may have in a BLAS library: scipy's own OpenBLAS builds
# prefix them, the 64-bit-integer ones also suffix them, others do neither.
GEMM_SYMBOLS = ("scipy_dgemm_", "dgemm_", "scipy_dgemm_64_", "dgemm_64_")

_controller = None
_kernel_controller = None


def _blas_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def _address(library: ctypes.CDLL, name: str) -> int | None:
    try:
        return ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    except AttributeError:
        return None


def kernel_blas_paths(libraries: list, bindings: str) -> list[str]:
    """The files of those of ``libraries`` that define the ``gemm`` that ``bindings`` calls.

    ``libraries`` are threadpoolctl's controllers of the loaded BLAS
    libraries, ``bindings`` the file of scipy's ``cython_blas``, whose
    ``dgemm`` the kernels call: a name looked up through it is found in the
    library it was linked against.  All of ``libraries`` if none defines it,
    or if the lookups fail.
    """
    every = [lib.filepath for lib in libraries]
    try:
        linked = ctypes.CDLL(bindings)
    except OSError:
        return every
    for name in GEMM_SYMBOLS:
        address = _address(linked, name)
        if address is None:
            continue
        found = [lib.filepath for lib in libraries if _address(lib.dynlib, name) == address]
        if found:
            return found
    return every


def _kernel_blas():
    """threadpoolctl's controller of the BLAS libraries that the kernels call.

    Only these need one thread while the kernels run.  NumPy's own BLAS is
    usually another library (the wheels of NumPy and scipy each bring their
    OpenBLAS), which nnjit's compiled code never calls.
    """
    global _kernel_controller
    if _kernel_controller is None:
        import scipy.linalg.cython_blas

        controller = _blas_controller()
        paths = kernel_blas_paths(controller.lib_controllers, scipy.linalg.cython_blas.__file__)
        _kernel_controller = controller.select(filepath=paths)
    return _kernel_controller


def stop_waiting_threads() -> None:
    """Stop the worker threads OpenBLAS keeps spinning after a multi-threaded call.

    For about a tenth of a second after each multi-threaded product, OpenBLAS
    keeps its workers busy-waiting for the next one.  NumPy's matrix products
    leave them behind, and on a machine with few cores they take the cores
    numba's threads need: W4 right after a NumPy matrix product trained 1.5
    times slower.  ``blas_thread_shutdown_`` is what OpenBLAS itself calls
    before a fork; the next multi-threaded call starts the workers again.

    Only the libraries the kernels do not call are stopped.  Setting the
    thread count of a stopped OpenBLAS starts its workers again, and the
    library the kernels call has its count set twice in every fit: stopped
    too, its new workers were joined again at the start of the next fit,
    which took 0.2-4 ms while numba's threads held the cores.  Fits of W4's
    first 200 samples, back to back, took a median 6.2 ms against 1.5 ms
    without it (float32, 41 fits in each of 6 alternated processes).  A
    library that the kernels call and NumPy too (one BLAS for both) is
    therefore not stopped.

    It must not run while another thread uses BLAS, nor in two threads at
    once: :func:`single_threaded` calls it only in a process with one Python
    thread, and under its lock.
    """
    pinned = {library.filepath for library in _kernel_blas().lib_controllers}
    for library in _blas_controller().lib_controllers:
        if library.internal_api == "openblas" and library.filepath not in pinned:
            shutdown = getattr(library.dynlib, "blas_thread_shutdown_", None)
            if shutdown is not None:
                shutdown()


# The affixes of OpenBLAS's own functions: scipy's builds prefix them, the
# 64-bit-integer ones also suffix them.
OPENBLAS_AFFIXES = tuple(
    (prefix, suffix) for prefix in ("", "scipy_") for suffix in ("", "64_", "_64")
)


# A library's functions that get and set its thread count.
ThreadCount = tuple[Callable[[], Any], Callable[[int], Any]]


def thread_count_functions(library: LibController) -> ThreadCount:
    """Functions that get and set ``library``'s thread count.

    For an OpenBLAS with its own threads, its ``openblas_get_num_threads``
    and ``openblas_set_num_threads``, called directly; for any other
    library, threadpoolctl's controller.  threadpoolctl 3.8 lets only one
    thread set the count of such an OpenBLAS, the first that set it, and
    silently ignores the others until that one is cleared: after a fit in
    the main thread, a fit in another thread then ran BLAS on two threads,
    and its results differed from the main thread's in the last bit.  Its
    controller also looks up the function by name at every call: an empty
    block of :func:`single_threaded` took 14-17 µs through it and 4.5-5 µs
    with the functions called directly (three processes each, alternated),
    against 90-120 µs for a prediction of ten samples through W3's network.
    """
    if library.internal_api == "openblas" and getattr(library, "threading_layer", "") != "openmp":
        for prefix, suffix in OPENBLAS_AFFIXES:
            try:
                # Indexing makes new function objects: threadpoolctl's stay as they are.
                get = library.dynlib[f"{prefix}openblas_get_num_threads{suffix}"]
                set_ = library.dynlib[f"{prefix}openblas_set_num_threads{suffix}"]
            except AttributeError:
                continue
            get.restype, get.argtypes = ctypes.c_int, []
            set_.restype, set_.argtypes = None, [ctypes.c_int]
            return get, set_
    return library.get_num_threads, library.set_num_threads


_counters: list[ThreadCount] | None = None


def _kernel_thread_counts() -> list[ThreadCount]:
    """:func:`thread_count_functions` of each library the kernels call."""
    global _counters
    if _counters is None:
        _counters = [thread_count_functions(lib) for lib in _kernel_blas().lib_controllers]
    return _counters


# The blocks of single_threaded() open now, in every thread, and the thread
# counts the first of them found: (setter, count) pairs.
# Guarded by _sessions_lock.
_sessions_lock = threading.Lock()
_sessions = 0
_found: list[tuple[Callable[[int], Any], int]] = []


def _forget_sessions() -> None:
    """In a forked process: the parent's open blocks are not its own.

    The lock may also have been held, at the fork, by a thread that the
    child does not have, and would never be released.
    """
    global _sessions_lock, _sessions, _found
    _sessions_lock = threading.Lock()
    _sessions = 0
    _found = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_sessions)


def _limit_to_one(counters: list[ThreadCount]) -> list[tuple[Callable[[int], Any], int]]:
    """Set each library to one thread; the (setter, count) pairs that put back its count."""
    found = []
    for get, set_ in counters:
        count = get()
        if count is not None:
            found.append((set_, count))
            set_(1)
    return found


def single_threaded(stop_waiting: bool = False) -> SingleThreaded:
    """Limit the BLAS library that the kernels call to one thread inside the block.

    The others, NumPy's own among them when it brings its own, keep their
    thread counts (see :func:`kernel_blas_paths`).

    With ``stop_waiting``, also stop the workers left spinning (see
    :func:`stop_waiting_threads`), once the limit is set: setting a thread
    count on a stopped OpenBLAS starts its workers again.  Only in a process
    with no other Python thread, which might be running a product on them.

    Blocks may overlap, in one thread or in several (two fits in two
    threads): the first to open sets the limit and the last to close puts
    back the thread counts the first found, all under one lock.  Without it
    two threads stopping the workers at once both joined the same worker
    thread in ``blas_thread_shutdown_`` and hung the process; and the first
    fit to end put back two threads while the other still ran, then the
    other's end left BLAS at one thread for the rest of the process.
    """
    return SingleThreaded(stop_waiting)


class SingleThreaded:
    """The block of :func:`single_threaded`.

    A class rather than a generator: ``contextlib.contextmanager`` added
    about 1.5 µs to each block, which small predictions open every call.
    """

    __slots__ = ("stop_waiting",)

    def __init__(self, stop_waiting: bool = False) -> None:
        self.stop_waiting = stop_waiting

    def __enter__(self) -> None:
        global _sessions, _found
        with _sessions_lock:
            if _sessions == 0:
                _found = _limit_to_one(_kernel_thread_counts())
            _sessions += 1
        # Stopping the workers joins them: a product that another thread is
        # running on them then never ends (a background thread's NumPy
        # products hung the process).  Only the process's only thread may.
        if self.stop_waiting and threading.active_count() == 1:
            try:
                with _sessions_lock:
                    stop_waiting_threads()
            except BaseException:
                self.__exit__(None, None, None)
                raise

    def __exit__(self, *exc_info: object) -> None:
        global _sessions, _found
        with _sessions_lock:
            _sessions -= 1
            if _sessions == 0:
                for set_, count in _found:
                    set_(count)
                _found = []
