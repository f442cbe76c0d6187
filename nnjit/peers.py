"""Runners that train a standard workload: nnjit's two backends and independent peers.

``python -m nnjit bench`` times every runner on the same workload
(:mod:`nnjit.workloads`): the same data, the same sizes, one timed run of
mini-batch SGD over the samples in order, with the learning rate mapped to
each library's conventions.  The peers are straightforward implementations,
written the way their documentation teaches:

``plain``
    The NumPy loop a tutorial teaches: per mini-batch ``X @ W + b`` and the
    activation, the deltas, and ``W -= lr * grad``, with the batch loss added
    up as it goes and nothing else.  It starts from nnjit's initial weights.
``numpy``
    nnjit's own ``numpy`` backend: the same mathematics in NumPy, with
    nnjit's checks and bookkeeping (the loss in float64, the divergence
    guard, the history), so it is slower than ``plain`` on small steps.
``torch``
    PyTorch eager mode: ``nn.Linear`` layers, ``torch.optim.SGD`` and a loop
    over mini-batches sliced before the clock starts, on as many threads as
    numba uses.  It starts from nnjit's initial weights, so its loss can be
    compared with nnjit's.
``sklearn``
    scikit-learn's ``MLPRegressor`` / ``MLPClassifier`` with ``solver="sgd"``,
    constant learning rate, no momentum and no shuffling, in the data's dtype
    (it keeps float32 inputs in float32).  It draws its own initial weights.
    Where it cannot express a workload exactly the runner says so in
    :meth:`Runner.notes`.

PyTorch and scikit-learn are optional: they are imported only when their
runner prepares a workload, and :func:`available_runners` reports those that
are missing.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from nnjit.activations import LEAKY_SLOPE
from nnjit.workloads import Workload, make_network

# A prepared run: builds a fresh model (not timed) and returns the timed call,
# which trains it and returns the final training loss in nnjit's convention
# (or None when the peer's loss is not comparable).
Setup = Callable[[], Callable[[], float | None]]

# Every runner starts from the initial weights of this seed where it can.
INIT_SEED = 0


class Runner:
    """One way of training a workload.

    Attributes
    ----------
    name : str
        ``"numba"``, ``"numpy"``, ``"torch"`` or ``"sklearn"``.
    module : str or None
        The optional package the runner needs, if any.
    """

    name = ""
    module: str | None = None

    def is_available(self) -> bool:
        """Whether the runner's package imports."""
        if self.module is None:
            return True
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True

    def version(self) -> str | None:
        """Version of the package behind the runner."""
        import nnjit

        return nnjit.__version__

    def notes(self, workload: Workload) -> list[str]:
        """Where the runner departs from the workload's exact definition."""
        return []

    def prepare(self, workload: Workload, X: np.ndarray, y: np.ndarray) -> Setup:
        """Everything that can be done once per workload and dtype.

        Parameters
        ----------
        workload : Workload
        X, y : ndarray
            From :func:`nnjit.workloads.make_data`, in the dtype to time.

        Returns
        -------
        Setup
            Called before every timed run; it returns the call to time.
        """
        raise NotImplementedError


class NnjitRunner(Runner):
    """:meth:`nnjit.Network.fit` with one of nnjit's backends."""

    def __init__(self, backend: str) -> None:
        self.name = backend
        self.backend = backend

    def prepare(self, workload: Workload, X: np.ndarray, y: np.ndarray) -> Setup:
        kwargs = workload.fit_kwargs()

        def setup() -> Callable[[], float]:
            net = make_network(workload, X.dtype, self.backend, seed=INIT_SEED)

            def run() -> float:
                return net.fit(X, y, **kwargs).loss[-1]

            return run

        return setup


def _plain_activations(name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """An activation and its derivative from its output, as NumPy expressions.

    The tutorial's forms, not :mod:`nnjit.reference`'s: that backend's
    overflow-safe sigmoid and its derivatives written out as arrays cost
    time a plain loop does not spend, and would flatter nnjit.
    """
    if name == "identity":
        return (lambda z: z), (lambda a: 1)
    if name == "relu":
        return (lambda z: np.maximum(z, 0)), (lambda a: a > 0)
    if name == "leaky_relu":
        # The slopes in the data's dtype: np.where(a > 0, 1, slope) is float64.
        def leaky_grad(a: Any) -> Any:
            return np.where(a > 0, a.dtype.type(1), a.dtype.type(LEAKY_SLOPE))

        return (lambda z: np.where(z > 0, z, LEAKY_SLOPE * z)), leaky_grad
    if name == "sigmoid":
        return (lambda z: 1 / (1 + np.exp(-z))), (lambda a: a * (1 - a))
    if name == "tanh":
        return np.tanh, (lambda a: 1 - a * a)
    raise NotImplementedError(f"the plain NumPy loop has no {name} layer")


class PlainNumpyRunner(Runner):
    """The NumPy loop a tutorial teaches, with nothing but the training in it.

    It is what nnjit is measured against in the issue's targets: the fastest
    straightforward NumPy.  Losses follow nnjit's conventions (MSE summed over
    the outputs and averaged over the samples; softmax cross-entropy on
    integer labels; ``(l2 / 2) ||W||^2`` on the weights), so its final loss
    matches nnjit's.
    """

    name = "plain"

    def prepare(self, workload: Workload, X: np.ndarray, y: np.ndarray) -> Setup:
        hidden, hidden_grad = _plain_activations(workload.hidden)
        softmax = workload.output == "softmax"
        # An identity output's derivative is 1: the loop skips that product.
        output_has_grad = workload.output != "identity"
        if softmax != (workload.loss == "cross_entropy"):
            raise NotImplementedError(
                f"the plain NumPy loop has no {workload.output} output with {workload.loss}"
            )
        if not softmax:
            output, output_grad = _plain_activations(workload.output)
            y = y.reshape(len(y), -1).astype(X.dtype)
        lr, l2, size = workload.lr, workload.l2, workload.batch_size
        # Sliced before the clock starts, as for torch; the row indices pick
        # each sample's label out of the softmax.
        batches = [
            (X[lo : lo + size], y[lo : lo + size], np.arange(min(size, len(X) - lo)))
            for lo in range(0, len(X), size)
        ]
        initial = make_network(workload, X.dtype, "numpy", seed=INIT_SEED)

        def setup() -> Callable[[], float]:
            Ws = [W.copy() for W in initial.weights]
            bs = [b.copy() for b in initial.biases]

            def run() -> float:
                for _ in range(workload.epochs):
                    total = 0.0
                    for xb, yb, samples in batches:
                        m = len(xb)
                        acts = [xb]
                        for W, b in zip(Ws[:-1], bs[:-1], strict=True):
                            acts.append(hidden(acts[-1] @ W + b))
                        z = acts[-1] @ Ws[-1] + bs[-1]
                        if softmax:
                            z = z - z.max(axis=1, keepdims=True)
                            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
                            total -= log_p[samples, yb].sum()
                            delta = np.exp(log_p)
                            delta[samples, yb] -= 1
                            delta /= m
                        else:
                            a = output(z)
                            diff = a - yb
                            total += (diff * diff).sum()
                            delta = (2 / m) * diff
                            if output_has_grad:
                                delta *= output_grad(a)
                        for i in range(len(Ws) - 1, -1, -1):
                            grad_W = acts[i].T @ delta
                            grad_b = delta.sum(axis=0)
                            if i > 0:
                                delta = (delta @ Ws[i].T) * hidden_grad(acts[i])
                            if l2:
                                grad_W += l2 * Ws[i]
                            Ws[i] -= lr * grad_W
                            bs[i] -= lr * grad_b
                penalty = 0.5 * l2 * sum(float((W * W).sum()) for W in Ws)
                return float(total) / len(X) + penalty

            return run

        return setup


class TorchRunner(Runner):
    """PyTorch eager mode: ``nn.Linear`` layers and ``torch.optim.SGD``."""

    name = "torch"
    module = "torch"

    def version(self) -> str | None:
        import torch

        return torch.__version__

    def prepare(self, workload: Workload, X: np.ndarray, y: np.ndarray) -> Setup:
        import numba
        import torch
        from torch import nn
        from torch.nn import functional as F

        torch.set_num_threads(numba.get_num_threads())
        activations = {
            "identity": nn.Identity,
            "relu": nn.ReLU,
            "leaky_relu": lambda: nn.LeakyReLU(0.01),
            "sigmoid": nn.Sigmoid,
            "tanh": nn.Tanh,
            "softmax": lambda: nn.Softmax(dim=1),
        }
        # Cross-entropy losses take the logits; on MSE the output activation is a layer.
        if workload.loss == "mse":
            targets = torch.from_numpy(y.reshape(len(y), -1))

            def loss_fn(out: Any, target: Any) -> Any:
                # nnjit's MSE: summed over the outputs, averaged over the samples.
                return F.mse_loss(out, target, reduction="sum") / out.shape[0]

            output = activations[workload.output]
        elif workload.output == "softmax":
            targets = torch.from_numpy(y.astype(np.int64))
            loss_fn = F.cross_entropy
            output = nn.Identity
        else:
            targets = torch.from_numpy(y.reshape(len(y), -1).astype(X.dtype))
            loss_fn = F.binary_cross_entropy_with_logits
            output = nn.Identity
        inputs = torch.from_numpy(X)
        batches = [
            (inputs[lo : lo + workload.batch_size], targets[lo : lo + workload.batch_size])
            for lo in range(0, len(X), workload.batch_size)
        ]
        initial = make_network(workload, X.dtype, "numpy", seed=INIT_SEED)

        def setup() -> Callable[[], float]:
            layers: list[Any] = []
            for i, (W, b) in enumerate(zip(initial.weights, initial.biases, strict=True)):
                linear = nn.Linear(W.shape[0], W.shape[1], dtype=inputs.dtype)
                with torch.no_grad():
                    linear.weight.copy_(torch.from_numpy(W.T.copy()))
                    linear.bias.copy_(torch.from_numpy(b))
                last = i == len(initial.weights) - 1
                layers += [linear, output() if last else activations[initial.hidden[i]]()]
            model = nn.Sequential(*layers)
            weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
            biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
            optimizer = torch.optim.SGD(
                [
                    {"params": weights, "weight_decay": workload.l2},
                    {"params": biases, "weight_decay": 0.0},
                ],
                lr=workload.lr,
                momentum=0.0,
            )

            def run() -> float:
                for _ in range(workload.epochs):
                    total = 0.0
                    for xb, yb in batches:
                        optimizer.zero_grad()
                        loss = loss_fn(model(xb), yb)
                        loss.backward()
                        optimizer.step()
                        total += loss.item() * len(xb)
                with torch.no_grad():
                    penalty = 0.5 * workload.l2 * sum(float((W * W).sum()) for W in weights)
                return total / len(X) + penalty

            return run

        return setup


# scikit-learn's names of nnjit's hidden activations (it has no leaky ReLU).
SKLEARN_ACTIVATIONS = {
    "identity": "identity",
    "relu": "relu",
    "leaky_relu": "relu",
    "sigmoid": "logistic",
    "tanh": "tanh",
}


class SklearnRunner(Runner):
    """scikit-learn's ``MLPRegressor`` / ``MLPClassifier`` with ``solver="sgd"``.

    Conventions: scikit-learn's squared loss is halved and averaged over the
    outputs, so its learning rate is ``2 * n_out`` times nnjit's; its
    cross-entropy is nnjit's; its ``alpha`` term is divided by the batch
    size, so ``alpha = l2 * batch_size``.
    """

    name = "sklearn"
    module = "sklearn"

    def version(self) -> str | None:
        import sklearn

        return sklearn.__version__

    def notes(self, workload: Workload) -> list[str]:
        notes = []
        if workload.hidden == "leaky_relu":
            notes.append("scikit-learn has no leaky ReLU: its hidden layers use ReLU")
        if workload.loss == "mse" and workload.output != "identity":
            notes.append(
                f"scikit-learn cannot train {workload.output} outputs on MSE: its closest, "
                f"MLPClassifier with {workload.output} outputs and binary cross-entropy, "
                "at nnjit's learning rate (same products; its loss is not comparable)"
            )
        return notes

    def prepare(self, workload: Workload, X: np.ndarray, y: np.ndarray) -> Setup:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        if workload.output not in ("identity", "sigmoid", "softmax") or (
            workload.output == "softmax" and workload.loss == "mse"
        ):
            raise NotImplementedError(
                f"scikit-learn has no {workload.output} output with {workload.loss}"
            )
        n_out = workload.sizes[-1]
        regressor = workload.output == "identity"
        options = {
            "hidden_layer_sizes": workload.sizes[1:-1],
            "activation": SKLEARN_ACTIVATIONS[workload.hidden],
            "solver": "sgd",
            "batch_size": workload.batch_size,
            "learning_rate": "constant",
            "learning_rate_init": workload.lr * (2 * n_out if regressor else 1),
            "alpha": workload.l2 * workload.batch_size,
            "momentum": 0.0,
            "nesterovs_momentum": False,
            "shuffle": False,
            "early_stopping": False,
            "max_iter": workload.epochs,
            # Never stop early: every epoch of the workload runs.
            "tol": 0.0,
            "n_iter_no_change": workload.epochs + 1,
            "random_state": INIT_SEED,
        }
        if not regressor and workload.loss == "mse":
            # sigmoid outputs on MSE: one-hot rows become a multi-label target.
            y = y.astype(np.int64)
        classes = np.arange(n_out) if workload.output == "softmax" else None

        def setup() -> Callable[[], float | None]:
            model = (MLPRegressor if regressor else MLPClassifier)(**options)

            def run() -> float | None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    if classes is not None and workload.epochs == 1:
                        # partial_fit keeps every class even if a sample set lacks one.
                        model.partial_fit(X, y, classes=classes)
                    else:
                        model.fit(X, y)
                if regressor:
                    return float(model.loss_) * 2 * n_out
                return float(model.loss_) if workload.is_classifier else None

            return run

        return setup


RUNNERS: dict[str, Callable[[], Runner]] = {
    "numba": lambda: NnjitRunner("numba"),
    "plain": PlainNumpyRunner,
    "numpy": lambda: NnjitRunner("numpy"),
    "torch": TorchRunner,
    "sklearn": SklearnRunner,
}
PEERS = ("plain", "numpy", "torch", "sklearn")


def available_runners(names: list[str]) -> tuple[list[Runner], dict[str, str]]:
    """The runners among ``names`` that can run, and a note for each that cannot."""
    runners, missing = [], {}
    for name in names:
        runner = RUNNERS[name]()
        if runner.is_available():
            runners.append(runner)
        else:
            package = _pip_name(name)
            missing[name] = f"{package} is not installed (pip install {package})"
    return runners, missing


def _pip_name(name: str) -> str:
    return {"sklearn": "scikit-learn"}.get(name, name)
