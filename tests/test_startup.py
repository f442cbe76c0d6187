"""Start-up in fresh processes: what fails, and how it says so.

A run with an empty cache compiles every kernel again, which the tests do not
pay for; ``test_bench`` times a warm start through ``python -m nnjit bench``.
"""

from __future__ import annotations

import os

import pytest

from nnjit import workloads as wl
from nnjit.startup import first_run, measure_startup


def test_a_failed_process_raises_with_its_error_output(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(RuntimeError, match="start-up process failed") as failed:
        first_run(missing, wl.get("W4", quick=True), "float64", dict(os.environ))
    assert "missing.npz" in str(failed.value)  # the child's own error


def test_at_least_one_warm_run():
    with pytest.raises(ValueError, match="warm_runs must be at least 1"):
        measure_startup(wl.get("W4", quick=True), "float64", warm_runs=0)
