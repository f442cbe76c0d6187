"""Compile options: the on-disk cache must be safe to load in any order."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import numpy as np
import nnjit
net = nnjit.Network([3, 40, 2], "relu", "softmax", "cross_entropy", seed=0)
X = np.random.default_rng(0).random((300, 3))
print({call!r}, {call})
"""


def _run(call: str, cache_dir: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(call=call)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_kernels_compiled_against_cached_kernels_load_from_the_cache(tmp_path):
    """One process caches a kernel, the next compiles another that calls it, a third loads both.

    numba does not start its thread pool when such a kernel is loaded from the
    cache; without nnjit starting it at import, the third process crashes.
    """
    cache = str(tmp_path)
    for call in ("net.forward(X).shape", "net.loss(X, [0, 1] * 150)", "net.loss(X, [0, 1] * 150)"):
        result = _run(call, cache)
        assert result.returncode == 0, (call, result.returncode, result.stderr[-2000:])
