"""The standard workloads: the networks and data that nnjit's speed is measured on.

They are defined here once and used by ``python -m nnjit bench``, the asv
suite in ``asv_benchmarks/`` and the README's figures.

==  ====================  ==========================================  =======  =====================
id  network               activations and loss                        samples  one timed run
==  ====================  ==========================================  =======  =====================
W1  2-10-1                ReLU, identity, MSE                         100      1000 full-batch steps
W2  1-64-1                leaky ReLU, identity, MSE                   201      5000 full-batch steps
W3  784-30-10             sigmoid, sigmoid, MSE (Nielsen)             50,000   1 epoch, batch 10
W4  784-100-10            ReLU, softmax cross-entropy, L2 (cs231n)    50,000   1 epoch, batch 200
W5  784-512-512-10        ReLU, softmax cross-entropy                 50,000   1 epoch, batch 256
W6  64-128-128-128-10     ReLU, softmax cross-entropy                 20,000   1 epoch, batch 1
==  ====================  ==========================================  =======  =====================

For W1 and W2 the whole data set is one batch, so a timed run is
``fit(epochs=1000, batch_size=100)``: a thousand steps.  Elsewhere "one
epoch" has its usual meaning.

The data is synthetic and seeded: inputs drawn at random (uniform in [0, 1)
for the 784-pixel workloads, like scaled MNIST; an even grid for W2, like
fitting a curve), targets from a random *teacher* network -- its outputs for
regression, the argmax of its outputs for classification (one-hot rows for
W3, whose MSE loss wants vectors).

Setting the environment variable ``NNJIT_BENCH_QUICK=1`` (or passing
``quick=True``) shrinks every workload about fifty-fold, in samples or in
steps, so that tests and CI can run all of them in seconds.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnjit.network import Network

QUICK_ENV = "NNJIT_BENCH_QUICK"
QUICK_FACTOR = 50
# Hidden units of the teacher network that labels the synthetic data.
TEACHER_HIDDEN = 32


@dataclass(frozen=True)
class Workload:
    """One standard training run.

    Attributes
    ----------
    id : str
        ``"W1"`` .. ``"W6"``.
    sizes : tuple of int
        Layer widths ``(n_in, ..., n_out)``.
    hidden, output, loss : str
        As for :class:`nnjit.Network`.
    n_samples : int
        Samples in the training set.
    batch_size : int
    epochs : int
        Epochs of one timed run (for W1 and W2 each epoch is one full batch).
    lr : float
        nnjit's learning rate (for nnjit's loss conventions).
    l2 : float
        nnjit's ``l2``: ``(l2/2) sum ||W||^2`` is added to the loss.
    inputs : {"normal", "uniform", "grid"}
        How the inputs are drawn.
    description : str
    """

    id: str
    sizes: tuple[int, ...]
    hidden: str
    output: str
    loss: str
    n_samples: int
    batch_size: int
    epochs: int
    lr: float
    l2: float = 0.0
    inputs: str = "normal"
    description: str = ""

    @property
    def n_params(self) -> int:
        """Weights and biases of the network, P."""
        return sum(a * b + b for a, b in zip(self.sizes, self.sizes[1:], strict=False))

    @property
    def first_layer_params(self) -> int:
        """Weights and biases of the first layer, P1."""
        return self.sizes[0] * self.sizes[1] + self.sizes[1]

    @property
    def steps(self) -> int:
        """SGD steps in one timed run."""
        return self.epochs * math.ceil(self.n_samples / self.batch_size)

    @property
    def samples_processed(self) -> int:
        """Samples forward and backward through the network in one timed run."""
        return self.epochs * self.n_samples

    @property
    def is_classifier(self) -> bool:
        """True when the targets are class labels (cross-entropy)."""
        return self.loss == "cross_entropy"

    @property
    def architecture(self) -> str:
        """The sizes as ``"784-30-10"``."""
        return "-".join(str(size) for size in self.sizes)

    def fit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`nnjit.Network.fit` for one timed run.

        Samples are taken in order (``shuffle=False``), as the peers are run.
        """
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "l2": self.l2,
            "shuffle": False,
        }

    def shrink(self, factor: int = QUICK_FACTOR) -> Workload:
        """The same workload about ``factor`` times smaller.

        Full-batch workloads keep their data and take fewer steps; the others
        keep one epoch and take fewer samples (at least two batches).
        """
        if self.batch_size >= self.n_samples:
            return dataclasses.replace(self, epochs=max(1, self.epochs // factor))
        n_samples = max(2 * self.batch_size, self.n_samples // factor)
        return dataclasses.replace(self, n_samples=n_samples)


_WORKLOADS = (
    Workload(
        "W1", (2, 10, 1), "relu", "identity", "mse",
        n_samples=100, batch_size=100, epochs=1000, lr=0.05,
        description="a tiny regression on two inputs, full batch",
    ),
    Workload(
        "W2", (1, 64, 1), "leaky_relu", "identity", "mse",
        n_samples=201, batch_size=201, epochs=5000, lr=0.02, inputs="grid",
        description="a 1-D curve on an even grid: small regression, full batch",
    ),
    Workload(
        "W3", (784, 30, 10), "sigmoid", "sigmoid", "mse",
        n_samples=50_000, batch_size=10, epochs=1, lr=1.5, inputs="uniform",
        description=(
            "Nielsen's MNIST network: sigmoid layers, quadratic cost, one-hot targets, "
            "eta = 3.0 (nnjit's MSE is twice Nielsen's cost, so lr = eta / 2)"
        ),
    ),
    Workload(
        "W4", (784, 100, 10), "relu", "softmax", "cross_entropy",
        n_samples=50_000, batch_size=200, epochs=1, lr=0.1, l2=1e-3, inputs="uniform",
        description="cs231n's two-layer net: ReLU, softmax cross-entropy, L2",
    ),
    Workload(
        "W5", (784, 512, 512, 10), "relu", "softmax", "cross_entropy",
        n_samples=50_000, batch_size=256, epochs=1, lr=0.05, inputs="uniform",
        description="a wider MNIST-sized MLP: two hidden layers of 512",
    ),
    Workload(
        "W6", (64, 128, 128, 128, 10), "relu", "softmax", "cross_entropy",
        n_samples=20_000, batch_size=1, epochs=1, lr=0.01,
        description="pure SGD, one sample per step, through three hidden layers",
    ),
)  # fmt: skip

WORKLOAD_IDS = tuple(workload.id for workload in _WORKLOADS)


def quick_mode() -> bool:
    """Whether ``NNJIT_BENCH_QUICK`` asks for shrunk workloads."""
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def get(workload_id: str, quick: bool | None = None, n_samples: int | None = None) -> Workload:
    """One standard workload by id.

    Parameters
    ----------
    workload_id : str
        ``"W1"`` .. ``"W6"`` (case-insensitive).
    quick : bool, optional
        Shrink it about fifty-fold; by default, when ``NNJIT_BENCH_QUICK`` is set.
    n_samples : int, optional
        Override the number of samples (after shrinking); the batch size is
        capped at it.

    Raises
    ------
    ValueError
        For an unknown id.
    """
    key = str(workload_id).upper()
    for workload in _WORKLOADS:
        if workload.id == key:
            break
    else:
        raise ValueError(
            f"unknown workload {workload_id!r}; valid choices are {', '.join(WORKLOAD_IDS)}"
        )
    if quick_mode() if quick is None else quick:
        workload = workload.shrink()
    if n_samples is not None:
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        batch_size = min(workload.batch_size, n_samples)
        if workload.batch_size >= workload.n_samples:
            batch_size = n_samples  # full-batch workloads stay full-batch
        workload = dataclasses.replace(workload, n_samples=n_samples, batch_size=batch_size)
    return workload


def workloads(ids: Iterable[str] | None = None, quick: bool | None = None) -> list[Workload]:
    """The standard workloads (all, or those named in ``ids``), in order."""
    return [get(workload_id, quick) for workload_id in (WORKLOAD_IDS if ids is None else ids)]


def train_flops(workload: Workload) -> int:
    """Floating-point operations of the matrix products of one timed run.

    ``2 P N`` for the forward pass, ``2 P N`` for the weight gradients and
    ``2 (P - P1) N`` for the input gradients of every layer but the first,
    with ``P`` parameters, ``P1`` of them in the first layer, and ``N`` the
    samples processed (``steps * batch`` for the full-batch workloads).
    Activations, losses and the update itself are not counted.
    """
    P = workload.n_params
    P1 = workload.first_layer_params
    N = workload.samples_processed
    return 4 * P * N + 2 * (P - P1) * N


def _inputs(workload: Workload, rng: np.random.Generator) -> np.ndarray:
    shape = (workload.n_samples, workload.sizes[0])
    if workload.inputs == "uniform":
        return rng.random(shape)
    if workload.inputs == "grid":
        grid = np.linspace(-1.0, 1.0, workload.n_samples)
        return np.repeat(grid[:, None], workload.sizes[0], axis=1)
    return rng.standard_normal(shape)


def _teacher(X: np.ndarray, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """Outputs of a random tanh network with one hidden layer, about unit scale."""
    centred = X - X.mean(axis=0)
    W1 = rng.standard_normal((X.shape[1], TEACHER_HIDDEN)) * (2.0 / math.sqrt(X.shape[1]))
    b1 = rng.standard_normal(TEACHER_HIDDEN) * 0.5
    W2 = rng.standard_normal((TEACHER_HIDDEN, n_out)) / math.sqrt(TEACHER_HIDDEN)
    return np.tanh(centred @ W1 + b1) @ W2


def make_data(
    workload: Workload, dtype: Any = "float64", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic training data for a workload.

    Parameters
    ----------
    workload : Workload
    dtype : {"float64", "float32"}
        Of the inputs and of regression targets; the data is drawn in float64
        and rounded, so both dtypes see the same samples.
    seed : int, default 0

    Returns
    -------
    X : ndarray, shape (n_samples, n_in)
    y : ndarray
        Integer labels ``(n_samples,)`` for cross-entropy workloads; one-hot
        rows ``(n_samples, n_out)`` for W3; teacher outputs ``(n_samples,)``
        or ``(n_samples, n_out)`` for the other regressions.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    X = _inputs(workload, rng)
    n_out = workload.sizes[-1]
    scores = _teacher(X, n_out, rng)
    if workload.is_classifier:
        y = scores.argmax(axis=1).astype(np.int64)
    elif workload.output in ("sigmoid", "softmax"):
        y = np.eye(n_out, dtype=dtype)[scores.argmax(axis=1)]
    else:
        y = scores[:, 0] if n_out == 1 else scores
        y = y.astype(dtype)
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(y)


def make_network(
    workload: Workload, dtype: Any = "float64", backend: str = "numba", seed: int = 0
) -> Network:
    """A freshly initialised :class:`nnjit.Network` for a workload."""
    return Network(
        list(workload.sizes),
        workload.hidden,
        workload.output,
        workload.loss,
        dtype=dtype,
        seed=seed,
        backend=backend,
    )


def labels(workload: Workload, y: np.ndarray) -> np.ndarray | None:
    """Class labels of targets from :func:`make_data`, or None for regressions."""
    if workload.is_classifier:
        return y
    if workload.output in ("sigmoid", "softmax"):
        return y.argmax(axis=1)
    return None
