"""Borrowed views and copies of nnjit._views against NumPy slicing."""

from __future__ import annotations

import numpy as np
from numba import njit

from nnjit._views import as_vector, borrow, copy_matrix, row, segment, view2d


@njit
def _views(flat, M):
    return (
        view2d(flat, 3, 4, 5).copy(),
        segment(flat, 7, 6).copy(),
        row(M, 2).copy(),
        row(M[:, 1:], 1).copy(),
        as_vector(M).copy(),
    )


@njit
def _borrowed_sum(pair):
    (a, (b, n)) = borrow(pair)
    b[0] = n
    return a.sum() + b.sum()


def test_views_match_slices():
    flat = np.arange(40.0)
    M = np.arange(20.0).reshape(4, 5)
    block, part, third, strided, whole = _views(flat, M)
    np.testing.assert_array_equal(block, flat[3:23].reshape(4, 5))
    np.testing.assert_array_equal(part, flat[7:13])
    np.testing.assert_array_equal(third, M[2])
    np.testing.assert_array_equal(strided, M[1, 1:])
    np.testing.assert_array_equal(whole, M.ravel())


def test_borrow_keeps_values_and_writes_through():
    a = np.arange(5.0)
    b = np.zeros(3)
    assert _borrowed_sum((a, (b, 7))) == 10.0 + 7.0
    assert b[0] == 7


def test_copy_matrix():
    src = np.random.default_rng(0).standard_normal((3, 4))
    dst = np.zeros_like(src)
    copy_matrix(dst, src)
    np.testing.assert_array_equal(dst, src)
