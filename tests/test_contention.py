"""Fewer threads for a compiled call while another program keeps a core busy."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

import nnjit
from nnjit import contention

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture(autouse=True)
def no_recent_look(monkeypatch):
    """Each test starts with no count to reuse: its first call looks."""
    monkeypatch.setattr(contention, "_last_look", None)


def test_procs_running_is_read_from_proc_stat():
    stat = b"cpu  1 2 3 4\nctxt 99\nprocs_running 3\nprocs_blocked 0\n"
    assert contention.procs_running(stat) == 3
    with pytest.raises(ValueError, match="procs_running"):
        contention.procs_running(b"cpu  1 2 3 4\nprocs_blocked 0\n")


@pytest.mark.parametrize(
    ("stat", "running"),
    [
        (b"12 (python) R 1 12 12 0", True),
        (b"12 (python) S 1 12 12 0", False),
        (b"12 (a) R (b) S 1 12 0", False),  # a name with ") R (" in it
        (b"12 (numba (worker)) R 1", True),
    ],
)
def test_thread_state_follows_the_last_parenthesis(stat, running):
    assert contention.is_running(stat) is running


@pytest.mark.parametrize(
    ("threads", "cores", "others", "machine", "expected"),
    [
        (2, 2, 0, 2, 2),
        (2, 2, 1, 2, 1),
        (2, 2, 5, 2, 1),  # never fewer than one
        (8, 8, 3, 8, 5),
        (4, 8, 1, 8, 4),  # the cores left are enough
        (2, 2, 31, 64, 2),  # a container on 2 of 64 cores: most others run elsewhere
        (2, 2, 32, 64, 1),
    ],
)
def test_threads_to_use(threads, cores, others, machine, expected):
    assert contention.threads_to_use(threads, cores, others, machine) == expected


@pytest.fixture(scope="module")
def busy_program():
    """Another process that keeps a core busy, until the module's tests end."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 10
        while contention.other_running_threads() == 0:
            assert time.monotonic() < deadline, "the busy process never showed as running"
            time.sleep(0.01)
        yield process
    finally:
        process.kill()
        process.wait()


def _expected_threads(threads: int) -> int:
    """What a fit should run on beside the busy program (at least one other thread)."""
    cores = contention.usable_cores()
    return contention.threads_to_use(threads, cores, 1, os.cpu_count() or cores)


@linux_only
def test_a_busy_program_is_seen(busy_program):
    """Most looks see it; one in CI missed it, as a look may (see the fixture below)."""
    seen = sum(contention.other_running_threads() >= 1 for _ in range(20))
    assert seen >= 15


@pytest.fixture
def one_busy_thread(monkeypatch):
    """Every look sees one other program's thread running; the list of looks taken.

    Which calls look, and what they do with what they see, without the
    timing of a real busy program: a look at a real one can miss it (two
    in CI did), and a call that saw nothing would keep its threads.
    """
    looks = []

    def look():
        looks.append(1)
        return 1

    monkeypatch.setattr(contention, "other_running_threads", look)
    return looks


def test_fewer_threads_while_busy_and_the_count_put_back(one_busy_thread):
    threads = numba.get_num_threads()
    with contention.fewer_threads_when_busy() as used:
        assert numba.get_num_threads() == used
        assert used <= _expected_threads(threads)
    assert numba.get_num_threads() == threads
    with pytest.raises(RuntimeError), contention.fewer_threads_when_busy():
        raise RuntimeError
    assert numba.get_num_threads() == threads


@pytest.mark.skipif(numba.get_num_threads() < 2, reason="needs two of numba's threads")
def test_a_count_serves_the_calls_that_closely_follow_it(one_busy_thread, monkeypatch):
    """Within ``REUSE_SECONDS`` of a look, calls take its count; after, they look again."""
    monkeypatch.setattr(contention, "REUSE_SECONDS", 60.0)
    threads = numba.get_num_threads()
    for _ in range(3):
        with contention.fewer_threads_when_busy() as used:
            assert used <= _expected_threads(threads)
    assert len(one_busy_thread) == 1
    monkeypatch.setattr(contention, "REUSE_SECONDS", 0.0)
    for _ in range(2):
        with contention.fewer_threads_when_busy():
            pass
    assert len(one_busy_thread) == 3


@linux_only
def test_switched_off_by_the_environment(busy_program, monkeypatch):
    monkeypatch.setenv(contention.ENV, "0")
    threads = numba.get_num_threads()
    with contention.fewer_threads_when_busy() as used:
        assert used == numba.get_num_threads() == threads


@pytest.mark.skipif(numba.get_num_threads() < 2, reason="needs two of numba's threads")
@pytest.mark.parametrize("call", ["fit", "evaluation"])
@pytest.mark.parametrize(
    ("sizes", "rows", "adapts"), [((784, 100, 10), 200, True), ((2, 10, 1), 100, False)]
)
def test_only_calls_with_parallel_products_adapt(one_busy_thread, call, sizes, rows, adapts):
    """A call whose products are split looks; a small network's call does not even look."""
    threads = numba.get_num_threads()
    if adapts and _expected_threads(threads) == threads:
        pytest.skip("enough cores for both the busy program and every thread")
    backend = nnjit.Network(list(sizes))._backend
    context = backend.session(rows) if call == "fit" else backend._blas_pinned(rows)
    with context:
        assert (numba.get_num_threads() < threads) is adapts
    assert bool(one_busy_thread) is adapts
    assert numba.get_num_threads() == threads


@pytest.mark.skipif(numba.get_num_threads() < 2, reason="needs two of numba's threads")
@pytest.mark.parametrize(("dtype", "adapts"), [("float64", True), ("float32", False)])
def test_a_fit_that_keeps_its_first_layer_transposed_adapts_if_it_splits_it(
    one_busy_thread, dtype, adapts
):
    """W3's fit splits its first layer over the cores in float64 only (see nnjit.transposed).

    It splits no other product: an evaluation of ten rows would.
    """
    threads = numba.get_num_threads()
    if _expected_threads(threads) == threads:
        pytest.skip("enough cores for both the busy program and every thread")
    backend = nnjit.Network([784, 30, 10], dtype=dtype)._backend
    with backend.session(10):
        assert (numba.get_num_threads() < threads) == adapts
    with backend._blas_pinned(10):
        assert numba.get_num_threads() < threads


@linux_only
def test_a_fit_beside_a_busy_program_gives_the_same_parameters(busy_program, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 300))
    y = rng.integers(0, 10, 600)
    results = []
    for adaptive in ("1", "0"):
        monkeypatch.setenv(contention.ENV, adaptive)
        net = nnjit.Network([300, 256, 10], "relu", "softmax", "cross_entropy", seed=0)
        net.fit(X, y, epochs=1, batch_size=200, lr=0.05, momentum=0.9, seed=0)
        results.append((net.params, net.forward(X), net.loss_and_grad(net.params, X, y)[1]))
    for adapted, kept in zip(*results, strict=True):
        np.testing.assert_array_equal(adapted, kept)
