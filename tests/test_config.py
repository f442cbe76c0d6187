"""Compile options: the on-disk cache must be safe to load in any order."""

from __future__ import annotations

import os

import pytest
from conftest import BLOCK_SIZED_TRAINING, run_python

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
        result = run_python(script, env=env, timeout=600)
        assert result.returncode == 0, (call, result.returncode, result.stderr[-2000:])
        assert result.stdout.split() == ["2000.0"]


# The parent trains with parallel blocks, then forks two workers that train
# the same networks; without nnjit's check, GNU OpenMP ends each worker at its
# first parallel loop and the pool waits forever.
FORKED = (
    BLOCK_SIZED_TRAINING
    + """
import multiprocessing
from nnjit.dense import MAX_BLOCKS, blocks_here
def blocks_and_params(seed):
    return blocks_here(), train(seed).params
if __name__ == "__main__":
    parent = [blocks_and_params(seed) for seed in range(2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        children = pool.map(blocks_and_params, range(2))
    assert [blocks for blocks, _ in parent] == [MAX_BLOCKS] * 2
    assert [blocks for blocks, _ in children] == [1, 1]
    for (_, mine), (_, theirs) in zip(parent, children):
        np.testing.assert_allclose(theirs, mine, rtol=0, atol=1e-12 * abs(mine).max())
    print("ok")
"""
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_processes_forked_after_import_train_on_one_thread():
    done = run_python(FORKED)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# With numba's compiler turned off, as for debugging: a clear error from the
# numba backend, and a working numpy backend.
NO_JIT = """
import numpy as np, nnjit
X = np.random.default_rng(0).standard_normal((10, 3))
y = np.arange(10) % 2
net = nnjit.Network([3, 4, 2], "relu", "softmax", "cross_entropy", seed=0)
before = net.params.copy()
try:
    net.fit(X, y, epochs=1)
except RuntimeError as exc:
    print(exc)
assert np.array_equal(net.params, before)
net.backend = "numpy"
net.fit(X, y, epochs=1)
print("numpy trained")
"""


def test_without_numbas_compiler_the_numba_backend_says_so():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = run_python(NO_JIT, env=env)
    assert done.returncode == 0, done.stderr
    message, trained = done.stdout.splitlines()
    assert "NUMBA_DISABLE_JIT" in message and "backend='numpy'" in message
    assert trained == "numpy trained"
