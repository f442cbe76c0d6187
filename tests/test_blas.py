"""BLAS from compiled code: pinned to one thread while nnjit runs."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import threadpoolctl
from conftest import BLOCK_SIZED_TRAINING, run_python
from scipy.linalg import cython_blas
from threadpoolctl import ThreadpoolController, threadpool_info

from nnjit import blas
from nnjit.backends import BACKENDS
from nnjit.blas import single_threaded
from nnjit.layout import build_layout


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def _blas_libraries() -> list:
    return ThreadpoolController().select(user_api="blas").lib_controllers


def _threads_of(paths: list[str]) -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["filepath"] in paths}


def _kernel_threads() -> set[int]:
    """The thread counts of the BLAS libraries that the kernels call."""
    return _threads_of(blas.kernel_blas_paths(_blas_libraries(), cython_blas.__file__))


def _numpy_module_file() -> str:
    try:
        from numpy._core import _multiarray_umath
    except ImportError:  # NumPy 1
        from numpy.core import _multiarray_umath
    return _multiarray_umath.__file__


def test_single_threaded_restores_the_thread_count():
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure a BLAS library is loaded
    before = _blas_threads()
    with single_threaded():
        assert _kernel_threads() == {1}
    assert _blas_threads() == before


def test_numpy_keeps_its_own_blas_threads():
    """Only the library the kernels call is pinned; NumPy's, if another, keeps its threads."""
    np.ones((2, 2)) @ np.ones((2, 2))
    libraries = _blas_libraries()
    kernels = blas.kernel_blas_paths(libraries, cython_blas.__file__)
    numpy_blas = blas.kernel_blas_paths(libraries, _numpy_module_file())
    if set(numpy_blas) & set(kernels) or len(numpy_blas) == len(libraries):
        pytest.skip("NumPy's BLAS is the kernels' here, or was not found")
    before = _threads_of(numpy_blas)
    if before == {1}:
        pytest.skip("NumPy's BLAS runs on one thread already")
    with single_threaded(stop_waiting=True):
        assert _threads_of(kernels) == {1}
        assert _threads_of(numpy_blas) == before


def test_kernel_blas_paths_without_bindings_is_every_library():
    libraries = _blas_libraries()
    missing = os.path.join(os.path.dirname(__file__), "no-such-library.so")
    assert blas.kernel_blas_paths(libraries, missing) == [lib.filepath for lib in libraries]


def test_stopping_the_waiting_workers_leaves_blas_working():
    rng = np.random.default_rng(0)
    A = rng.random((300, 300))
    expected = A @ A  # multi-threaded: leaves OpenBLAS's workers spinning
    before = _blas_threads()
    with single_threaded(stop_waiting=True):
        np.testing.assert_allclose(A @ A, expected)
    assert _blas_threads() == before
    np.testing.assert_allclose(A @ A, expected)  # the workers start again


def test_fit_pins_blas_when_its_products_go_to_blas():
    """A fit holds BLAS to one thread, unless no product of its batches goes to BLAS."""
    np.ones((2, 2)) @ np.ones((2, 2))
    before = _blas_threads()
    kernels = blas.kernel_blas_paths(_blas_libraries(), cython_blas.__file__)
    unpinned = _threads_of(kernels)
    for sizes, batch_size, pinned in [
        ([30, 20, 3], 8, True),  # 600 weights: BLAS
        ([30, 20, 3], 3, False),  # batches of 3 rows: loops
        ([2, 10, 1], 8, False),  # 20 and 10 weights: loops
    ]:
        backend = BACKENDS["numba"](build_layout(sizes, "relu", "identity", "mse"), np.float64)
        with backend.session(batch_size):
            assert (_threads_of(kernels) == {1}) == pinned or unpinned == {1}
        assert _blas_threads() == before


# Fits back to back, after a first one: OpenBLAS's workers must not be
# stopped and started again by every fit.
NO_THREADS_STARTED = (
    BLOCK_SIZED_TRAINING
    + """
import os
train(0)
before = sorted(os.listdir("/proc/self/task"))
for seed in range(1, 4):
    train(seed)
after = sorted(os.listdir("/proc/self/task"))
assert after == before, (before, after)
print("ok")
"""
)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_fits_back_to_back_start_no_threads():
    """Stopping the kernels' BLAS made every fit start its workers again and join them."""
    done = run_python(NO_THREADS_STARTED)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_overlapping_blocks_keep_the_limit_until_the_last_closes():
    """Two fits in two threads: the first to end must not unpin the other's BLAS."""
    np.ones((2, 2)) @ np.ones((2, 2))
    before = _blas_threads()
    first, second = single_threaded(), single_threaded(stop_waiting=True)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert _kernel_threads() == {1}
    second.__exit__(None, None, None)
    assert _blas_threads() == before


def _multithreaded_blas() -> list[int]:
    """BLAS's thread counts, with a BLAS library loaded; skips where the kernels' has one thread."""
    np.ones((2, 2)) @ np.ones((2, 2))
    before = _blas_threads()
    if _kernel_threads() == {1}:
        pytest.skip("BLAS runs on one thread already")
    return before


def test_a_block_in_another_thread_limits_blas_after_one_in_this_thread():
    """threadpoolctl 3.8 lets one thread at a time set OpenBLAS's pool; each block hands it on."""
    before = _multithreaded_blas()
    with single_threaded():
        pass
    seen = []

    def worker():
        with single_threaded():
            seen.append(_kernel_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen[0] == {1}
    assert _blas_threads() == before


def test_the_last_block_puts_back_the_limit_while_the_first_thread_lives():
    """The thread that set the limit still runs when another closes the last block."""
    before = _multithreaded_blas()
    opened, close, left, finish = (threading.Event() for _ in range(4))

    def first():
        with single_threaded():
            opened.set()
            close.wait()
        left.set()
        finish.wait()  # alive, as a thread between two fits is

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert opened.wait(60)
        block = single_threaded()
        block.__enter__()
        close.set()
        assert left.wait(60)
        block.__exit__(None, None, None)
        after = _blas_threads()
    finally:
        close.set()
        finish.set()
        thread.join()
    assert after == before


def test_thread_count_functions_read_and_set_what_threadpoolctl_sees():
    before = _multithreaded_blas()
    kernels = blas.kernel_blas_paths(_blas_libraries(), cython_blas.__file__)
    for library in _blas_libraries():
        if library.filepath not in kernels:
            continue
        get, set_ = blas.thread_count_functions(library)
        count = library.get_num_threads()
        assert get() == count
        set_(1)
        try:
            assert _threads_of([library.filepath]) == {1}
        finally:
            set_(count)
    assert _blas_threads() == before


def test_a_thread_holding_threadpoolctls_control_does_not_stop_the_limit():
    """threadpoolctl ignores the thread counts that other threads than its controlling one set."""
    before = _multithreaded_blas()
    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    if openblas is None:
        pytest.skip("no OpenBLAS controller in this threadpoolctl")
    limited, finish = threading.Event(), threading.Event()

    def other():
        # A limit through threadpoolctl's controller makes this thread its
        # controlling thread, which stays so while the thread lives.
        ThreadpoolController().select(user_api="blas").limit(limits=max(before))
        limited.set()
        finish.wait()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert limited.wait(60)
        with single_threaded():
            seen = _kernel_threads()
        after = _blas_threads()
    finally:
        finish.set()
        thread.join()
        openblas.clear_controlling_thread(force=True)
    assert seen == {1}
    assert after == before


# Fits in two threads at once, each network trained alone first.
TWO_THREADS = (
    BLOCK_SIZED_TRAINING
    + """
import threading
from scipy.linalg import cython_blas
import threadpoolctl
from threadpoolctl import ThreadpoolController, threadpool_info
def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
np.ones((2, 2)) @ np.ones((2, 2))
before = blas_threads()
alone = [train(seed).params for seed in range(2)]
together = {}
def worker(seed):
    for _ in range(10):
        together[seed] = train(seed).params
threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert blas_threads() == before, (blas_threads(), before)
for seed in range(2):
    np.testing.assert_array_equal(together[seed], alone[seed])
print("ok")
"""
)


def test_fits_in_two_threads_at_once():
    """They once hung the process, both stopping OpenBLAS's workers at once."""
    done = run_python(TWO_THREADS)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# Fits while another thread runs NumPy matrix products on OpenBLAS's workers.
BACKGROUND_PRODUCTS = (
    BLOCK_SIZED_TRAINING
    + """
import threading
A = rng.standard_normal((300, 300))
expected = A @ A
done = False
products = []
def background():
    while not done:
        products.append(np.allclose(A @ A, expected, rtol=1e-12, atol=1e-9))
thread = threading.Thread(target=background)
thread.start()
for seed in range(60):
    train(seed)
done = True
thread.join()
assert products and all(products)
print("ok")
"""
)


def test_fits_beside_a_thread_running_numpy_products():
    """Stopping OpenBLAS's workers while another thread's product ran on them hung the process."""
    done = run_python(BACKGROUND_PRODUCTS)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# A fork while another thread holds the lock of single_threaded(), as when
# one thread forks a process pool while another opens a fit.
FORK_DURING_A_BLOCK = """
import multiprocessing
from nnjit import blas
def child():
    with blas.single_threaded():
        pass
    print("child ok", flush=True)
if __name__ == "__main__":
    with blas._sessions_lock:
        process = multiprocessing.get_context("fork").Process(target=child, daemon=True)
        process.start()
    process.join(60)
    print(process.exitcode)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_does_not_inherit_the_blocks_lock():
    done = run_python(FORK_DURING_A_BLOCK)
    assert done.stdout == "child ok\n0\n", done.stderr
