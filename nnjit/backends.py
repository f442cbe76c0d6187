"""The two backends behind :class:`nnjit.Network`, with one interface.

``numba`` runs the compiled kernels; ``numpy`` (:mod:`nnjit.reference`) runs
the same mathematics in plain NumPy.  Both take C-contiguous arrays of the
model's dtype, checked by the caller, except that ``train_epochs(check=True)``
and ``loss_and_grad`` check ``X`` for NaN and infinity themselves: the numba
backend as it reads each batch, without a pass over the data of its own.
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np

from nnjit import epoch
from nnjit.blas import single_threaded
from nnjit.dense import BLAS_MIN_ROWS, BLAS_MIN_WEIGHTS
from nnjit.layout import Layout
from nnjit.propagation import Workspace, make_workspace, weight_penalty
from nnjit.reference import NumpyBackend
from nnjit.sgd import SGDConfig
from nnjit.validation import check_finite

# Rows per chunk for inference and loss evaluation: bounds the buffers.
CHUNK_ROWS = 4096


class NumbaBackend:
    """Compiled implementation of the backend interface."""

    name = "numba"

    def __init__(self, layout: Layout, dtype: np.dtype) -> None:
        self.layout = layout
        self.dtype = dtype

    def _model(self, params: np.ndarray) -> tuple:
        return params, self.layout.table, self.layout.loss_code

    def _workspace(self, rows: int) -> Workspace:
        return make_workspace(self.layout.sizes, max(rows, 1), self.dtype)

    def _blas_pinned(self, rows: int) -> contextlib.AbstractContextManager:
        """BLAS held to one thread, if a product of a batch of ``rows`` goes to BLAS.

        Pinning costs about 15 µs per call, more than the whole of a small
        network's pass; :func:`nnjit.dense.use_blas` decides the same way.
        """
        sizes = self.layout.sizes
        if rows >= BLAS_MIN_ROWS and any(
            n_in * n_out >= BLAS_MIN_WEIGHTS for n_in, n_out in itertools.pairwise(sizes)
        ):
            return single_threaded()
        return contextlib.nullcontext()

    def output(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.layout.sizes[-1]), dtype=self.dtype)
        self._evaluate(params, X, out[:0], out)
        return out

    def _evaluate(self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, out: np.ndarray) -> float:
        work = self._workspace(min(X.shape[0], CHUNK_ROWS))
        with self._blas_pinned(work.inputs.shape[0]):
            return epoch.evaluate(self._model(params), X, Y, out, work)

    def loss(self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, l2: float) -> float:
        data = self._evaluate(params, X, Y, Y[:0])
        if l2:
            data += weight_penalty(params, self.layout.table, self.dtype.type(l2))
        return float(data)

    def loss_and_grad(
        self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, l2: float
    ) -> tuple[float, np.ndarray]:
        grad = np.empty_like(params)
        dt = self.dtype.type
        N = X.shape[0]
        # One epoch of one batch of every sample, with no step.
        cfg = SGDConfig(dt(0), dt(0), False, dt(l2))
        # Without steps the parameters never change: nothing to keep a copy of.
        state = {"velocity": grad, "grad": grad, "kept": grad, "work": self._workspace(N)}
        with self._blas_pinned(N):
            _, stats = self._train(
                params, state, (X, Y, np.arange(N)[None]), cfg, (0, 1), N, False, check=True
            )
        return float(stats[0, 0] / N + stats[0, 3]), grad

    def session(self) -> contextlib.AbstractContextManager:
        """Context for a run of calls: BLAS pinned to one thread, its idle workers stopped."""
        return single_threaded(stop_waiting=True)

    def start_fit(self, params: np.ndarray, batch_size: int) -> dict:
        return {
            "velocity": np.zeros_like(params),
            "grad": np.empty_like(params),
            "kept": np.empty_like(params),
            "work": self._workspace(batch_size),
        }

    def train_epochs(
        self,
        params: np.ndarray,
        state: dict,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        schedule: tuple[np.ndarray, int],
        cfg: SGDConfig,
        check: bool = False,
    ) -> tuple[int, np.ndarray]:
        """Whole epochs in one compiled call; see :func:`nnjit.epoch.train_epochs`.

        With ``check``, a NaN or infinity in ``X`` raises ValueError, with the
        parameters back where they were.
        """
        lrs, batch_size = schedule
        n_batches = -(-data[0].shape[0] // batch_size)
        return self._train(params, state, data, cfg, (0, n_batches), batch_size, True, lrs, check)

    def run_batches(
        self,
        params: np.ndarray,
        state: dict,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        batches: tuple[int, int, int],
        cfg: SGDConfig,
    ) -> tuple[float, int, int, bool]:
        """Mini-batches ``first .. stop - 1`` of one epoch in one compiled call."""
        first, stop, batch_size = batches
        X, Y, order = data
        done, stats = self._train(
            params, state, (X, Y, order[None]), cfg, (first, stop), batch_size
        )
        return float(stats[0, 0]), int(stats[0, 1]), int(stats[0, 2]), done == 1

    def _train(
        self,
        params: np.ndarray,
        state: dict,
        data: tuple[np.ndarray, np.ndarray, np.ndarray],
        cfg: SGDConfig,
        batches: tuple[int, int],
        batch_size: int,
        step: bool = True,
        lrs: np.ndarray | None = None,
        check: bool = False,
    ) -> tuple[int, np.ndarray]:
        if lrs is None:
            lrs = np.array([cfg.lr], dtype=self.dtype)
        stats = np.zeros((lrs.size, 4))
        optimizer = (cfg, state["velocity"], state["grad"])
        schedule = (lrs, batch_size, batches, step, check)
        done = epoch.train_epochs(
            self._model(params), data, optimizer, state["work"], schedule, stats, state["kept"]
        )
        if done == epoch.BAD_INPUT:
            check_finite(data[0], "X", self.dtype)
            raise AssertionError("the compiled check found a non-finite input that NumPy did not")
        return int(done), stats


BACKENDS = {"numba": NumbaBackend, "numpy": NumpyBackend}
