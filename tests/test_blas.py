"""BLAS from compiled code: pinned to one thread while nnjit runs."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from nnjit.blas import single_threaded


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_single_threaded_restores_the_thread_count():
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure a BLAS library is loaded
    before = _blas_threads()
    with single_threaded():
        assert set(_blas_threads()) <= {1}
    assert _blas_threads() == before


def test_stopping_the_waiting_workers_leaves_blas_working():
    rng = np.random.default_rng(0)
    A = rng.random((300, 300))
    expected = A @ A  # multi-threaded: leaves OpenBLAS's workers spinning
    before = _blas_threads()
    with single_threaded(stop_waiting=True):
        np.testing.assert_allclose(A @ A, expected)
    assert _blas_threads() == before
    np.testing.assert_allclose(A @ A, expected)  # the workers start again
