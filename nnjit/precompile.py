"""Compile the kernels ahead of time: ``python -m nnjit compile`` and :func:`precompile`.

The first ``fit`` in a dtype compiles the kernels, 7-14 s on a 2-core
machine (two processes share the work, see :mod:`nnjit.kernel_compile`);
numba caches the machine code on disk, and later processes load it
in well under a second.  Compiling ahead of time moves that wait out of the
first script or notebook: after installing, into a container image, or into a
CI cache, and before starting several processes at once.

Every network in a dtype runs the same compiled code (see
:mod:`nnjit.epoch`), so training one tiny network compiles all of it.  The
dtypes compile one after the other.  Two programs never compile into the
cache at once: numba's cache is not safe for two writers, so each process
holds a lock while it compiles or loads (see :mod:`nnjit.kernel_cache`), and
the helper a cold compile starts works under its parent's lock, on other
functions.

With ``--profile`` the command also prints the seconds each compiled function
took (see :mod:`nnjit.compile_profile`): point ``NUMBA_CACHE_DIR`` at an
empty directory to see a whole cold compile.  The kernels a helper process
compiled are named, not timed; ``NNJIT_COMPILE_HELPER=0`` compiles all of
them in one process.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnjit import compile_profile
from nnjit.kernel_cache import cache_directory
from nnjit.kernel_calls import NAMES
from nnjit.kernel_compile import ENV_HELPER, HELPED
from nnjit.validation import check_dtype

DTYPES = ("float64", "float32")
SOURCES = {
    "compiled": "compiled",
    "cache": "loaded from the cache",
    "memory": "already loaded",
}


def cache_counts() -> tuple[int, int]:
    """How many times this process compiled the entry point, and loaded it from the cache."""
    from nnjit.epoch import run_epochs

    stats = run_epochs.stats
    return sum(stats.cache_misses.values()), sum(stats.cache_hits.values())


def warm(dtype: str) -> dict[str, Any]:
    """Compile or load the kernels of ``dtype`` in this process.

    Returns
    -------
    dict
        ``seconds`` taken, and ``source``: ``"compiled"``, ``"cache"`` (loaded
        from numba's cache on disk) or ``"memory"`` (this process had them).
    """
    from nnjit.network import Network

    misses, hits = cache_counts()
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    # Wide enough for the first layer to be kept transposed and the second's
    # products to split over its inputs, and with a last batch of two rows,
    # too few for BLAS, so that the optional kernels compile too (see
    # nnjit.kernel_compile.OPTIONAL).
    X = rng.standard_normal((10, 256)).astype(dtype)
    net = Network([256, 512, 256, 2], "relu", "softmax", "cross_entropy", dtype=dtype, seed=0)
    net.fit(X, rng.integers(0, 2, 10), epochs=1, batch_size=4)
    net.predict(X)
    seconds = time.perf_counter() - start
    misses_after, hits_after = cache_counts()
    if misses_after > misses:
        return {"seconds": seconds, "source": "compiled"}
    if hits_after > hits:
        return {"seconds": seconds, "source": "cache"}
    return {"seconds": seconds, "source": "memory"}


def _checked(dtypes: Sequence[Any]) -> list[str]:
    """The dtypes' names, without repeats."""
    names = list(dict.fromkeys(check_dtype(d).name for d in dtypes))
    if not names:
        raise ValueError(f"no dtypes given: choose among {', '.join(DTYPES)}")
    return names


def precompile(dtypes: Sequence[str] = DTYPES) -> dict[str, dict[str, Any]]:
    """Compile the kernels of ``dtypes`` into numba's cache on disk, or load them from it.

    Parameters
    ----------
    dtypes : sequence of {"float64", "float32"}

    Returns
    -------
    dict
        Per dtype, from :func:`warm`: ``seconds`` and ``source``.  The kernels
        are then loaded in this process.

    Raises
    ------
    ValueError
        For a dtype other than float64 and float32, or none.
    """
    return {dtype: warm(dtype) for dtype in _checked(dtypes)}


def _print_profile(functions: list[compile_profile.FunctionTime]) -> None:
    if not functions:
        print(
            "    nothing was compiled, so there is no compile time to show: to profile a"
            " compile, point NUMBA_CACHE_DIR at an empty directory"
        )
        return
    print(textwrap.indent(compile_profile.format_profile(functions), "    "))


def main(argv: list[str] | None = None) -> int:
    """``python -m nnjit compile``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m nnjit compile", description=__doc__)
    parser.add_argument(
        "--dtype",
        default=",".join(DTYPES),
        help="comma-separated dtypes to compile (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print the seconds each compiled function took (see nnjit.compile_profile)",
    )
    args = parser.parse_args(argv)
    try:
        dtypes = _checked([d.strip() for d in args.dtype.split(",")])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"compiling the nnjit kernels for {', '.join(dtypes)}, or loading them")
    start = time.perf_counter()
    for dtype in dtypes:
        with compile_profile.record() as profile:
            result = warm(dtype)
        print(f"  {dtype}: {SOURCES[result['source']]} in {result['seconds']:.1f} s")
        if args.profile:
            _print_profile(profile.functions())
            if result["source"] == "compiled" and np.dtype(dtype) in HELPED:
                helped = ", ".join(NAMES[which] for which in HELPED[np.dtype(dtype)])
                print(
                    f"    meanwhile a helper process compiled {helped}, not timed"
                    f" here ({ENV_HELPER}=0 compiles everything in this process)"
                )
    print(f"done in {time.perf_counter() - start:.1f} s")
    directory = cache_directory()
    if directory:
        print(f"the compiled kernels are cached in {directory}")
    return 0
