"""Start-up cost: ``import nnjit`` and a first training run in a fresh interpreter.

Each measurement starts a new Python process that loads a workload's data
(before its clock starts), imports nnjit, and trains the workload's network
for one timed run (for W4, one epoch).  With a new, empty ``NUMBA_CACHE_DIR``
that first ``fit`` compiles the kernels; the processes after it, on the same
directory, load them from the cache.  ``python -m nnjit bench`` reports both.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnjit import workloads as wl

# Run by ``python -c`` with the arguments: data file, workload as JSON, dtype.
_CHILD = """
import json, sys, time
import numpy as np
path, spec, dtype = sys.argv[1:]
with np.load(path) as data:
    X, y = data["X"], data["y"]
start = time.perf_counter()
import nnjit
imported = time.perf_counter()
from nnjit import workloads as wl
spec = json.loads(spec)
workload = wl.Workload(**{**spec, "sizes": tuple(spec["sizes"])})
wl.make_network(workload, dtype).fit(X, y, **workload.fit_kwargs())
done = time.perf_counter()
from nnjit.precompile import cache_counts
compiled = cache_counts()[0] > 0
print(json.dumps({"import": imported - start, "first_run": done - imported, "compiled": compiled}))
"""


def first_run(
    data: Path, workload: wl.Workload, dtype: str, environment: dict[str, str]
) -> dict[str, Any]:
    """Time ``import nnjit`` and the first run of ``workload`` in a new process.

    Parameters
    ----------
    data : Path
        An ``.npz`` file with the workload's ``X`` and ``y``.
    workload : Workload
    dtype : {"float64", "float32"}
    environment : dict
        The process's environment variables.

    Returns
    -------
    dict
        ``import`` and ``first_run`` in seconds, and ``compiled``: whether
        the run compiled kernels rather than loading them from the cache.

    Raises
    ------
    RuntimeError
        If the process fails; the message ends with its error output.
    """
    spec = json.dumps(dataclasses.asdict(workload))
    command = [sys.executable, "-c", _CHILD, str(data), spec, dtype]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the start-up process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_startup(
    workload: wl.Workload,
    dtype: str,
    *,
    cold: bool = True,
    warm_runs: int = 3,
    threads: int | None = None,
    step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Start-up of ``workload`` in ``dtype``: first runs with an empty and a warm cache.

    Parameters
    ----------
    workload : Workload
    dtype : {"float64", "float32"}
    cold : bool, default True
        Also time one process with a new, empty kernel cache, whose ``fit``
        compiles the kernels.  The warm runs then use that cache; without
        ``cold`` they use the usual one, filled first if it is empty.
    warm_runs : int, default 3
        Processes timed with a warm cache; their medians are reported.
    threads : int, optional
        ``NUMBA_NUM_THREADS`` of the processes; by default, inherited.
    step : callable, optional
        Called with a label before each process, for a progress line.

    Returns
    -------
    dict
        ``workload`` (its id), ``architecture``, ``samples``, ``dtype``;
        ``cold``: the cold process's figures from :func:`first_run`, or None;
        ``warm``: ``runs`` (each process's figures) and the medians ``import``
        and ``first_run``.
    """
    if warm_runs < 1:
        raise ValueError(f"warm_runs must be at least 1, got {warm_runs}")
    environment = dict(os.environ)
    if threads is not None:
        environment["NUMBA_NUM_THREADS"] = str(threads)
    report: dict[str, Any] = {
        "workload": workload.id,
        "architecture": workload.architecture,
        "samples": workload.n_samples,
        "dtype": dtype,
        "cold": None,
    }
    with tempfile.TemporaryDirectory(prefix="nnjit-startup-") as directory:
        data = Path(directory) / "data.npz"
        X, y = wl.make_data(workload, dtype)
        np.savez(data, X=X, y=y)
        del X, y
        if cold:
            environment["NUMBA_CACHE_DIR"] = str(Path(directory) / "cache")
            if step:
                step(f"start-up {dtype}, empty cache")
            report["cold"] = first_run(data, workload, dtype, environment)
        runs: list[dict[str, Any]] = []
        filled = cold
        while len(runs) < warm_runs:
            if step:
                step(f"start-up {dtype}, warm cache")
            run = first_run(data, workload, dtype, environment)
            if run["compiled"] and not filled:
                # The usual cache did not have the kernels yet: this process
                # filled it, and does not count.
                filled = True
                continue
            runs.append(run)
    report["warm"] = {
        "runs": runs,
        "import": statistics.median(run["import"] for run in runs),
        "first_run": statistics.median(run["first_run"] for run in runs),
    }
    return report
