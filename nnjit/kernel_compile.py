"""The kernels' table of addresses, and a cold compile shared by two processes.

The entry point calls the kernels through a table of their addresses (see
:mod:`nnjit.kernel_calls`), so it compiles without them and they compile
without it.  :func:`compile_kernels` uses that on a cold cache: a second
Python process compiles the kernels of :mod:`nnjit.dense` (and, when a call
needs no loops, the loss and the forward pass) into numba's cache while this
one compiles the others, among them the backward pass and the entry point,
then this one loads the helper's kernels from the cache (see
:data:`HELPER_KERNELS`).  On two cores a cold compile of
float64 took 7.3-7.9 s this way, against 13.4-14.2 s in one process (9.5
against 16.1-18.4 s in a busier hour).

The helper runs only when the first kernel this process needs, ``sgd_step``,
is missing from the cache, with two cores or more, a cache directory, a
Python interpreter to run, and ``NNJIT_COMPILE_HELPER`` not ``0``.  If the
cache holds no entry of ``sgd_step`` at all (no index file), the helper
starts before this process compiles anything; otherwise (another dtype's
kernels are there) once compiling ``sgd_step`` showed it missing.  It takes
no lock of its own: it shares its parent's (see :mod:`nnjit.kernel_cache`),
which holds it until it has loaded what the helper compiled, and which stays
held while the helper lives if the parent is killed; the two compile disjoint
sets of functions.  If the helper fails, this
process compiles its kernels itself.

numba's compiler makes millions of Python objects, many of them in
reference cycles, and Python's cyclic garbage collector, run every 700 new
objects by default, spent about a seventh of a cold compile looking through
them.  While kernels compile, this process runs it every
:data:`COMPILE_GC_THRESHOLD` new objects instead, and the helper, which exits
once they are compiled, not at all.  A cold first fit of W4 in float64 took
a median 12.5 s this way against 14.0 s (six each, alternated, in a slow
spell), with a peak memory of 325-355 MB against about 295 MB.  Turning the
collector off here as well, and collecting once after the compile, was no
faster and took about 110 MB more.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing.spawn
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import numba
import numpy as np

from nnjit import kernel_calls
from nnjit.activations import activate_rows, derivative_rows
from nnjit.contention import usable_cores
from nnjit.dense import (
    _forward_blas,
    _forward_rows,
    _input_grad_blas,
    _input_grad_rows,
    _outer_blas,
    _outer_rows,
    _parallel_blocks,
    _parallel_inputs,
    _sum_blocks,
    split_blocks,
)
from nnjit.kernel_cache import cache_directory, held_locks
from nnjit.kernel_calls import (
    FORWARD,
    FORWARD_BLAS,
    FORWARD_ROWS,
    INPUT_GRAD_BLAS,
    INPUT_GRAD_ROWS,
    NAMES,
    OUTER_BLAS,
    OUTER_ROWS,
    OUTPUT_DELTA,
    PARALLEL_BLOCKS,
    PARALLEL_INPUTS,
    PARALLEL_TRANSPOSED,
    SGD_STEP,
    SPLIT_BLOCKS,
    SUM_BLOCKS,
    TRANSPOSED_ROWS,
)
from nnjit.losses import output_delta
from nnjit.propagation import backward, forward
from nnjit.sgd import sgd_step
from nnjit.transposed import parallel_transposed, transposed_rows

# The compiled function in each slot of the table.
KERNELS = (
    _forward_rows,
    _input_grad_rows,
    _outer_rows,
    _parallel_blocks,
    sgd_step,
    activate_rows,
    derivative_rows,
    output_delta,
    split_blocks,
    _sum_blocks,
    _parallel_inputs,
    transposed_rows,
    parallel_transposed,
    forward,
    backward,
    _forward_blas,
    _input_grad_blas,
    _outer_blas,
)
# The kernels that compile only for the calls that need them: the loops of
# the products too small for BLAS (see nnjit.dense.use_blas), the products
# split over their inputs (see nnjit.dense.split_blocks), and the first layer
# kept transposed and its split over the cores (see nnjit.transposed).  Every
# other call leaves their slots at 0 and never reads them.
LOOPS = (FORWARD_ROWS, INPUT_GRAD_ROWS, OUTER_ROWS)
OPTIONAL = (*LOOPS, PARALLEL_INPUTS, TRANSPOSED_ROWS, PARALLEL_TRANSPOSED)
# What the helper compiles: the BLAS kernels of nnjit.dense and its parallel
# loops, which share nothing but themselves with the rest (_parallel_blocks
# calls sgd_step through the table).  Of the optional kernels it takes the
# loops if needed (about 5 s of compile on one process), and one more (see
# _helper_kernels): _parallel_inputs, about 2 s, where a product may be split
# over its inputs (see kernel_table), or else transposed_rows, about 1 s,
# where the first layer is kept transposed (with it here, W3's cold first
# fit took a median 11.0 s against 12.2 s, 12 alternated fits; with both
# optional kernels here, `python -m nnjit compile` took 12.3-12.6 s against
# 11.2-12.6 s).  Without the loops it takes the kernels of RELIEF instead,
# the loss and the forward pass.  Cold first fits of W4 (2,000 samples, both
# dtypes), once the loops had become optional: with both kernels in this
# process, it ended about 4 s after the helper; with the forward pass and
# the activations' kernel in the helper, 0.1-1.5 s after it (six fits); with
# the forward pass and the loss there, within 0.1 s of it in four of six
# fits (0.44 s at most), at 7.1-8.6 s from the start of the process.  This
# process compiles the rest, among them the backward pass and the entry point.
HELPER_KERNELS = (
    FORWARD_BLAS,
    INPUT_GRAD_BLAS,
    OUTER_BLAS,
    PARALLEL_BLOCKS,
    SPLIT_BLOCKS,
    SUM_BLOCKS,
)
RELIEF = (OUTPUT_DELTA, FORWARD)
FIRST = SGD_STEP
ENV_HELPER = "NNJIT_COMPILE_HELPER"
# Seconds to wait for the helper, which took 6-8: one stuck on something else
# than compiling must not hold up the process, which then compiles its kernels.
HELPER_TIMEOUT = 300.0

# New objects between two runs of the garbage collector while kernels compile.
COMPILE_GC_THRESHOLD = 100_000

# The table of each dtype, once this process has it.
_tables: dict[np.dtype, np.ndarray] = {}
# The dtypes whose kernels a helper compiled in this process, and which.
HELPED: dict[np.dtype, tuple[int, ...]] = {}


@contextlib.contextmanager
def collector_relaxed() -> Iterator[None]:
    """Run Python's garbage collector less often in the block, which compiles kernels.

    See the module's notes; the collector's thresholds are restored after it.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(COMPILE_GC_THRESHOLD, thresholds[0]), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _signature(which: int, dtype: np.dtype) -> numba.core.typing.Signature:
    return kernel_calls.signature(which, numba.from_dtype(dtype))


def _result(which: int, dtype: np.dtype) -> numba.core.compiler.CompileResult:
    """Kernel ``which`` compiled for ``dtype``, or loaded.

    It is compiled for its argument types alone, as a call from compiled code
    compiles it: numba's cache keys an entry by the signature it was asked
    for, so a signature with its return type would be a second entry, and a
    second compile, of a kernel that another kernel also calls.
    """
    dispatcher = KERNELS[which]
    expected = _signature(which, dtype)
    dispatcher.compile(expected.args)
    result = dispatcher.overloads[expected.args]
    if result.signature.return_type != expected.return_type:
        raise TypeError(f"kernel {NAMES[which]} returns {result.signature.return_type}")
    return result


def _compiled(which: int, dtype: np.dtype) -> bool:
    """Compile or load kernel ``which`` for ``dtype``; whether it had to be compiled."""
    dispatcher = KERNELS[which]
    misses = sum(dispatcher.stats.cache_misses.values())
    _result(which, dtype)
    return sum(dispatcher.stats.cache_misses.values()) > misses


def _never_cached(which: int) -> bool:
    """Whether numba's cache has no index file for kernel ``which``: no dtype of it is cached."""
    try:
        index = KERNELS[which]._cache._cache_file._index_path
    except AttributeError:  # numba's internals changed: tell by compiling it
        return False
    return not os.path.exists(index)


def _address(which: int, dtype: np.dtype) -> int:
    result = _result(which, dtype)
    return result.library.get_pointer_to_function(result.fndesc.llvm_func_name)


def kernel_table(dtype: np.dtype, needed: tuple[int, ...] = OPTIONAL) -> np.ndarray:
    """The address of every kernel for ``dtype``, compiling or loading them if needed.

    Of the kernels of :data:`OPTIONAL`, only those in ``needed`` are sure to
    be in the table; the others' slots may hold 0.  Call it holding the
    cache's lock unless the kernels are loaded.

    Returns
    -------
    ndarray of int64
        One address per slot of :mod:`nnjit.kernel_calls`.
    """
    dtype = np.dtype(dtype)
    table = _tables.get(dtype)
    if table is not None and all(table[which] for which in needed):
        return table
    with collector_relaxed():
        if table is None:
            table = np.zeros(len(KERNELS), np.int64)
            for which in range(len(KERNELS)):
                if which not in OPTIONAL:
                    table[which] = _address(which, dtype)
            _tables[dtype] = table
        for which in needed:
            if table[which] == 0:
                table[which] = _address(which, dtype)
    return table


def _helper_kernels(needed: tuple[int, ...]) -> tuple[int, ...]:
    """What a helper compiles: :data:`HELPER_KERNELS`, the loops or :data:`RELIEF`, and one more.

    The loops if ``needed``, else the kernels of :data:`RELIEF`; then the
    split's kernel, about 2 s, if ``needed``, else the transposed layer's,
    about 1 s, if ``needed``.  This process compiles the other optional
    kernels it needs (see :data:`HELPER_KERNELS`).
    """
    loops = LOOPS if set(LOOPS) <= set(needed) else RELIEF
    for which in (PARALLEL_INPUTS, TRANSPOSED_ROWS):
        if which in needed:
            return (*HELPER_KERNELS, *loops, which)
    return (*HELPER_KERNELS, *loops)


def _python() -> str:
    """The interpreter for the helper: multiprocessing's, which an embedding program can set."""
    return os.fsdecode(multiprocessing.spawn.get_executable() or "")


def helper_allowed() -> bool:
    """Whether a cold compile may start a helper process (see the module's notes).

    Not in a program that embeds Python, whose executable is not a Python
    interpreter (unless it told :mod:`multiprocessing` where one is).
    """
    python = os.path.basename(_python()).lower()
    if os.environ.get(ENV_HELPER, "1") == "0" or not python.startswith("python"):
        return False
    if cache_directory() is None:  # nowhere to hand the kernels over
        return False
    return usable_cores() >= 2


def _start_helper(dtype: np.dtype, kernels: tuple[int, ...]) -> subprocess.Popen | None:
    """Start the helper on this copy of nnjit, whatever put it on this process's path."""
    command = [_python(), "-m", __name__, dtype.name, *(NAMES[w] for w in kernels)]
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = [package_parent, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    # PYTHONSAFEPATH: ``-m`` would put the working directory first on the
    # helper's path, and a copy of nnjit there would compile instead of this
    # one, into entries this process never reads.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), "PYTHONSAFEPATH": "1"}
    try:
        return subprocess.Popen(
            command,
            env=env,
            pass_fds=held_locks(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None


def _finished(process: subprocess.Popen) -> int | None:
    """The helper's exit status, or None past :data:`HELPER_TIMEOUT` (it is then killed)."""
    try:
        return process.wait(timeout=HELPER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None


def compile_kernels(
    dtype: np.dtype,
    entry_point: Callable[[], object],
    helper: bool = True,
    needed: tuple[int, ...] = OPTIONAL,
) -> np.ndarray:
    """Compile or load the kernels of ``dtype`` and, with ``entry_point()``, the entry point.

    Call it holding the cache's lock.  With ``helper``, if the first kernel
    has to be compiled and :func:`helper_allowed`, a second process compiles
    the kernels of :data:`HELPER_KERNELS` meanwhile.  Of the kernels of
    :data:`OPTIONAL`, those not ``needed`` are left out, as in
    :func:`kernel_table`.

    Returns
    -------
    ndarray of int64
        The table of :func:`kernel_table`.
    """
    dtype = np.dtype(dtype)
    process = None
    helped = _helper_kernels(needed)
    with collector_relaxed():
        allowed = helper and helper_allowed()
        if allowed and _never_cached(FIRST):
            process = _start_helper(dtype, helped)
        if _compiled(FIRST, dtype) and allowed and process is None:
            process = _start_helper(dtype, helped)
        try:
            for which in range(len(KERNELS)):
                wanted = which in needed or which not in OPTIONAL
                if wanted and (process is None or which not in helped):
                    _compiled(which, dtype)
            entry_point()
            if process is not None and _finished(process) == 0:
                HELPED[dtype] = helped
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        # The helper's kernels come from the cache now, or compile here if it failed.
        return kernel_table(dtype, needed)


def main(argv: list[str]) -> int:
    """The helper: ``python -m nnjit.kernel_compile DTYPE NAME...`` compiles those kernels.

    With the garbage collector off: the process exits once they are compiled.
    """
    gc.disable()
    dtype = np.dtype(argv[0])
    for name in argv[1:]:
        _compiled(NAMES.index(name), dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
