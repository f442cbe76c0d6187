"""``python -m nnjit compile``: the kernels compiled ahead of the first fit."""

from __future__ import annotations

import json
import os
import re

import pytest
from conftest import assert_close, cache_entries, run_python

from nnjit.kernel_compile import helper_allowed
from nnjit.precompile import main, precompile, warm

# Another network, loss and optimiser than the one the command trains: every
# network of a dtype runs the same compiled code.
OTHER_NETWORK = """
import numpy as np, nnjit
from nnjit.precompile import cache_counts
rng = np.random.default_rng(1)
X = rng.standard_normal((50, 6)).astype("float32")
y = rng.standard_normal(50)
net = nnjit.Network([6, 20, 1], "tanh", "identity", "mse", dtype="float32", seed=0)
net.fit(X, y, epochs=2, batch_size=7, momentum=0.9, l2=1e-3, verbose=True)
net.predict(X)
net.loss_and_grad(net.params, X, y)
print(*cache_counts())
"""


def test_compile_command_fills_the_cache(compile_output):
    """Run before the tests (see conftest): in a fresh cache it compiled both dtypes."""
    for dtype in ("float64", "float32"):
        assert (
            f"{dtype}: compiled" in compile_output
            or f"{dtype}: loaded from the cache" in compile_output
        )
    # --profile: a table for a dtype compiled, a word for one loaded.
    compiled = compile_output.count(": compiled in")
    assert compile_output.count("    function  ") == compiled
    assert len(re.findall(r"^ +epoch\.run_epochs +\d", compile_output, re.MULTILINE)) == compiled
    assert compile_output.count("    sum  ") == compiled
    assert compile_output.count("nothing was compiled") == 2 - compiled
    if helper_allowed():
        helped = compile_output.count("meanwhile a helper process compiled")
        assert helped == compiled
    other = run_python(OTHER_NETWORK, check=True, timeout=600)
    misses, hits = other.stdout.split()
    assert (misses, hits) == ("0", "1")


def test_in_this_process(dtype):
    (result,) = precompile([dtype, dtype]).values()
    assert result["source"] in ("compiled", "cache", "memory")
    assert warm(dtype)["source"] == "memory"


@pytest.mark.parametrize(("dtypes", "message"), [(["float16"], "float16"), ([], "dtypes")])
def test_bad_arguments(dtypes, message):
    with pytest.raises(ValueError, match=message):
        precompile(dtypes)


def test_profile_of_kernels_already_loaded(capsys):
    precompile(["float64"])
    assert main(["--dtype", "float64", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "float64: already loaded" in out
    assert "nothing was compiled" in out and "NUMBA_CACHE_DIR" in out


def test_bad_command_line(capsys):
    assert main(["--dtype", "float32,int8"]) == 2
    captured = capsys.readouterr()
    assert "int8" in captured.err and captured.out == ""


# A process confined to one core loads the kernels that the tests' session
# compiled with every core, and trains with them.
ONE_CORE = """
import json, os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import numpy as np, nnjit
from nnjit.dense import MAX_BLOCKS
from nnjit.precompile import cache_counts
rng = np.random.default_rng(2)
out = {"blocks": MAX_BLOCKS, "runs": []}
for sizes, n in (((4, 6, 3), 23), ((784, 100, 10), 200)):
    X = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    for backend in ("numba", "numpy"):
        net = nnjit.Network(list(sizes), "relu", "softmax", "cross_entropy", seed=0,
                            backend=backend)
        loss, grad = net.loss_and_grad(net.params, X, y)
        net.fit(X, y, epochs=1, batch_size=n, lr=0.1, l2=1e-3, shuffle=False)
        out["runs"].append([loss, grad.tolist(), net.params.tolist()])
out["misses"] = cache_counts()[0]
print(json.dumps(out))
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs a process that can be confined to fewer cores than it has",
)
def test_kernels_from_the_cache_run_right_on_fewer_cores(compile_output):
    """The cached kernels take the process's core count at run time, not the compiler's."""
    done = run_python(ONE_CORE, check=True, timeout=600)
    out = json.loads(done.stdout)
    assert out["blocks"] == 1 and out["misses"] == 0  # loaded, not compiled
    runs = out["runs"]
    for numba_run, numpy_run in zip(runs[::2], runs[1::2], strict=True):
        for numba_value, numpy_value in zip(numba_run, numpy_run, strict=True):
            assert_close(numba_value, numpy_value, "float64")


# Read-only, and unaligned, inputs to every entry point: a memory-mapped data
# set or an array made from a buffer.
READ_ONLY = """
import numpy as np, nnjit
from nnjit.epoch import run_epochs
from nnjit.precompile import cache_counts
rng = np.random.default_rng(3)
def read_only(array):
    array = np.array(array)
    array.flags.writeable = False
    return array
def unaligned(array):
    raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out
X = read_only(rng.standard_normal((60, 5)))
labels = read_only(rng.integers(0, 3, 60))
targets = read_only(rng.standard_normal((60, 2)))
classifier = nnjit.Network([5, 8, 3], "relu", "softmax", "cross_entropy", seed=0)
classifier.fit(X, labels, epochs=2, batch_size=16, momentum=0.9, validation_data=(X, labels))
classifier.fit(unaligned(X), labels, epochs=1, batch_size=7, shuffle=False)
classifier.predict(unaligned(X))
classifier.loss(X, labels)
classifier.loss_and_grad(read_only(classifier.params), X, labels)
regressor = nnjit.Network([5, 8, 2], "tanh", "identity", "mse", seed=0)
regressor.fit(X, targets, epochs=1, batch_size=10, verbose=True, validation_data=(X, targets))
regressor.loss_and_grad(read_only(regressor.params), unaligned(X), targets)
print(cache_counts()[0], len(run_epochs.signatures))
"""


def test_read_only_and_unaligned_inputs_compile_nothing_more(compile_output):
    """Every entry point runs the one cached signature, whatever the flags of its arrays."""
    done = run_python(READ_ONLY, check=True, timeout=600)
    misses, signatures = done.stdout.split()
    assert (misses, signatures) == ("0", "1")


def test_every_kernel_is_compiled_once_per_dtype(compile_output):
    """No kernel gets a second specialisation in a dtype, from ``fit`` or from a test.

    Each costs compile time; a read-only data array once gave some kernels
    three.  numba writes one data file per specialisation.
    """
    counts = cache_entries()
    assert counts
    assert max(counts.values()) <= 2, counts
