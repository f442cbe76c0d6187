"""Parameters, seeded data and warm-up shared by the benchmark modules.

asv runs ``setup`` again before every sample, so what is costly to build --
the data, the first call of the compiled kernels -- is made once per process
and kept here.  Only ever append to this module: the benchmarks' identities
depend on it.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import threadpool_limits

from nnjit import workloads as wl
from nnjit.network import Network

QUICK = wl.quick_mode()
WORKLOADS = list(wl.WORKLOAD_IDS)
CLASSIFIERS = ["W3", "W4", "W5", "W6"]
BACKENDS = ["numba", "numpy"]
DTYPES = ["float64", "float32"]
# Every benchmark runs in both dtypes; a quick run (CI) keeps both only for
# whole epochs, so that it stays within a few minutes.
DTYPES_UNLESS_QUICK = ["float64"] if QUICK else DTYPES

# Seconds before asv gives up on one benchmark; a cold compile takes ~30 s.
TIMEOUT = 600


def workload(workload_id: str) -> wl.Workload:
    """The standard workload, shrunk when ``NNJIT_BENCH_QUICK`` is set."""
    return wl.get(workload_id)


@functools.cache
def data(workload_id: str, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """The workload's seeded training data (shared: never modify it)."""
    return wl.make_data(workload(workload_id), dtype)


@functools.cache
def warm_up(workload_id: str, dtype: str, backend: str) -> None:
    """One untimed training run on a shrunk copy of the workload, once per process.

    It compiles (or loads from numba's cache) every kernel ``fit`` uses in
    this dtype.
    """
    small = workload(workload_id).shrink()
    X, y = wl.make_data(small, dtype)
    wl.make_network(small, dtype, backend).fit(X, y, **small.fit_kwargs())


def network(workload_id: str, dtype: str, backend: str) -> Network:
    """A freshly initialised network for the workload, its kernels warmed up."""
    warm_up(workload_id, dtype, backend)
    return wl.make_network(workload(workload_id), dtype, backend)


def pin_blas(backend: str) -> threadpool_limits | None:
    """Pin BLAS to one thread for the compiled kernels.

    Every BLAS library: ``fit`` pins only the one the kernels call (see
    :func:`nnjit.blas.single_threaded`), which is among them.

    Returns the limiter whose ``restore_original_limits()`` undoes it, or None.
    """
    return threadpool_limits(1, user_api="blas") if backend == "numba" else None


class TrainingRun:
    """Base of the benchmarks that train a workload's network once per sample.

    ``setup`` leaves the data in ``X``, ``y``, a fresh warmed-up network in
    ``net`` and the timed run's ``fit`` arguments in ``kwargs``.
    """

    param_names = ("workload", "backend", "dtype")
    timeout = TIMEOUT

    def setup(self, workload_id: str, backend: str, dtype: str) -> None:
        self.X, self.y = data(workload_id, dtype)
        self.net = network(workload_id, dtype, backend)
        self.kwargs = workload(workload_id).fit_kwargs()
