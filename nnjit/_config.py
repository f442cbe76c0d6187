"""Compile options shared by every nnjit kernel.

All kernels are compiled through :data:`jit` or :data:`jit_parallel` so that
the options live in one place.

* ``cache=True``: a second process loads machine code from ``__pycache__``
  instead of compiling again.
* ``fastmath`` leaves out ``nnan`` and ``ninf``.  With them LLVM may assume
  that no value is NaN or infinite and fold ``np.isfinite`` to ``True``; the
  divergence guard relies on that test.  ``reassoc`` and ``contract`` let the
  inner loops vectorise and use fused multiply-add.  The summation order that
  results depends on the compiled code only, never on the number of threads.
* :data:`inline` is for small helpers, for the layers between the entry
  points and the kernels, and for loops that have a single caller: numba
  inlines them into their callers, so they get no compiled library of their
  own.  Each library costs compile time, and a caller's library re-optimises
  everything linked into it, so every level of calls re-compiles the kernels
  below it; inlining cut the cold compile of ``fit`` by about a third, and
  inlining the single-caller loops by another tenth.  Inlining everything
  does the opposite: with every kernel inlined the first ``fit`` compiled
  for 109 s.  numba copies an inlined function's IR block by block, each
  copy with every variable of the function, so a large function costs more
  to inline than to compile on its own: ``output_delta`` is not inlined, and
  the batch loop is written out in ``run_epochs`` rather than inlined.
  The entry point calls the kernels through their addresses rather than
  linking them (see :mod:`nnjit.kernel_calls`).
* :data:`jit_native` is for kernels that only compiled code calls, through
  the table: the forward and backward passes, and the loops and BLAS calls
  of :mod:`nnjit.dense` and :mod:`nnjit.transposed`.  They get no wrapper to
  be called from Python (``no_cpython_wrapper``, ``no_cfunc_wrapper``),
  whose unboxing of their many arguments took about 0.3 s of each pass's
  compile, and no reference counting (``_nrt=False``): they allocate
  nothing, and every array they get is a borrowed view (see
  :mod:`nnjit._views`), whose increments and decrements were calls that did
  nothing.  :data:`jit_parallel_native` is the same for the parallel loops,
  which keep reference counting.  Every other kernel, which tests and
  Python code call, keeps its Python wrapper but has no C wrapper, which
  nothing calls.  Without those wrappers, numba's Python functions called
  during a cold compile of W4 on one process (the profile of one compile
  each) went from 66.8 to 65.8 million, and the time spent making wrappers
  from 2.5 to 1.2 s of 42 s under the profiler; eight cold first fits
  alternated with the commit before gave ratios of 0.84-1.07, too noisy
  to show it.
* Integer constants passed to a compiled function are written ``np.int64(0)``,
  not ``0``: numba compiles a separate version for a literal argument.
* ``error_model="numpy"``: a division by zero gives inf or NaN, as in NumPy,
  instead of raising.  The test for zero that raising needs kept every loop
  with a division (the sigmoid, the softmax) from vectorising; the
  divergence guard catches the inf and NaN.
* A kernel that uses ``prange`` gets a function of its own compiled with
  ``parallel=True``: numba's cache key ignores the ``parallel`` option, so the
  same function must never be compiled both ways.
* The thread pool is started when this module is imported.  numba starts it
  when a parallel kernel is compiled or loaded from the cache, but not when a
  serial kernel that calls one is loaded from the cache after being compiled
  against a cached parallel callee: that kernel would then launch its
  parallel loop into a pool that does not exist, and crash.
* :data:`POOL_PID` is the process that started it.  A process forked from it
  (``multiprocessing`` on Linux) must not run a parallel loop: GNU OpenMP
  cannot, and numba terminates the process when it tries.  The kernels then
  run every product on one thread (see ``nnjit.dense.blocks_here``).
"""

from __future__ import annotations

import os

import numba
from numba import njit

FASTMATH = set({"nsz", "arcp", "contract", "reassoc"})

OPTIONS = {"fastmath": FASTMATH, "error_model": "numpy", "nogil": True}

NATIVE = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}

jit = njit(cache=True, no_cfunc_wrapper=True, **OPTIONS)
inline = njit(inline="always", **OPTIONS)
jit_parallel = njit(cache=True, parallel=True, no_cfunc_wrapper=True, **OPTIONS)
jit_native = njit(cache=True, _nrt=False, **NATIVE, **OPTIONS)
jit_parallel_native = njit(cache=True, parallel=True, **NATIVE, **OPTIONS)

numba.get_num_threads()  # starts the thread pool; see the note above
POOL_PID = os.getpid()
