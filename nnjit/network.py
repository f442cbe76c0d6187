"""The :class:`Network` class: a thin Python shell around the kernels."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnjit.backends import BACKENDS
from nnjit.errors import DivergenceError
from nnjit.history import History
from nnjit.layout import build_layout
from nnjit.reference import weight_penalty
from nnjit.sgd import SGDConfig
from nnjit.validation import (
    check_bool,
    check_dtype,
    check_inputs,
    check_int,
    check_params,
    check_real,
    check_targets,
    make_rng,
)

# With a progress bar an epoch runs in about this many compiled calls.
_PROGRESS_UPDATES = 50
# Without one, small data sets run this many samples' worth of epochs per call.
_SAMPLES_PER_CALL = 1 << 16


class Network:
    """A multilayer perceptron trained by mini-batch SGD in compiled kernels.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, h1, ..., n_out]``: at least 2 ints, each >= 1.
    hidden : str or sequence of str, default "relu"
        Activation of every hidden layer, or one name per hidden layer:
        ``identity``, ``relu``, ``leaky_relu`` (slope 0.01), ``sigmoid``, ``tanh``.
    output : str, default "identity"
        Activation of the output layer: any hidden one or ``softmax``.
    loss : {"mse", "cross_entropy"}, default "mse"
        ``cross_entropy`` needs a ``softmax`` or ``sigmoid`` output.
    dtype : {"float64", "float32"}, default "float64"
    init : "auto", "he", "xavier" or float, default "auto"
        Weight initialisation: He ``N(0, 2/n_in)`` for ReLU-like layers and
        Glorot ``N(0, 2/(n_in+n_out))`` otherwise, or ``N(0, init**2)``.
        Biases start at zero.
    seed : int, optional
        Seeds the initial weights and, when ``fit`` gets no seed, the shuffling.
    backend : {"numba", "numpy"}, default "numba"
        Compiled kernels, or the same mathematics in plain NumPy.

    Attributes
    ----------
    params : ndarray, shape (n_params,)
        All parameters in one flat vector; ``weights`` and ``biases`` are views.
    weights : tuple of ndarray
        ``weights[i]`` has shape ``(sizes[i], sizes[i+1])``; a layer is ``A @ W + b``.
    biases : tuple of ndarray
        ``biases[i]`` has shape ``(sizes[i+1],)``.

    Examples
    --------
    >>> import numpy as np, nnjit
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> net = nnjit.Network([2, 8, 1], "tanh", "sigmoid", "cross_entropy", seed=0)
    >>> history = net.fit(X, [0, 1, 1, 0], epochs=2000, batch_size=4, lr=0.5)
    >>> net.predict(X)
    array([0, 1, 1, 0])
    """

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: str | Sequence[str] = "relu",
        output: str = "identity",
        loss: str = "mse",
        *,
        dtype: Any = "float64",
        init: str | float = "auto",
        seed: int | None = None,
        backend: str = "numba",
    ) -> None:
        self._layout = build_layout(sizes, hidden, output, loss)
        self._dtype = check_dtype(dtype)
        self._check_backend(backend)
        std = _init_stds(self._layout.sizes, self._layout.activations, init)
        self._seed = seed
        self._rng = make_rng(seed)
        self._params = np.zeros(self._layout.n_params, dtype=self._dtype)
        weights, biases = self._layout.views(self._params)
        self.weights = tuple(weights)
        self.biases = tuple(biases)
        for W, s in zip(self.weights, std, strict=True):
            W[:] = self._rng.normal(0.0, s, size=W.shape)
        self.backend = backend

    # -- description ---------------------------------------------------------

    @property
    def sizes(self) -> list[int]:
        """Layer widths ``[n_in, ..., n_out]``."""
        return list(self._layout.sizes)

    @property
    def hidden(self) -> tuple[str, ...]:
        """Activation of each hidden layer."""
        return self._layout.activations[:-1]

    @property
    def output(self) -> str:
        """Activation of the output layer."""
        return self._layout.output

    @property
    def loss_name(self) -> str:
        """``"mse"`` or ``"cross_entropy"``."""
        return self._layout.loss

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def n_params(self) -> int:
        return self._layout.n_params

    @property
    def is_classifier(self) -> bool:
        """True for cross-entropy networks."""
        return self._layout.is_classifier

    @property
    def params(self) -> np.ndarray:
        """All parameters, flat; assigning copies into the same buffer."""
        return self._params

    @params.setter
    def params(self, values: Any) -> None:
        self._params[:] = check_params(values, self.n_params, self._dtype)

    @property
    def backend(self) -> str:
        """``"numba"`` or ``"numpy"``; may be switched at any time."""
        return self._backend.name

    @backend.setter
    def backend(self, name: str) -> None:
        self._check_backend(name)
        self._backend = BACKENDS[name](self._layout, self._dtype)

    # -- copies and pickles --------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The state without ``weights`` and ``biases``, which are views into ``params``.

        Pickle and ``copy.deepcopy`` copy each array on its own, so the views
        would come back as arrays of their own that neither follow nor change
        the parameters; :meth:`__setstate__` makes them views again.
        """
        state = self.__dict__.copy()
        del state["weights"], state["biases"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        weights, biases = self._layout.views(self._params)
        self.weights = tuple(weights)
        self.biases = tuple(biases)

    @staticmethod
    def _check_backend(name: str) -> None:
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; valid choices are {', '.join(BACKENDS)}")

    def __repr__(self) -> str:
        hidden = self.hidden[0] if len(set(self.hidden)) == 1 else list(self.hidden)
        return (
            f"Network({self.sizes}, hidden={hidden!r}, output={self.output!r}, "
            f"loss={self.loss_name!r}, dtype={self.dtype.name!r}, backend={self.backend!r})"
        )

    # -- evaluation ----------------------------------------------------------

    def _inputs(self, X: Any, name: str = "X", finite: bool = True) -> np.ndarray:
        return check_inputs(X, self._layout.sizes[0], self._dtype, name, finite)

    def _data(
        self, X: Any, y: Any, prefix: str = "", finite: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        X = self._inputs(X, prefix + "X", finite)
        return X, check_targets(y, self._layout, X.shape[0], self._dtype, prefix + "y")

    def forward(self, X: Any) -> np.ndarray:
        """Output activations, shape ``(N, n_out)``."""
        # The backend checks X for NaN and infinity (the numba backend as it
        # reads each chunk, without a pass of its own), as below.
        return self._backend.output(self._params, self._inputs(X, finite=False), check=True)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels for classifiers, outputs for regressors.

        Softmax + cross-entropy: int labels ``(N,)``.  Sigmoid + cross-entropy:
        0/1 ints, ``(N,)`` when there is one output.  Otherwise the outputs,
        ``(N,)`` when there is one output.
        """
        out = self.forward(X)
        if self.is_classifier and self.output == "softmax":
            return out.argmax(axis=1)
        if self.is_classifier:
            out = (out >= 0.5).astype(np.int64)
        return out[:, 0] if out.shape[1] == 1 else out

    def loss(self, X: Any, y: Any, l2: float = 0.0) -> float:
        """Mean data loss over the samples plus ``(l2/2) sum ||W||^2``."""
        X, Y = self._data(X, y, finite=False)
        return self._backend.evaluate(self._params, X, Y, check_real(l2, "l2"), check=True)[0]

    def loss_and_grad(
        self, params: Any, X: Any, y: Any, l2: float = 0.0
    ) -> tuple[float, np.ndarray]:
        """Loss and flat gradient at ``params``; the model's own parameters stay as they are.

        Fits ``scipy.optimize.minimize(fun, x0, args=(X, y), jac=True)``.

        Returns
        -------
        loss : float
        grad : ndarray, shape (n_params,)
        """
        params = check_params(params, self.n_params, self._dtype)
        X, Y = self._data(X, y, finite=False)  # the backend checks X
        return self._backend.loss_and_grad(params, X, Y, check_real(l2, "l2"))

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """``{"loss": ...}``, with ``"accuracy"`` for classifiers."""
        X, Y = self._data(X, y, finite=False)
        return self._evaluate(X, Y, 0.0, check=True)

    def _evaluate(
        self, X: np.ndarray, Y: np.ndarray, l2: float, check: bool = False
    ) -> dict[str, float]:
        """Loss and accuracy in one pass over ``X``; ``check`` it for NaN and infinity."""
        loss, accuracy = self._backend.evaluate(self._params, X, Y, l2, check)
        result = {"loss": loss}
        if self.is_classifier:
            result["accuracy"] = accuracy
        return result

    def score(self, X: Any, y: Any) -> float:
        """Accuracy for classifiers, R² (averaged over outputs) for regressors."""
        if self.is_classifier:
            return self.evaluate(X, y)["accuracy"]
        X, Y = self._data(X, y, finite=False)
        # In float64 throughout: float32 squares overflow from 1.9e19 on.
        Y = Y.astype(np.float64, copy=False)
        out = self._backend.output(self._params, X, check=True).astype(np.float64, copy=False)
        residual = ((Y - out) ** 2).sum(axis=0)
        total = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), residual == 0)
        return float(r2.mean())

    # -- training ------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        l2: float = 0.0,
        lr_decay: float = 1.0,
        shuffle: bool = True,
        seed: int | None = None,
        validation_data: tuple[Any, Any] | None = None,
        verbose: bool = False,
    ) -> History:
        """Train by mini-batch SGD (momentum and Nesterov as ``torch.optim.SGD``).

        Parameters
        ----------
        X : array-like, shape (N, n_in)
        y : array-like
            ``(N,)`` or ``(N, n_out)``; integer labels, or one-hot or
            probability rows (values in [0, 1]), for a softmax classifier;
            values in [0, 1] for a sigmoid classifier.
        epochs : int, default 10
        batch_size : int, default 32
            The last batch of an epoch may be smaller; it is used too.
        lr : float, default 0.01
            Learning rate; epoch ``e`` (from 0) uses ``lr * lr_decay**e``.
        momentum : float, default 0
            ``v <- momentum v + g``, ``p <- p - lr v``; ``v`` starts at zero.
        nesterov : bool, default False
            ``p <- p - lr (g + momentum v)``; needs ``momentum > 0``.
        l2 : float, default 0
            Adds ``(l2/2) sum ||W||^2`` (weights only) to the loss.
        lr_decay : float, default 1
        shuffle : bool, default True
            Draw a new sample order every epoch.
        seed : int, optional
            Seeds the shuffling; without it the network's own generator is used.
        validation_data : (X_val, y_val), optional
            Evaluated at the end of every epoch.
        verbose : bool, default False
            Show a progress bar per epoch with the running loss.

        Returns
        -------
        History

        Raises
        ------
        ValueError
            For bad data or hyper-parameters, before anything changes.
        DivergenceError
            When the training loss stops being finite; the network then holds
            the parameters from the end of the last finite epoch.

        Notes
        -----
        With the ``numba`` backend, fits and predictions whose matrix
        products are split over threads run on fewer threads while other
        programs keep the cores busy (see :mod:`nnjit.contention`;
        ``NNJIT_ADAPTIVE_THREADS=0`` turns it off).  The results are the same
        on any number of threads.
        """
        # The backend checks X for NaN and infinity in the first epoch (the
        # numba backend as it reads each batch); a progress bar shows batches
        # as they run, so with one X is checked first.
        check = not verbose
        X, Y = self._data(X, y, finite=not check)
        validation = None if validation_data is None else self._validation(validation_data)
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        lr = check_real(lr, "lr", positive=True)
        momentum = check_real(momentum, "momentum")
        l2 = check_real(l2, "l2")
        lr_decay = check_real(lr_decay, "lr_decay", positive=True)
        nesterov = check_bool(nesterov, "nesterov")
        shuffle = check_bool(shuffle, "shuffle")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        rng = self._rng if seed is None else make_rng(seed)
        rng_state = rng.bit_generator.state

        N = X.shape[0]
        batch_size = min(batch_size, N)
        n_batches = math.ceil(N / batch_size)
        # With one batch per epoch the order of the samples cannot change a step.
        shuffle = shuffle and n_batches > 1
        per_call = 1 if validation is not None or verbose else max(1, _SAMPLES_PER_CALL // N)
        dt = self._dtype.type
        cfg = SGDConfig(dt(lr), dt(momentum), bool(nesterov), dt(l2))
        state = self._backend.start_fit(self._params, batch_size)
        history = History()
        epoch = 0
        with self._backend.session(batch_size, plain=momentum == 0):
            while epoch < epochs:
                count = min(per_call, epochs - epoch)
                # A constant rate needs no Python loop (W1 runs a thousand
                # epochs); np.power would round lr_decay**e unlike Python's **.
                if lr_decay == 1:
                    lrs = np.full(count, lr, dtype=dt)
                else:
                    steps = range(epoch, epoch + count)
                    lrs = np.array([lr * lr_decay**e for e in steps], dtype=dt)
                if shuffle:
                    orders = np.stack([rng.permutation(N) for _ in range(count)])
                else:
                    orders = np.arange(N)[None, :]
                start = time.perf_counter()
                if verbose:
                    done, stats = self._verbose_epoch(
                        state, (X, Y, orders[0]), batch_size, cfg._replace(lr=lrs[0]), epoch, epochs
                    )
                else:
                    try:
                        done, stats = self._backend.train_epochs(
                            self._params, state, (X, Y, orders), (lrs, batch_size), cfg, check
                        )
                    except ValueError:  # a NaN or infinity in X: nothing has changed
                        rng.bit_generator.state = rng_state
                        raise
                    check = False
                elapsed = time.perf_counter() - start
                loss_sum, correct, seen, penalty = stats[:done].T
                history.loss.extend((loss_sum / seen + penalty).tolist())
                history.epoch_time.extend([elapsed / count] * done)
                if self.is_classifier:
                    history.accuracy.extend((correct / seen).tolist())
                if done < count:
                    raise DivergenceError(epoch + done + 1, float(lrs[done]))
                if validation is not None:
                    scores = self._evaluate(*validation, l2)
                    history.val_loss.append(scores["loss"])
                    if self.is_classifier:
                        history.val_accuracy.append(scores["accuracy"])
                epoch += count
        return history

    def _validation(self, validation_data: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError("validation_data must be a pair (X_val, y_val)") from None
        return self._data(X_val, y_val, prefix="validation_data ")

    def _verbose_epoch(self, state, data, batch_size, cfg, epoch, epochs):
        """One epoch in slices of batches, with a progress bar and the running loss."""
        from tqdm.auto import tqdm

        n_batches = math.ceil(data[2].size / batch_size)
        step = max(1, math.ceil(n_batches / _PROGRESS_UPDATES))
        stats = np.zeros((1, 4))
        kept = self._params.copy()
        try:
            with tqdm(
                total=data[2].size, desc=f"epoch {epoch + 1}/{epochs}", unit="sample", leave=False
            ) as bar:
                if not self._backend.kernels_ready:
                    notice = f"first call: compiling or loading the {self._dtype} kernels"
                    bar.set_postfix_str(notice)
                for first in range(0, n_batches, step):
                    batches = (first, min(first + step, n_batches), batch_size)
                    *part, finite = self._backend.run_batches(
                        self._params, state, data, batches, cfg
                    )
                    stats[0, :3] += part
                    bar.set_postfix(loss=f"{stats[0, 0] / max(stats[0, 2], 1):.4g}", refresh=False)
                    bar.update(part[2])
                    if not finite:
                        break
        except BaseException:
            self._params[:] = kept  # never leave a half-updated network
            raise
        if not finite or not np.isfinite(self._params).all():
            self._params[:] = kept
            return 0, stats
        stats[0, 3] = weight_penalty(self._layout, self._params, cfg.l2)
        return 1, stats

    # -- persistence ---------------------------------------------------------

    def save(self, path: Any) -> str:
        """Write the model to one ``.npz`` file (atomically); returns its path."""
        from nnjit.serialization import save

        return save(self, path)


def _init_stds(sizes: tuple[int, ...], activations: tuple[str, ...], init: Any) -> list[float]:
    """Standard deviation of each layer's initial weights."""
    if isinstance(init, str):
        if init not in ("auto", "he", "xavier"):
            raise ValueError(
                f"unknown init {init!r}; valid choices are auto, he, xavier or a float std"
            )
        stds = []
        for n_in, n_out, name in zip(sizes, sizes[1:], activations, strict=False):
            he = init == "he" or (init == "auto" and name in ("relu", "leaky_relu"))
            stds.append(math.sqrt(2.0 / n_in) if he else math.sqrt(2.0 / (n_in + n_out)))
        return stds
    std = check_real(init, "init")
    return [std] * (len(sizes) - 1)
