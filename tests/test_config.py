"""Compile options: the on-disk cache must be safe to load in any order."""

from __future__ import annotations

import os
import subprocess
import sys

# Two kernels compiled with nnjit's options: a parallel one, and a serial one
# that calls it.
KERNELS = """
import numpy as np
from numba import prange

from nnjit._config import jit, jit_parallel


@jit_parallel
def scaled(x, factor):
    out = np.empty_like(x)
    for i in prange(x.size):
        out[i] = x[i] * factor
    return out


@jit
def doubled_sum(x):
    return scaled(x, 2.0).sum()
"""


def test_kernels_compiled_against_cached_kernels_load_from_the_cache(tmp_path):
    """One process caches a kernel, the next compiles another that calls it, a third loads both.

    numba does not start its thread pool when such a kernel is loaded from the
    cache; without nnjit starting it at import, the third process crashes.
    """
    (tmp_path / "kernels.py").write_text(KERNELS)
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    for call in ("scaled(x, 2.0).sum()", "doubled_sum(x)", "doubled_sum(x)"):
        script = f"import numpy as np, kernels\nx = np.ones(1000)\nprint(kernels.{call})"
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, (call, result.returncode, result.stderr[-2000:])
        assert result.stdout.split() == ["2000.0"]
