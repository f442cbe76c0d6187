"""``python -m nnjit compile``: the kernels compiled ahead of the first fit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nnjit.precompile import main, precompile, warm

# Another network, loss and optimiser than the one the command trains: every
# network of a dtype runs the same compiled code.
OTHER_NETWORK = """
import numpy as np, nnjit
from nnjit.epoch import run_epochs
rng = np.random.default_rng(1)
X = rng.standard_normal((50, 6)).astype("float32")
y = rng.standard_normal(50)
net = nnjit.Network([6, 20, 1], "tanh", "identity", "mse", dtype="float32", seed=0)
net.fit(X, y, epochs=2, batch_size=7, momentum=0.9, l2=1e-3, verbose=True)
net.predict(X)
net.loss_and_grad(net.params, X, y)
print(sum(run_epochs.stats.cache_misses.values()), sum(run_epochs.stats.cache_hits.values()))
"""


def _python(*args: str, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=True
    )


def test_compile_command_fills_an_empty_cache(tmp_path):
    first = _python("-m", "nnjit", "compile", cache=tmp_path).stdout
    assert "float64: compiled" in first and "float32: compiled" in first
    assert str(tmp_path) in first
    again = _python("-m", "nnjit", "compile", "--dtype", "float32", cache=tmp_path).stdout
    assert "float32: loaded from the cache" in again and "float64" not in again
    misses, hits = _python("-c", OTHER_NETWORK, cache=tmp_path).stdout.split()
    assert (misses, hits) == ("0", "1")


def test_in_this_process(dtype):
    (result,) = precompile([dtype], processes=1).values()
    assert result["source"] in ("compiled", "cache", "memory")
    assert warm(dtype)["source"] == "memory"


@pytest.mark.parametrize(
    ("dtypes", "processes", "message"),
    [(["float16"], None, "float16"), ([], None, "dtypes"), (["float32"], 0, "at least 1")],
)
def test_bad_arguments(dtypes, processes, message):
    with pytest.raises(ValueError, match=message):
        precompile(dtypes, processes)


def test_bad_command_line(capsys):
    assert main(["--dtype", "float32,int8"]) == 2
    captured = capsys.readouterr()
    assert "int8" in captured.err and captured.out == ""
