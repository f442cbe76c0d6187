"""The kernel cache's lock: one process at a time compiles or loads the kernels."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import cache_entries, make_problem, run_python

from nnjit import backends
from nnjit.kernel_cache import LOCK_NAME, cache_directory, cache_lock, held_locks

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the lock is POSIX flock")

# Tries the lock file in argv[1] without waiting, before and after the parent
# says (a line on stdin) that it let go.
TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for _ in range(2):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free", flush=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        print("busy", flush=True)
    sys.stdin.readline()
"""


def test_the_lock_keeps_out_another_process(tmp_path):
    with cache_lock(str(tmp_path)) as held:
        assert held
        child = subprocess.Popen(
            [sys.executable, "-c", TRY_LOCK, str(tmp_path / LOCK_NAME)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout.readline() == "busy\n"
    out, _ = child.communicate("\n\n", timeout=60)
    assert out == "free\n"


def test_a_helper_given_the_lock_holds_it_after_its_parent_lets_go(tmp_path):
    """As a cold compile's helper does, if the process that started it is killed."""
    with cache_lock(str(tmp_path)) as held:
        assert held and len(held_locks()) == 1
        helper = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.readline()"],
            stdin=subprocess.PIPE,
            pass_fds=held_locks(),
        )
    assert held_locks() == ()
    probe = subprocess.Popen(
        [sys.executable, "-c", TRY_LOCK, str(tmp_path / LOCK_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert probe.stdout.readline() == "busy\n"
    finally:
        helper.communicate(b"\n", timeout=60)
    out, _ = probe.communicate("\n\n", timeout=60)
    assert out == "free\n"


@pytest.mark.parametrize("where", ["none", "under a file"])
def test_no_lock_where_there_is_no_directory(tmp_path, where):
    """Without a cache directory, or one that cannot be made, kernels load without a lock."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    directory = None if where == "none" else str(blocker / "cache")
    with cache_lock(directory) as held:
        assert not held


# Imports nnjit, says so, then makes its first call of the kernels, which the
# test session has cached: it loads them, once it has the lock.
FIRST_FIT = """
import numpy as np, nnjit
from nnjit.precompile import cache_counts
print("imported", flush=True)
rng = np.random.default_rng(0)
X = rng.standard_normal((20, 3))
net = nnjit.Network([3, 5, 2], "relu", "softmax", "cross_entropy", seed=0)
net.fit(X, rng.integers(0, 2, 20), epochs=1, batch_size=4)
print(*cache_counts())
"""


def test_a_first_call_waits_while_another_process_compiles(compile_output):
    """While the lock is held, a new process's first call waits, then loads the kernels.

    Without the lock it would finish in about a second: three seconds still
    running cannot happen by chance on a working lock, only on a busy machine
    without one.
    """
    with cache_lock(cache_directory()) as held:
        assert held
        child = subprocess.Popen(
            [sys.executable, "-c", FIRST_FIT], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout.readline() == "imported\n"
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=3)
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    assert out.split() == ["0", "1"]  # loaded, not compiled


def test_no_lock_once_the_kernels_are_loaded(monkeypatch):
    net, X, y = make_problem()
    net.fit(X, y, epochs=1)
    assert net._backend.kernels_ready

    def refuse(directory):
        raise AssertionError("took the lock with the kernels loaded")

    monkeypatch.setattr(backends, "cache_lock", refuse)
    net.fit(X, y, epochs=1)
    net.predict(X)
    net.loss_and_grad(net.params, X, y)


def test_a_first_call_loads_the_kernels_holding_the_lock(monkeypatch, dtype):
    held = []
    lock = backends.cache_lock

    def watched(directory):
        held.append(directory)
        return lock(directory)

    monkeypatch.setattr(backends, "cache_lock", watched)
    monkeypatch.setattr(backends, "_KERNELS_READY", set())
    net, X, y = make_problem(dtype=dtype)
    before = net.params.copy()
    net.predict(X)
    assert held == [cache_directory()]
    net.fit(X, y, epochs=1)
    assert held == [cache_directory()]  # once per dtype and process
    assert not (net.params == before).all()


# Loads the kernels of both dtypes, which the session compiled in two
# processes at once (see conftest).
BOTH_DTYPES = """
import numpy as np, nnjit
from nnjit.precompile import cache_counts
rng = np.random.default_rng(0)
for dtype in ("float64", "float32"):
    X = rng.standard_normal((20, 3)).astype(dtype)
    net = nnjit.Network([3, 5, 1], "tanh", "identity", "mse", dtype=dtype, seed=0)
    net.fit(X, rng.standard_normal(20), epochs=1, batch_size=4)
print(*cache_counts())
"""


def test_two_processes_compiling_at_once_lose_no_entry(compile_output):
    """Each kernel keeps one entry per dtype, and a new process loads both dtypes."""
    counts = cache_entries()
    assert counts and set(counts.values()) == {2}, counts
    done = run_python(BOTH_DTYPES, check=True)
    assert done.stdout.split() == ["0", "2"]


# numba's cache race, made certain: a kernel compiled in two dtypes by two
# processes started at once, each pausing between reading the kernel's cache
# index and writing it, with or without the lock.
KERNEL = """
from numba import njit

@njit(cache=True)
def total(x):
    return x.sum()
"""

RACE = """
import contextlib, sys, time
import numpy as np
from numba.core import caching
from nnjit.kernel_cache import cache_lock

save_index = caching.IndexDataCacheFile._save_index

def slow_save_index(self, overloads):
    time.sleep(1.0)
    save_index(self, overloads)

caching.IndexDataCacheFile._save_index = slow_save_index
sys.path.insert(0, sys.argv[1])
from kernel import total

directory = total._cache._cache_path
locked = cache_lock(directory) if sys.argv[3] == "locked" else contextlib.nullcontext()
x = np.ones(3, dtype=sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
with locked:
    total(x)
"""


@pytest.mark.parametrize(("locked", "entries"), [("locked", 2), ("unlocked", 1)])
def test_the_lock_keeps_both_entries_that_numba_would_lose(tmp_path, locked, entries):
    """Unlocked, both writers take the first data file name and one dtype is lost.

    The unlocked case checks the premise: if numba ever writes its cache
    safely, it fails, and the lock can go.
    """
    (tmp_path / "kernel.py").write_text(KERNEL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), dtype, locked],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for dtype in ("float64", "float32")
    ]
    assert [child.stdout.readline() for child in children] == ["ready\n"] * 2
    for child in children:  # then both compile at once
        child.stdin.write("\n")
        child.stdin.flush()
    for child in children:
        child.communicate(timeout=120)
        assert child.returncode == 0
    assert len(list((tmp_path / "cache").rglob("kernel.total-*.nbc"))) == entries


# The parent holds the lock while it forks a child that lives on; the lock
# must be free once the parent has let go and the child has started.
FORK_WHILE_LOCKED = """
import fcntl, multiprocessing, os, sys, time
from nnjit.kernel_cache import LOCK_NAME, cache_lock
directory = sys.argv[1]
context = multiprocessing.get_context("fork")
started = context.Event()
def child():
    started.set()
    time.sleep(30)
if __name__ == "__main__":
    with cache_lock(directory):
        process = context.Process(target=child, daemon=True)
        process.start()
    started.wait(60)
    fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free")
    except BlockingIOError:
        print("held by the child")
    process.kill()
"""


def test_a_child_forked_under_the_lock_does_not_keep_it(tmp_path):
    done = run_python(FORK_WHILE_LOCKED, str(tmp_path))
    assert done.stdout == "free\n", done.stderr
