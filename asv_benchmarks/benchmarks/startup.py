"""Start-up cost in a fresh interpreter: ``import nnjit``, and import plus a first W4 epoch.

The first ``fit`` either loads the compiled kernels from numba's on-disk cache
(``warm``) or compiles them (``cold``: ``NUMBA_CACHE_DIR`` points at an empty
directory).  ``setup`` writes W4's data to a file, which the timed interpreter
loads before the clock starts, without importing nnjit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import common

LOAD = """
import numpy as np
with np.load({path!r}) as data:
    X, y = data["X"], data["y"]
"""

FIRST_EPOCH = """
import nnjit
from nnjit import workloads as wl
workload = wl.get("W4", quick={quick})
wl.make_network(workload, "{dtype}").fit(X, y, **workload.fit_kwargs())
"""

COLD_CACHE = """
import os, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(dir={parent!r})
"""


class Import:
    """``import nnjit`` and everything it imports (numba, scipy)."""

    def timeraw_import(self) -> str:
        return "import nnjit"


class FirstFit:
    """``import nnjit`` and a first epoch of W4."""

    # A cold compile is costly: one per dtype when quick.
    params = (["warm", "cold"], ["float64"] if common.QUICK else common.DTYPES)
    param_names = ("cache", "dtype")
    number = 1
    repeat = (1, 3, 120.0)
    rounds = 1
    timeout = common.TIMEOUT

    def setup(self, cache: str, dtype: str) -> None:
        self.parent = tempfile.mkdtemp(prefix="nnjit-first-fit-")
        self.load = LOAD.format(path=str(Path(self.parent) / "data.npz"))
        X, y = common.data("W4", dtype)
        np.savez(Path(self.parent) / "data.npz", X=X, y=y)
        self.first_epoch = FIRST_EPOCH.format(quick=common.QUICK, dtype=dtype)
        if cache == "warm":
            # Fill the on-disk cache, if this dtype was never compiled here.
            subprocess.run([sys.executable, "-c", self.load + self.first_epoch], check=True)

    def teardown(self, cache: str, dtype: str) -> None:
        shutil.rmtree(self.parent, ignore_errors=True)

    def timeraw_first_fit(self, cache: str, dtype: str) -> tuple[str, str]:
        setup = self.load
        if cache == "cold":
            setup = COLD_CACHE.format(parent=self.parent) + setup
        return self.first_epoch, setup
