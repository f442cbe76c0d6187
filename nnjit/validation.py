"""Input checks at the Python edge.

The kernels trust their arguments and numba does no bounds checking, so an
unchecked label or shape would corrupt memory instead of raising.  Everything
a kernel receives passes through here first: C-contiguous arrays of the
model's dtype, of the right shapes, finite, and labels in range.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from nnjit.layout import Layout

DTYPES = ("float32", "float64")


def check_dtype(dtype: Any) -> np.dtype:
    """``np.dtype`` of float32 or float64; anything else raises ``ValueError``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return resolved


def _numeric_array(values: Any, name: str) -> np.ndarray:
    """``values`` as an array of booleans, integers or reals.

    An object array (a mixed pandas frame, a list of ``Decimal``) is converted
    to float64 if it holds real numbers only.  Complex values, strings, dates
    and anything else raise ValueError, as scikit-learn's checks do: NumPy
    would drop an imaginary part with only a warning, and read ``"1.5"`` as
    a number.
    """
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "c":
        raise ValueError(f"{name} must hold real numbers, got complex values ({array.dtype})")
    if kind == "O":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{name} must hold numbers, got an array of dtype {array.dtype}")


def check_finite(array: np.ndarray, name: str, dtype: np.dtype, data: bool = True) -> None:
    """Raise a ValueError that counts the NaN and infinite values, if ``array`` has any.

    For ``data`` (not parameters) the message says to remove or impute them.
    """
    # A finite sum means every value is finite, and takes half the time of
    # np.isfinite(array).all(), which also allocates a mask the size of the
    # data.  Only a sum that overflows needs the full test.
    if array.dtype.kind != "f":
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(array.sum()):
            return
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        advice = "; remove or impute them before training" if data else ""
        raise ValueError(
            f"{name} contains {bad} NaN or infinite value(s) (in {dtype.name}){advice}"
        )


def check_inputs(
    X: Any, n_in: int, dtype: np.dtype, name: str = "X", finite: bool = True
) -> np.ndarray:
    """``X`` as a C-contiguous ``(N, n_in)`` array of ``dtype``, checked.

    With ``finite=False`` the values are not checked for NaN and infinity:
    the caller's compiled code checks them as it reads them.
    """
    array = _numeric_array(X, name)
    if array.ndim != 2:
        hint = f" (reshape with {name}.reshape(-1, {n_in}))" if array.ndim == 1 else ""
        raise ValueError(
            f"{name} must be 2-D of shape (n_samples, {n_in}), got shape {array.shape}{hint}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: it needs at least one sample")
    if array.shape[1] != n_in:
        raise ValueError(
            f"{name} has {array.shape[1]} features per sample but the network "
            f"expects {n_in} (sizes[0])"
        )
    converted = _contiguous(array, dtype)
    if finite:
        check_finite(converted, name, dtype)
    return converted


def check_targets(
    y: Any, layout: Layout, n_samples: int, dtype: np.dtype, name: str = "y"
) -> np.ndarray:
    """Targets as a C-contiguous ``(N, n_out)`` array of ``dtype``, checked.

    Integer labels of a softmax classifier become one-hot rows.
    """
    array = _numeric_array(y, name)
    n_out = layout.sizes[-1]
    if array.ndim not in (1, 2) or array.shape[0] != n_samples:
        raise ValueError(
            f"{name} has shape {array.shape} but X has {n_samples} samples; "
            f"expected {_expected_targets(layout)}"
        )
    softmax_labels = layout.is_classifier and layout.output == "softmax" and array.ndim == 1
    if softmax_labels:
        return _one_hot(array, n_out, dtype, name)
    if array.ndim == 1:
        if n_out != 1:
            raise ValueError(
                f"{name} is 1-D but the network has {n_out} outputs; "
                f"expected {_expected_targets(layout)}"
            )
        array = array.reshape(-1, 1)
    if array.shape[1] != n_out:
        raise ValueError(
            f"{name} has {array.shape[1]} columns but the network has {n_out} outputs; "
            f"expected {_expected_targets(layout)}"
        )
    converted = _contiguous(array, dtype)
    check_finite(converted, name, dtype)
    # Cross-entropy targets are probabilities.  A softmax row need not sum to
    # 1 (the delta keeps its sum), but a value outside [0, 1] is not a
    # probability: with a negative one the loss has no lower bound.
    if layout.is_classifier:
        low, high = converted.min(), converted.max()
        if low < 0 or high > 1:
            raise ValueError(
                f"{name} must lie in [0, 1] for a {layout.output} output with cross-entropy; "
                f"got values from {low:g} to {high:g}; expected {_expected_targets(layout)}"
            )
    return converted


def _one_hot(labels: np.ndarray, n_out: int, dtype: np.dtype, name: str) -> np.ndarray:
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
            raise ValueError(
                f"{name} must hold integer class labels 0..{n_out - 1}; got non-integer values"
            )
    low, high = labels.min(), labels.max()
    if low < 0 or high > n_out - 1:
        raise ValueError(
            f"{name} holds labels from {low:g} to {high:g} but the network has {n_out} "
            f"classes: labels must be integers in 0..{n_out - 1}"
        )
    Y = np.zeros((labels.shape[0], n_out), dtype=dtype)
    Y[np.arange(labels.shape[0]), labels.astype(np.intp)] = 1
    return Y


def _expected_targets(layout: Layout) -> str:
    n_out = layout.sizes[-1]
    if layout.is_classifier and layout.output == "softmax":
        return f"integer labels (N,) in 0..{n_out - 1} or one-hot/probability rows (N, {n_out})"
    one = "(N,) or " if n_out == 1 else ""
    if layout.is_classifier:
        return f"values in [0, 1] of shape {one}(N, {n_out})"
    return f"targets of shape {one}(N, {n_out})"


def _contiguous(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` as an aligned, C-contiguous, writable ndarray of ``dtype``; a copy if it must.

    numba types read-only and unaligned arrays apart, and would compile the
    whole entry point again for them, 15-20 s, and its kernels once more for
    every combination.  Values too large for ``dtype`` become infinite, for
    :func:`check_finite`.
    """
    with np.errstate(over="ignore"):
        converted = np.ascontiguousarray(array, dtype=dtype)
    flags = converted.flags
    return converted if flags.aligned and flags.writeable else converted.copy()


def check_params(params: Any, n_params: int, dtype: np.dtype) -> np.ndarray:
    """A flat parameter vector of length ``n_params``, as C-contiguous ``dtype``."""
    array = _numeric_array(params, "params")
    if array.ndim != 1 or array.shape[0] != n_params:
        raise ValueError(
            f"params must be a 1-D vector of length {n_params}, got shape {array.shape}"
        )
    converted = _contiguous(array, dtype)
    check_finite(converted, "params", dtype, data=False)
    return converted


def check_int(value: Any, name: str, minimum: int) -> int:
    """An integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(value: Any, name: str, *, positive: bool = False) -> float:
    """A finite real number, ``> 0`` if ``positive`` else ``>= 0``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (positive and value <= 0) or value < 0:
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    """``True`` or ``False`` (NumPy's too); a string such as ``"False"`` would be true."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def make_rng(seed: Any) -> np.random.Generator:
    """``np.random.default_rng(seed)``, with a ValueError naming ``seed`` for what it refuses."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}") from None
