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
* A kernel that uses ``prange`` gets a function of its own compiled with
  ``parallel=True``: numba's cache key ignores the ``parallel`` option, so the
  same function must never be compiled both ways.
"""

from __future__ import annotations

from numba import njit

FASTMATH = set({"nsz", "arcp", "contract", "reassoc"})

jit = njit(cache=True, fastmath=FASTMATH, nogil=True)
jit_parallel = njit(cache=True, fastmath=FASTMATH, nogil=True, parallel=True)

# Rows x columns below which a parallel loop costs more to start than it saves.
PARALLEL_MIN_ELEMENTS = 1 << 15
