"""The kernels' table of addresses, calls through it, and the helper of a cold compile."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_python
from numba import njit
from numba.core.errors import TypingError

from nnjit import kernel_compile
from nnjit.activations import ACTIVATIONS
from nnjit.kernel_cache import cache_lock, held_locks
from nnjit.kernel_calls import (
    ACTIVATE_ROWS,
    BACKWARD,
    FORWARD,
    NAMES,
    OUTPUT_DELTA,
    PARALLEL_INPUTS,
    PARALLEL_TRANSPOSED,
    SPLIT_BLOCKS,
    SUM_BLOCKS,
    TRANSPOSED_ROWS,
    call,
)
from nnjit.kernel_compile import (
    ENV_HELPER,
    FIRST,
    LOOPS,
    compile_kernels,
    helper_allowed,
    kernel_table,
)


@njit
def _activate_through_table(kernels, Z, code):
    call(kernels, ACTIVATE_ROWS, (Z, np.int64(0), Z.shape[0], code))


def test_the_table_holds_every_kernel(dtype):
    table = kernel_table(np.dtype(dtype))
    assert table.dtype == np.int64 and table.shape == (len(NAMES),)
    assert (table != 0).all() and len(set(table.tolist())) == len(NAMES)
    assert kernel_table(np.dtype(dtype)) is table


def test_a_call_through_the_table_runs_the_kernel(dtype):
    Z = np.linspace(-2, 2, 12, dtype=dtype).reshape(3, 4)
    expected = np.maximum(Z, 0)
    _activate_through_table(kernel_table(Z.dtype), Z, np.int64(ACTIVATIONS["relu"]))
    np.testing.assert_array_equal(Z, expected)


@pytest.mark.parametrize(
    "matrix",
    [np.zeros((3, 4), dtype=np.float64, order="F"), np.zeros((3, 4), dtype=np.int32)],
    ids=["fortran-order", "integers"],
)
def test_a_call_with_other_types_does_not_compile(matrix):
    """The table's kernels take exactly their signatures: anything else is a typing error."""

    @njit
    def wrong(kernels, Z):
        call(kernels, ACTIVATE_ROWS, (Z, np.int64(0), Z.shape[0], np.int64(0)))

    with pytest.raises(TypingError, match="activate_rows"):
        wrong(kernel_table(np.dtype(np.float64)), matrix)


def test_the_helper_compiles_its_kernels_into_the_cache(tmp_path):
    """The helper, as a cold compile starts it, fills the cache; another process loads from it."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "nnjit.kernel_compile", "float32", "activate_rows"]
    subprocess.run(command, check=True, env=env, timeout=300)
    loaded = run_python(
        "import numpy as np\n"
        "from nnjit.kernel_compile import _compiled\n"
        "from nnjit.kernel_calls import ACTIVATE_ROWS\n"
        "print(_compiled(ACTIVATE_ROWS, np.dtype('float32')))\n",
        env=env,
        check=True,
        timeout=300,
    )
    assert loaded.stdout == "False\n"


class _Helper:
    """Stands in for the helper's process, already ended with ``returncode``."""

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def poll(self) -> int:
        return self.returncode


@pytest.mark.parametrize("returncode", [0, 1])
def test_a_cold_compile_waits_for_its_helper_and_covers_its_failure(monkeypatch, dtype, returncode):
    """The entry point compiles while the helper works; a failed helper's kernels compile here."""
    dtype = np.dtype(dtype)
    events = []

    def start_helper(dt, kernels):
        events.append("helper")
        return _Helper(returncode)

    # As on a cold cache: the first kernel had to be compiled.
    monkeypatch.setattr(kernel_compile, "_compiled", lambda which, dt: which == FIRST)
    monkeypatch.setattr(kernel_compile, "helper_allowed", lambda: True)
    monkeypatch.setattr(kernel_compile, "_start_helper", start_helper)
    monkeypatch.setattr(kernel_compile, "HELPED", {})
    table = compile_kernels(dtype, lambda: events.append("entry point"))
    assert events == ["helper", "entry point"]
    assert (table == kernel_table(dtype)).all()
    assert (dtype in kernel_compile.HELPED) == (returncode == 0)
    if returncode == 0:
        expected = (*kernel_compile.HELPER_KERNELS, *kernel_compile.LOOPS, PARALLEL_INPUTS)
        assert kernel_compile.HELPED[dtype] == expected


@pytest.mark.parametrize(
    "needed",
    [
        (),
        (TRANSPOSED_ROWS,),
        (TRANSPOSED_ROWS, PARALLEL_TRANSPOSED),
        (PARALLEL_INPUTS,),
        (PARALLEL_INPUTS, TRANSPOSED_ROWS),
        LOOPS,
        (*LOOPS, TRANSPOSED_ROWS),
        (*LOOPS, PARALLEL_INPUTS),
    ],
)
def test_the_optional_kernels_compile_only_where_needed(monkeypatch, dtype, needed):
    """Optional kernels compile if needed.

    The helper takes the loops, or else the loss and the forward pass; and
    the split's kernel, or else the transposed layer's.
    """
    dtype = np.dtype(dtype)
    started, compiled = [], []
    monkeypatch.setattr(
        kernel_compile, "_compiled", lambda which, dt: compiled.append(which) or which == FIRST
    )
    monkeypatch.setattr(kernel_compile, "helper_allowed", lambda: True)
    monkeypatch.setattr(
        kernel_compile, "_start_helper", lambda dt, kernels: started.append(kernels) or _Helper(0)
    )
    monkeypatch.setattr(kernel_compile, "HELPED", {})
    compile_kernels(dtype, lambda: None, needed=needed)
    if PARALLEL_INPUTS in needed:
        optional, here = (PARALLEL_INPUTS,), {TRANSPOSED_ROWS} & set(needed)
    else:
        optional, here = (TRANSPOSED_ROWS,) if TRANSPOSED_ROWS in needed else (), set()
    loops = LOOPS if LOOPS[0] in needed else (OUTPUT_DELTA, FORWARD)
    assert started == [(*kernel_compile.HELPER_KERNELS, *loops, *optional)]
    assert {SPLIT_BLOCKS, SUM_BLOCKS} <= set(started[0])
    here |= {BACKWARD} | ({FORWARD, OUTPUT_DELTA} - set(loops))
    here |= {PARALLEL_TRANSPOSED} & set(needed)
    assert here <= set(compiled)
    for which in kernel_compile.OPTIONAL:
        assert (which in compiled or which in started[0]) == (which in needed)
    assert not set(started[0]) & set(compiled[1:])  # each kernel compiles in one process
    assert (kernel_table(dtype)[list(kernel_compile.OPTIONAL)] != 0).all()


# A process whose first calls need no loops, then calls that do: each must
# find the loops in the table, never a slot at 0 (see kernel_compile.LOOPS).
LOOPS_LATER = """
import numpy as np, nnjit
from nnjit import kernel_compile
from nnjit.kernel_calls import FORWARD_ROWS
rng = np.random.default_rng(0)
X = rng.standard_normal((403, 300))
y = rng.integers(0, 10, 403)
net = nnjit.Network([300, 64, 10], "relu", "softmax", "cross_entropy", seed=0)
net.fit(X[:400], y[:400], epochs=1, batch_size=100)
print(kernel_compile._tables[np.dtype("float64")][FORWARD_ROWS] == 0)
net.fit(X[:402], y[:402], epochs=1, batch_size=100)  # a last batch of two rows
net.fit(X[:8], y[:8], epochs=1, batch_size=1, momentum=0.9)
print(net.predict(X[:1]).shape, net.predict(X).shape)
loss, grad = net.loss_and_grad(net.params, X[:3], y[:3])
print(np.isfinite(loss) and np.isfinite(grad).all(), np.isfinite(net.loss(X[:2], y[:2])))
"""


def test_calls_that_need_the_loops_after_calls_that_did_not():
    """The loops compile, or load, when a call first needs them; without, the call would crash."""
    done = run_python(LOOPS_LATER, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True", "(1,) (403,)", "True True"]


@pytest.mark.parametrize("fails", [False, True])
def test_the_garbage_collector_runs_less_often_while_kernels_compile(monkeypatch, dtype, fails):
    """Raised thresholds for the compiles and the entry point, restored after, even on failure."""
    dtype = np.dtype(dtype)
    before = gc.get_threshold()
    seen = []

    def compiled(which, dt):
        seen.append(gc.get_threshold())
        return False

    def entry_point():
        seen.append(gc.get_threshold())
        if fails:
            raise RuntimeError("compile failed")

    monkeypatch.setattr(kernel_compile, "_compiled", compiled)
    if fails:
        with pytest.raises(RuntimeError, match="compile failed"):
            compile_kernels(dtype, entry_point)
    else:
        compile_kernels(dtype, entry_point)
    relaxed = (max(kernel_compile.COMPILE_GC_THRESHOLD, before[0]), *before[1:])
    assert relaxed[0] > 700 and seen and set(seen) == {relaxed}
    assert gc.get_threshold() == before


def test_an_empty_cache_starts_the_helper_before_anything_compiles(monkeypatch, dtype):
    """With no entry of the first kernel at all, the helper starts first, once."""
    dtype = np.dtype(dtype)
    events = []

    def start_helper(dt, kernels):
        events.append("helper")
        return _Helper(0)

    def compiled(which, dt):
        events.append(which)
        return which == FIRST

    monkeypatch.setattr(kernel_compile, "_never_cached", lambda which: which == FIRST)
    monkeypatch.setattr(kernel_compile, "_compiled", compiled)
    monkeypatch.setattr(kernel_compile, "helper_allowed", lambda: True)
    monkeypatch.setattr(kernel_compile, "_start_helper", start_helper)
    monkeypatch.setattr(kernel_compile, "HELPED", {})
    compile_kernels(dtype, lambda: events.append("entry point"))
    assert events[:2] == ["helper", FIRST]
    assert events.count("helper") == 1
    assert events[-1] == "entry point"


def test_an_empty_cache_is_told_without_compiling(tmp_path):
    """No index file of the first kernel until it is compiled into the cache."""
    loaded = run_python(
        "import numpy as np\n"
        "from nnjit.kernel_compile import FIRST, _compiled, _never_cached\n"
        "print(_never_cached(FIRST))\n"
        "_compiled(FIRST, np.dtype('float32'))\n"
        "print(_never_cached(FIRST))\n",
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)},
        check=True,
        timeout=300,
    )
    assert loaded.stdout == "True\nFalse\n"


def test_no_helper_without_a_first_kernel_to_compile(monkeypatch, dtype):
    """A warm cache starts no process."""
    monkeypatch.setattr(kernel_compile, "_start_helper", lambda dt, kernels: pytest.fail("started"))
    compile_kernels(np.dtype(dtype), lambda: None)


def test_the_helper_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(ENV_HELPER, "0")
    assert not helper_allowed()
    monkeypatch.setenv(ENV_HELPER, "1")
    assert helper_allowed() == (len(os.sched_getaffinity(0)) >= 2)


def test_no_helper_from_a_program_that_embeds_python(monkeypatch):
    """Its executable would run the program again, not Python."""
    monkeypatch.setattr(kernel_compile, "_python", lambda: "/opt/app/bin/app")
    assert not helper_allowed()


def test_no_helper_without_a_cache(monkeypatch):
    """Its kernels would have no way back."""
    monkeypatch.setattr(kernel_compile, "cache_directory", lambda: None)
    assert not helper_allowed()


def test_the_helper_runs_this_copy_of_nnjit(monkeypatch, tmp_path):
    """Its path starts with the directory this nnjit was imported from, wherever it runs."""
    started = {}

    def popen(command, env, pass_fds, **kwargs):
        started.update(command=command, env=env, pass_fds=pass_fds)
        return _Helper(0)

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with cache_lock(str(tmp_path)):
        kernel_compile._start_helper(np.dtype("float32"), kernel_compile.HELPER_KERNELS)
        assert started["pass_fds"] == held_locks() != ()  # it shares the lock
    package_parent = os.path.dirname(os.path.dirname(kernel_compile.__file__))
    assert started["env"]["PYTHONPATH"].split(os.pathsep) == [package_parent, str(tmp_path)]
    names = [NAMES[which] for which in kernel_compile.HELPER_KERNELS]
    assert started["command"][1:] == ["-m", "nnjit.kernel_compile", "float32", *names]


def test_a_copy_of_nnjit_in_the_working_directory_is_not_the_helpers(monkeypatch, tmp_path):
    """``python -m`` puts the working directory first on the path; the helper must not use it."""
    decoy = tmp_path / "nnjit"
    decoy.mkdir()
    marker = tmp_path / "decoy-imported"
    (decoy / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (decoy / "kernel_compile.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path)
    helper = kernel_compile._start_helper(np.dtype("float64"), ())  # no kernels: it only imports
    assert helper is not None
    assert helper.wait(timeout=120) == 0
    assert not marker.exists()


def test_a_stuck_helper_is_killed_and_its_kernels_compile_here(monkeypatch, dtype):
    dtype = np.dtype(dtype)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    monkeypatch.setattr(kernel_compile, "_compiled", lambda which, dt: which == FIRST)
    monkeypatch.setattr(kernel_compile, "helper_allowed", lambda: True)
    monkeypatch.setattr(kernel_compile, "_start_helper", lambda dt, kernels: helper)
    monkeypatch.setattr(kernel_compile, "HELPER_TIMEOUT", 0.5)
    monkeypatch.setattr(kernel_compile, "HELPED", {})
    table = compile_kernels(dtype, lambda: None)
    assert helper.poll() is not None  # killed
    assert dtype not in kernel_compile.HELPED
    assert (table == kernel_table(dtype)).all()
