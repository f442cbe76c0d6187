"""Compile the kernels ahead of time: ``python -m nnjit compile`` and :func:`precompile`.

The first ``fit`` in a dtype compiles the kernels, 14-23 s on a 2-core
machine; numba caches the machine code on disk, and later processes load it
in well under a second.  Compiling ahead of time moves that wait out of the
first script or notebook: after installing, into a container image, or into a
CI cache.  Each dtype compiles in a process of its own, so on two cores both
dtypes take about the time of one.

Every network in a dtype runs the same compiled code (see
:mod:`nnjit.epoch`), so training one tiny network compiles all of it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from nnjit.dense import usable_cores
from nnjit.validation import check_dtype

DTYPES = ("float64", "float32")
SOURCES = {
    "compiled": "compiled",
    "cache": "loaded from the cache",
    "memory": "already loaded",
}


def warm(dtype: str) -> dict[str, Any]:
    """Compile or load the kernels of ``dtype`` in this process.

    Returns
    -------
    dict
        ``seconds`` taken, and ``source``: ``"compiled"``, ``"cache"`` (loaded
        from numba's cache on disk) or ``"memory"`` (this process had them).
    """
    from nnjit.epoch import run_epochs
    from nnjit.network import Network

    stats = run_epochs.stats
    misses, hits = sum(stats.cache_misses.values()), sum(stats.cache_hits.values())
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 3)).astype(dtype)
    net = Network([3, 4, 2], "relu", "softmax", "cross_entropy", dtype=dtype, seed=0)
    net.fit(X, rng.integers(0, 2, 8), epochs=1, batch_size=4)
    net.predict(X)
    seconds = time.perf_counter() - start
    if sum(stats.cache_misses.values()) > misses:
        return {"seconds": seconds, "source": "compiled"}
    if sum(stats.cache_hits.values()) > hits:
        return {"seconds": seconds, "source": "cache"}
    return {"seconds": seconds, "source": "memory"}


def _checked(dtypes: Sequence[Any], processes: int | None) -> tuple[list[str], int]:
    """The dtypes' names, without repeats, and the number of worker processes to use."""
    names = list(dict.fromkeys(check_dtype(d).name for d in dtypes))
    if not names:
        raise ValueError(f"no dtypes given: choose among {', '.join(DTYPES)}")
    if processes is None:
        processes = usable_cores()
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    return names, min(processes, len(names))


def precompile(
    dtypes: Sequence[str] = DTYPES, processes: int | None = None
) -> dict[str, dict[str, Any]]:
    """Compile the kernels of ``dtypes`` into numba's cache on disk, or check they are there.

    Parameters
    ----------
    dtypes : sequence of {"float64", "float32"}
    processes : int, optional
        Worker processes, one dtype each; by default one per dtype, at most
        one per core.  With 1 (or one dtype) the kernels compile in this
        process.

    Returns
    -------
    dict
        Per dtype, from :func:`warm`: ``seconds`` and ``source``, as the
        worker saw them.  The kernels are then also loaded in this process.

    Raises
    ------
    ValueError
        For a dtype other than float64 and float32, or ``processes < 1``.
    """
    dtypes, processes = _checked(dtypes, processes)
    if processes == 1:
        return {dtype: warm(dtype) for dtype in dtypes}
    # "spawn": the workers must not inherit this process's numba thread pool.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        results = dict(zip(dtypes, pool.map(warm, dtypes), strict=True))
    # Load them here too.  Two workers writing numba's cache index at the same
    # moment could lose one entry; the dtype would then compile again here.
    for dtype in dtypes:
        warm(dtype)
    return results


def cache_directory() -> str | None:
    """Where numba keeps the compiled kernels, if it says."""
    from nnjit.epoch import run_epochs

    # numba has no public accessor for it.
    return getattr(getattr(run_epochs, "_cache", None), "_cache_path", None)


def main(argv: list[str] | None = None) -> int:
    """``python -m nnjit compile``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m nnjit compile", description=__doc__)
    parser.add_argument(
        "--dtype",
        default=",".join(DTYPES),
        help="comma-separated dtypes to compile (default: %(default)s)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="worker processes, one dtype each (default: one per dtype, at most one per core)",
    )
    args = parser.parse_args(argv)
    try:
        dtypes, processes = _checked([d.strip() for d in args.dtype.split(",")], args.processes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    workers = f"{processes} processes" if processes > 1 else "this process"
    print(f"compiling the nnjit kernels for {', '.join(dtypes)} in {workers}, or loading them")
    start = time.perf_counter()
    results = precompile(dtypes, processes)
    for dtype, result in results.items():
        print(f"  {dtype}: {SOURCES[result['source']]} in {result['seconds']:.1f} s")
    print(f"done in {time.perf_counter() - start:.1f} s")
    directory = cache_directory()
    if directory:
        print(f"the compiled kernels are cached in {directory}")
    return 0
