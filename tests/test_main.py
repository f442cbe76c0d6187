"""The command line: ``python -m nnjit`` and its demo."""

from __future__ import annotations

import subprocess
import sys

from nnjit.__main__ import main


def test_usage(capsys):
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["train"]) == 2
    assert "unknown command 'train'" in capsys.readouterr().err


def test_demo_runs(capsys):
    assert main(["demo", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "numba" in out and "numpy" in out
    assert "faster per epoch" in out


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "nnjit", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "bench" in result.stdout
