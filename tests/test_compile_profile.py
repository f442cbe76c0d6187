"""Seconds per compiled function, from numba's compile events."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from nnjit.compile_profile import NUMBA_OWN, format_profile, record

PREFIX = f"{__name__}."


def _functions():
    """A caller and its callee, never compiled before: new objects on every call."""

    @njit
    def inner(x):
        return np.empty(3)[:0].size + x * 2.0

    @njit
    def outer(x):
        return inner(x) + 1.0

    return outer, inner


def test_a_callee_compiles_inside_its_caller():
    outer, _ = _functions()
    with record() as profile:
        assert outer(1.0) == 3.0
    times = {f.name.removeprefix(PREFIX): f for f in profile.functions()}
    caller = times["_functions.<locals>.outer"]
    callee = times["_functions.<locals>.inner"]
    assert caller.compilations == callee.compilations == 1
    # The callee's whole compile is inside the caller's, and only its own.
    assert caller.total > callee.total > 0
    assert caller.own < caller.total - callee.total + 1e-9
    # The caller holds every compile: the own times add up to its total.
    assert sum(f.own for f in times.values()) == pytest.approx(caller.total, rel=1e-9)
    for f in times.values():
        assert 0 <= f.llvm <= f.own + 1e-9
    assert caller.llvm > 0 and callee.llvm > 0
    # np.empty compiled numba's own implementation, summed in one row.
    assert times[NUMBA_OWN].compilations >= 1


def test_nothing_compiled_nothing_recorded():
    outer, _ = _functions()
    outer(1.0)
    with record() as profile:
        outer(2.0)
    assert profile.functions() == []


def test_the_listeners_leave_with_the_block():
    outer, _ = _functions()
    with record() as profile:
        pass
    outer(1.0)
    assert profile.functions() == []


def test_table():
    outer, _ = _functions()
    with record() as profile:
        outer(1.0)
    functions = profile.functions()
    lines = format_profile(functions, prefix=PREFIX).splitlines()
    assert lines[0].split() == ["function", "total", "s", "own", "s", "LLVM", "s", "compilations"]
    assert lines[1].startswith("_functions.<locals>.")  # the prefix is off
    assert len(lines) == len(functions) + 2
    last = lines[-1].split()
    assert last[0] == "sum"
    assert float(last[1]) == pytest.approx(sum(f.own for f in functions), abs=0.006)
    assert int(last[-1]) == sum(f.compilations for f in functions)
