"""Start-up cost in a fresh interpreter: ``import nnjit``, and import plus a first ``fit``.

The first ``fit`` either loads the compiled kernels from numba's on-disk cache
(``warm``) or compiles them (``cold``: ``NUMBA_CACHE_DIR`` points at an empty
directory).  The data is made before the clock starts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile

from . import common

DATA = """
import numpy as np
X = np.random.default_rng(0).standard_normal((100, 2)).astype("{dtype}")
y = X.sum(axis=1)
"""

FIRST_FIT = """
import nnjit
net = nnjit.Network([2, 10, 1], "relu", "identity", "mse", dtype="{dtype}", seed=0)
net.fit(X, y, epochs=10, batch_size=100, lr=0.05)
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
    """``import nnjit`` and a first ``fit`` of a small network."""

    # A cold compile is costly: one per dtype when quick.
    params = (["warm", "cold"], ["float64"] if common.QUICK else common.DTYPES)
    param_names = ("cache", "dtype")
    number = 1
    repeat = (1, 3, 120.0)
    rounds = 1
    timeout = common.TIMEOUT

    def setup(self, cache: str, dtype: str) -> None:
        self.parent = tempfile.mkdtemp(prefix="nnjit-cold-cache-")
        if cache == "warm":
            # Fill the on-disk cache, if this dtype was never compiled here.
            code = DATA.format(dtype=dtype) + FIRST_FIT.format(dtype=dtype)
            subprocess.run([sys.executable, "-c", code], check=True)

    def teardown(self, cache: str, dtype: str) -> None:
        shutil.rmtree(self.parent, ignore_errors=True)

    def timeraw_first_fit(self, cache: str, dtype: str) -> tuple[str, str]:
        setup = DATA.format(dtype=dtype)
        if cache == "cold":
            setup = COLD_CACHE.format(parent=self.parent) + setup
        return FIRST_FIT.format(dtype=dtype), setup
