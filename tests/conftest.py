"""Shared helpers: architectures, data and tolerances for both dtypes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnjit
from nnjit.activations import HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS
from nnjit.kernel_cache import cache_directory

# Every valid (output activation, loss) pair.
OUTPUT_LOSS_PAIRS = (
    *((output, "mse") for output in OUTPUT_ACTIVATIONS),
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
)

# Every hidden activation with every (output, loss) pair.
ARCHITECTURES = tuple(
    (hidden, output, loss)
    for hidden, (output, loss) in itertools.product(HIDDEN_ACTIVATIONS, OUTPUT_LOSS_PAIRS)
)

DTYPES = ("float64", "float32")
BACKENDS = ("numba", "numpy")

# Relative tolerance of a comparison between the two backends.
RTOL = {"float64": 1e-12, "float32": 2e-5}


# For scripts run in child processes: data, and a network whose products
# take parallel row blocks, trained by ``train(seed)``.
BLOCK_SIZED_TRAINING = """
import numpy as np, nnjit
rng = np.random.default_rng(0)
X = rng.standard_normal((400, 300))
y = rng.integers(0, 10, 400)
def train(seed):
    net = nnjit.Network([300, 64, 10], "relu", "softmax", "cross_entropy", seed=seed)
    net.fit(X, y, epochs=2, batch_size=100, momentum=0.9)
    return net
"""


def run_python(
    source: str, *args: str, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess:
    """``source`` run by a fresh interpreter with ``args``, killed after ``timeout`` seconds.

    The scripts of the thread and process tests hung the whole process when
    they failed; the timeout turns a hang into a failure.
    """
    return subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def cache_entries() -> Counter:
    """Data files in the kernel cache per kernel: numba writes one per specialisation."""
    directory = cache_directory()
    assert directory is not None
    return Counter(path.name.split(".py")[0] for path in Path(directory).glob("*.nbc"))


def make_targets(output: str, loss: str, n: int, n_out: int, rng: np.random.Generator):
    """Targets of the right kind for an (output, loss) pair."""
    if loss == "cross_entropy" and output == "softmax":
        return rng.integers(0, n_out, n)
    if loss == "cross_entropy":
        return (rng.random((n, n_out)) < 0.5).astype(float)
    if output in ("sigmoid", "softmax"):
        return rng.random((n, n_out))
    return rng.standard_normal((n, n_out))


def make_problem(
    hidden: str = "tanh",
    output: str = "identity",
    loss: str = "mse",
    *,
    sizes: tuple[int, ...] = (4, 6, 5, 3),
    n: int = 23,
    dtype: str = "float64",
    backend: str = "numba",
    seed: int = 0,
):
    """A network with random weights *and* biases, and data for it."""
    rng = np.random.default_rng(seed)
    net = nnjit.Network(list(sizes), hidden, output, loss, dtype=dtype, seed=seed, backend=backend)
    # Random biases too, so that no unit sits exactly at a kink of ReLU.
    net.params = rng.standard_normal(net.n_params) * 0.5
    X = rng.standard_normal((n, sizes[0]))
    y = make_targets(output, loss, n, sizes[-1], rng)
    return net, X, y


def twin(net: nnjit.Network, backend: str) -> nnjit.Network:
    """The same network (sizes, activations, parameters) on another backend."""
    other = nnjit.Network(
        net.sizes,
        list(net.hidden) or "relu",
        net.output,
        net.loss_name,
        dtype=net.dtype,
        backend=backend,
    )
    other.params = net.params
    return other


def drop_stale_kernels() -> None:
    """Delete the cached kernels if a source file of nnjit is newer than one of them.

    numba checks only the file of each cached function, and the entry point in
    ``nnjit/epoch.py`` holds the compiled code of every kernel module below it:
    after an edit to one of those, the cache would still load the old code.
    """
    directory = cache_directory()
    if directory is None or not os.path.isdir(directory):
        return
    cached = [path for path in Path(directory).iterdir() if path.suffix in (".nbi", ".nbc")]
    if not cached:
        return
    newest_source = max(path.stat().st_mtime for path in Path(nnjit.__file__).parent.glob("*.py"))
    if min(path.stat().st_mtime for path in cached) < newest_source:
        for path in cached:
            path.unlink()


@pytest.fixture(scope="session", autouse=True)
def compile_output() -> str:
    """``python -m nnjit compile --profile`` before any test: a dtype per process, both at once.

    They meet at the cache as two first uses of nnjit at once do, and take
    turns at its lock (see :mod:`nnjit.kernel_cache`).  The tests then load
    the kernels from the cache; some check that no entry was lost, and one
    checks what the commands printed, which this returns.
    """
    drop_stale_kernels()
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "nnjit", "compile", "--dtype", dtype, "--profile"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for dtype in DTYPES
    ]
    outputs = [run.communicate()[0] for run in runs]
    for run in runs:
        if run.returncode:
            raise subprocess.CalledProcessError(run.returncode, run.args)
    return "".join(outputs)


def assert_close(actual, expected, dtype, factor: float = 1.0) -> None:
    """Compare arrays to the dtype's tolerance, relative to the largest magnitude."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=factor * RTOL[str(dtype)] * scale)


@pytest.fixture(params=DTYPES)
def dtype(request) -> str:
    return request.param


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param
