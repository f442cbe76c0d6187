"""Every script in ``examples/`` runs in quick mode and says what it claims.

Each script runs in a fresh interpreter, as a user would run it, with its
pictures sent to a temporary directory so the committed ones stay untouched.
A new ``examples/NN_*.py`` is picked up automatically; the table below adds
what each known script must print and draw.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9]*.py"))

# script stem: (modules it needs, phrases its output must contain)
EXPECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "01_learning_a_sum": ((), ("net.fit raised DivergenceError", "2 + 3 = 5", "predicted")),
    "02_fitting_x_squared": ((), ("never learn anything", "Identity output: every one of")),
    "03_checking_a_gradient": (
        (),
        ("the gradient is right", "sign-flipped backprop", "CAUGHT: wrong gradient"),
    ),
    "04_logic_gates": ((), ("XOR, hidden layer [2, 4, 1]", "4/4 right")),
    "05_two_layer_net_spiral": ((), ("validation accuracy", "Linear softmax classifier")),
    "06_nielsen_digits": (("sklearn",), ("held-out accuracy", "median time per epoch")),
    "07_scipy_lbfgs": (("sklearn", "scipy"), ("minimize:", "held-out accuracy")),
    "08_feature_scaling": ((), ("DivergenceError", "Standardised features")),
    "09_numpy_loop_to_nnjit": ((), ("max relative difference", "your NumPy loop")),
}


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


_RUNS: dict[str, tuple[subprocess.CompletedProcess, Path]] = {}


def run_example(script: Path, factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Run ``script`` once in quick mode; its stdout (whitespace collapsed) and picture folder."""
    if script.stem not in _RUNS:
        output = factory.mktemp(script.stem)
        _RUNS[script.stem] = (_run(script, output), output)
    result, output = _RUNS[script.stem]
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout, output


def _run(script: Path, output: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "NNJIT_EXAMPLES_QUICK": "1",
        "NNJIT_EXAMPLES_OUTPUT": str(output),
        "MPLBACKEND": "Agg",
    }
    return subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        cwd=output,
        timeout=300,
    )


def test_every_example_is_described():
    """Each script has an entry above and a line in examples/README.md."""
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in SCRIPTS:
        assert script.stem in EXPECTED, f"add {script.name} to EXPECTED"
        assert script.name in readme, f"list {script.name} in examples/README.md"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs(script: Path, tmp_path_factory: pytest.TempPathFactory):
    needs, phrases = EXPECTED.get(script.stem, ((), ()))
    for module in needs:
        pytest.importorskip(module)
    out, output = run_example(script, tmp_path_factory)
    text = " ".join(out.split())  # phrases may be wrapped over lines
    for phrase in phrases:
        assert phrase in text, f"{script.name} did not print {phrase!r}:\n{out}"

    pictures = [Path(p) for p in re.findall(r"^saved picture: (.+)$", out, flags=re.MULTILINE)]
    if has_module("matplotlib"):
        # Every script draws a picture named after itself, in the directory it was given.
        assert output / f"{script.stem}.png" in pictures, out
        for picture in pictures:
            assert picture.parent == output and picture.stat().st_size > 10_000
    else:
        assert not pictures and "skipping the picture" in text


def test_numpy_loop_matches_nnjit(tmp_path_factory: pytest.TempPathFactory):
    """Example 9's point: the hand-written loop and nnjit agree to rounding."""
    out, _ = run_example(EXAMPLES / "09_numpy_loop_to_nnjit.py", tmp_path_factory)
    differences = re.findall(r"max relative difference, .*: (\S+)", out)
    assert len(differences) == 2, out
    assert all(float(d) < 1e-10 for d in differences), out
