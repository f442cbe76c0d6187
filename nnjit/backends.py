"""The two backends behind :class:`nnjit.Network`, with one interface.

``numba`` runs the compiled kernels; ``numpy`` (:mod:`nnjit.reference`) runs
the same mathematics in plain NumPy.  Both take aligned, C-contiguous,
writable arrays of the model's dtype, checked by the caller (numba would
compile its whole entry point again for any other kind of array), except that
``loss_and_grad`` and the methods given ``check=True`` check ``X`` for NaN and
infinity themselves: the numba backend as it reads each batch, without a pass
over the data of its own.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np

from nnjit import epoch
from nnjit.blas import single_threaded
from nnjit.contention import fewer_threads_when_busy
from nnjit.dense import (
    BLAS_MIN_ROWS,
    BLAS_MIN_WEIGHTS,
    PARALLEL_MIN_WORK,
    SPLITS,
    TRANSPOSED,
    blocks_here,
    split_buffer_size,
    splits_any,
)
from nnjit.kernel_cache import cache_directory, cache_lock
from nnjit.kernel_calls import (
    FORWARD_ROWS,
    INPUT_GRAD_ROWS,
    OUTER_ROWS,
    PARALLEL_INPUTS,
    PARALLEL_TRANSPOSED,
    TABLE_TYPE,
    TRANSPOSED_ROWS,
)
from nnjit.kernel_compile import compile_kernels, kernel_table
from nnjit.layout import Layout
from nnjit.propagation import make_workspace
from nnjit.reference import NumpyBackend
from nnjit.sgd import SGDConfig
from nnjit.transposed import transpose_first, transposed_blocks, transposes_first
from nnjit.validation import check_finite
from nnjit.workspace import Workspace

# Rows per chunk for inference and loss evaluation: bounds the buffers.
CHUNK_ROWS = 4096
# A call that takes no steps, with at most this many rows per chunk, reuses
# the buffers of the last such call of its thread if they have the same shapes
# (see NumbaBackend._call_workspace).
REUSED_ROWS = 256
# Each thread's last such buffers: (key, Workspace).
_reused = threading.local()
# The most plans (see NumbaBackend._planned) a backend keeps.
MAX_PLANS = 256
# How a call holds BLAS (see NumbaBackend._blas_pinned).
UNPINNED, PINNED, PINNED_AND_ADAPTIVE = 0, 1, 2

T = TypeVar("T")


# The dtypes whose kernels this process has compiled or loaded from the cache.
_KERNELS_READY: set[np.dtype] = set()
# The optional kernels (nnjit.kernel_compile.OPTIONAL) each dtype's table holds.
_OPTIONAL_READY: dict[np.dtype, set[int]] = {}


class NumbaBackend:
    """Compiled implementation of the backend interface."""

    name = "numba"

    def __init__(self, layout: Layout, dtype: np.dtype) -> None:
        self.layout = layout
        self.dtype = dtype
        self._plans: dict[tuple, object] = {}

    def _planned(self, plan: Callable[..., T], *args: object) -> T:
        """``plan(*args)``, made once per plan, ``args`` and the process's blocks.

        The blocks: :func:`blocks_here`.  What a call does with its batch
        sizes depends on them and the layer sizes alone.  For a prediction
        of ten samples through W3's network, working it out took 8.5 µs of
        the call's 0.1-0.2 ms, and looking it up 1.4 µs.
        """
        key = (plan.__name__, *args, blocks_here())
        if key not in self._plans:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan(*args)
        return self._plans[key]

    @property
    def kernels_ready(self) -> bool:
        """Whether the next call runs at once: the kernels are compiled or loaded in this process.

        Otherwise it first compiles them (7-14 s on a 2-core machine)
        or loads them from numba's cache on disk (well under a second).
        """
        return self.dtype in _KERNELS_READY

    def _model(self, params: np.ndarray) -> tuple:
        return params, self.layout.table, self.layout.loss_code

    def _workspace(self, rows: int) -> Workspace:
        return make_workspace(self.layout.sizes, max(rows, 1), self.dtype)

    def _call_workspace(self, rows: int) -> Workspace:
        """Buffers for a call that takes no steps: a prediction, a loss or a gradient.

        Up to ``REUSED_ROWS`` rows, those of the thread's last such call if
        it had the same layer sizes, rows and dtype: allocating them took
        15 µs, a tenth of a prediction of ten samples through W3's network.
        Such a call reads nothing that an earlier one left in them: it sets
        its options in ``scal`` (:meth:`_set_options`), and its weights'
        pending factors in ``scal`` stay 1 without steps.  A compiled call
        never runs inside another in the same thread, and other threads have
        buffers of their own.
        """
        if rows > REUSED_ROWS:
            return self._workspace(rows)
        key = (self.layout.sizes, rows, self.dtype, blocks_here())
        last = getattr(_reused, "last", None)
        if last is None or last[0] != key:
            last = _reused.last = (key, self._workspace(rows))
        return last[1]

    def _blas_weights(self, rows: int) -> list[int]:
        """Weights of each layer whose products of a batch of ``rows`` go to BLAS.

        See ``nnjit.dense.use_blas``.
        """
        if rows < BLAS_MIN_ROWS:
            return []
        weights = (n_in * n_out for n_in, n_out in itertools.pairwise(self.layout.sizes))
        return [w for w in weights if w >= BLAS_MIN_WEIGHTS]

    def _transposed_blocks(self, rows: int, training: bool, plain: bool = False) -> int:
        """0 unless training with batches of ``rows`` keeps the first layer transposed.

        Then the parallel blocks its products take, 1 or more (see
        :mod:`nnjit.transposed`); the compiled code reads it from
        ``scal[TRANSPOSED]``.  ``plain``: training with plain SGD.
        """
        sizes = self.layout.sizes
        if not (training and transposes_first(sizes, rows)):
            return 0
        return transposed_blocks(sizes, rows, blocks_here(), self.dtype, plain)

    def _split_sizes(self, rows: int, training: bool) -> tuple[tuple[int, ...], bool]:
        """The layer sizes whose products batches of ``rows`` may split over their inputs.

        All of them, except a first layer that training keeps transposed
        (see :mod:`nnjit.transposed`), whose products never split; and
        whether they start with the first layer.
        """
        sizes = self.layout.sizes
        return (sizes[1:], False) if self._transposed_blocks(rows, training) else (sizes, True)

    def _blas_pinned(
        self, rows: int, stop_waiting: bool = False, training: bool = False, plain: bool = False
    ) -> contextlib.AbstractContextManager:
        """BLAS held to one thread, if a product of a batch of ``rows`` goes to BLAS.

        Pinning costs about 15 µs per call, more than the whole of a small
        network's pass.  With ``stop_waiting`` BLAS's idle workers are also
        stopped (see :func:`nnjit.blas.single_threaded`).  If a product may be
        split into parallel blocks (``nnjit.dense.n_blocks``: BLAS products of
        at least ``PARALLEL_MIN_WORK`` multiply-adds; or split over its inputs,
        ``nnjit.dense.split_blocks``), the call also runs on
        fewer threads while other programs keep the cores busy (see
        :mod:`nnjit.contention`), and so does training whose first layer,
        kept transposed, is split into blocks (:meth:`_transposed_blocks`).
        ``training``: the calls train, with ``plain`` SGD if so.
        """
        pinning = self._planned(self._pinning, rows, training, plain)
        if pinning == UNPINNED:
            return contextlib.nullcontext()
        if pinning == PINNED:
            return single_threaded(stop_waiting=stop_waiting)
        return _PinnedBesideOtherWork(stop_waiting)

    def _pinning(self, rows: int, training: bool, plain: bool) -> int:
        """How :meth:`_blas_pinned` holds BLAS for a batch of ``rows``."""
        weights = self._blas_weights(rows)
        if not weights:
            return UNPINNED
        blocks = blocks_here()
        layers, first = self._split_sizes(rows, training)
        splits = split_buffer_size(layers, rows, blocks, first) > 0
        split_first = self._transposed_blocks(rows, training, plain) > 1
        if blocks == 1 or (rows * max(weights) < PARALLEL_MIN_WORK and not (splits or split_first)):
            return PINNED
        return PINNED_AND_ADAPTIVE

    def output(self, params: np.ndarray, X: np.ndarray, check: bool = False) -> np.ndarray:
        out = np.empty((X.shape[0], self.layout.sizes[-1]), dtype=self.dtype)
        self._evaluate(params, X, out[:0], out, 0.0, check)
        return out

    def evaluate(
        self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, l2: float, check: bool = False
    ) -> tuple[float, float]:
        stats = self._evaluate(params, X, Y, self._no_outputs, l2, check)
        N = max(X.shape[0], 1)
        return float(stats[0, 0] / N + stats[0, 3]), float(stats[0, 1] / N)

    def _evaluate(
        self,
        params: np.ndarray,
        X: np.ndarray,
        Y: np.ndarray,
        out: np.ndarray,
        l2: float,
        check: bool,
        loading: bool = False,
    ) -> np.ndarray:
        """The stats of one pass over ``X``: losses against ``Y`` if it has rows.

        The outputs are written to ``out`` if it has a row per sample.
        ``loading``: see :meth:`_run`.
        """
        N = X.shape[0]
        rows = max(min(N, CHUNK_ROWS), 1)
        data = (X, Y, np.arange(N)[None], out)
        batches = (0, -(-N // rows))
        state, cfg, task = self._state(rows), self._config(l2), (epoch.EVALUATE, check)
        with self._blas_pinned(rows):
            return self._run(params, state, data, cfg, batches, rows, task, loading=loading)[1]

    def loss_and_grad(
        self, params: np.ndarray, X: np.ndarray, Y: np.ndarray, l2: float
    ) -> tuple[float, np.ndarray]:
        N = X.shape[0]
        state = self._state(N)
        # Without steps the parameters never change: nothing to keep a copy of.
        grad = state["grad"] = np.empty_like(params)
        # One epoch of one batch of every sample, with no step.
        data = (X, Y, np.arange(N)[None], self._no_outputs)
        task = (epoch.GRADIENT, True)
        with self._blas_pinned(N):
            _, stats = self._run(params, state, data, self._config(l2), (0, 1), N, task)
        return float(stats[0, 0] / N + stats[0, 3]), grad

    def session(self, batch_size: int, plain: bool = False) -> contextlib.AbstractContextManager:
        """Context for a fit: the kernels' BLAS pinned to one thread, NumPy's idle workers stopped.

        Only if a product of a mini-batch of ``batch_size`` rows goes to BLAS:
        pinning and stopping took 0.3-0.5 ms when they stopped every
        library's workers, a tenth of W1's whole fit, and a median 12 µs
        since they leave the kernels' library running (see
        :func:`nnjit.blas.stop_waiting_threads`).  See :meth:`_blas_pinned`.
        ``plain``: the fit uses plain SGD.
        """
        return self._blas_pinned(batch_size, stop_waiting=True, training=True, plain=plain)

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
        """Whole epochs in one compiled call; see :func:`nnjit.epoch.run_epochs`.

        With ``check``, a NaN or infinity in ``X`` raises ValueError, with the
        parameters back where they were.
        """
        lrs, batch_size = schedule
        n_batches = -(-data[0].shape[0] // batch_size)
        data = (*data, self._no_outputs)
        task = (epoch.TRAIN, check)
        return self._run(params, state, data, cfg, (0, n_batches), batch_size, task, lrs)

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
        data = (X, Y, order[None], self._no_outputs)
        task = (epoch.TRAIN, False)
        done, stats = self._run(params, state, data, cfg, (first, stop), batch_size, task)
        return float(stats[0, 0]), int(stats[0, 1]), int(stats[0, 2]), done == 1

    @property
    def _no_outputs(self) -> np.ndarray:
        return np.empty((0, self.layout.sizes[-1]), dtype=self.dtype)

    def _config(self, l2: float) -> SGDConfig:
        dt = self.dtype.type
        return SGDConfig(dt(0), dt(0), False, dt(l2))

    def _state(self, rows: int) -> dict:
        """The state of a call that takes no steps, with buffers for ``rows`` rows."""
        unused = np.empty(0, dtype=self.dtype)
        work = self._call_workspace(rows)
        return {"velocity": unused, "grad": unused, "kept": unused, "work": work}

    def _run(
        self,
        params: np.ndarray,
        state: dict,
        data: tuple[np.ndarray, ...],
        cfg: SGDConfig,
        batches: tuple[int, int],
        batch_size: int,
        task: tuple[int, bool],
        lrs: np.ndarray | None = None,
        *,
        loading: bool = False,
    ) -> tuple[int, np.ndarray]:
        """:func:`nnjit.epoch.run_epochs` with ``task = (task, check)``.

        The first call of a dtype in this process first loads the kernels
        (see :meth:`_load_kernels`).  With ``loading`` it only compiles or
        loads the entry point for these arguments, and returns ``(0, None)``.
        """
        needed = self._set_options(state["work"], data[0].shape[0], batch_size, task[0], cfg)
        if not (loading or self.kernels_ready):
            self._load_kernels(needed)
        elif not (loading or _OPTIONAL_READY[self.dtype].issuperset(needed)):
            with cache_lock(cache_directory()):
                kernel_table(self.dtype, needed)
            _OPTIONAL_READY[self.dtype].update(needed)
        if lrs is None:
            lrs = np.array([cfg.lr], dtype=self.dtype)
        stats = np.zeros((lrs.size, 4))
        optimizer = (cfg, state["velocity"], state["grad"])
        schedule = (lrs, batch_size, batches, *task)
        args = (self._model(params), data, optimizer, state["work"], schedule, stats, state["kept"])
        if loading:
            epoch.run_epochs.compile((TABLE_TYPE, *(numba.typeof(arg) for arg in args)))
            return 0, None
        # The first layer's weights stay transposed for the call.
        transposed = TRANSPOSED_ROWS in needed
        if transposed:
            transpose_first(params, self.layout)
        try:
            done = epoch.run_epochs(kernel_table(self.dtype, needed), *args)
        finally:
            if transposed:
                transpose_first(params, self.layout, back=True)
        if done == epoch.BAD_INPUT:
            check_finite(data[0], "X", self.dtype)
            raise AssertionError("the compiled check found a non-finite input that NumPy did not")
        return int(done), stats

    def _set_options(
        self, work: Workspace, n_samples: int, batch_size: int, task: int, cfg: SGDConfig
    ) -> tuple[int, ...]:
        """Set the options of a call in ``work.scal``; the optional kernels they need.

        Whether the call keeps the first layer's weights transposed (training
        with batches that qualify: see :mod:`nnjit.transposed`) and in how
        many parallel blocks it runs them, and whether a batch of it splits a
        product over its inputs (see :func:`nnjit.dense.split_blocks`): only
        then are their kernels needed.  The loops of the products too small
        for BLAS are needed only if a batch of the call has one.
        """
        batches = (batch_size, n_samples % batch_size)
        rows = work.inputs.shape[0]
        training, plain = task == epoch.TRAIN, bool(cfg.momentum == 0)
        partial = work.partial.size > 0
        splits, blocks, needed = self._planned(
            self._options, rows, batches, training, plain, partial
        )
        work.scal[SPLITS] = splits
        work.scal[TRANSPOSED] = blocks
        return needed

    def _options(
        self, rows: int, batches: tuple[int, int], training: bool, plain: bool, partial: bool
    ) -> tuple[bool, int, tuple[int, ...]]:
        """What :meth:`_set_options` sets and returns, for buffers of ``rows`` rows.

        ``partial``: the buffers have room for products split over their
        inputs.
        """
        blocks = self._transposed_blocks(rows, training, plain)
        layers, first = self._split_sizes(rows, training)
        splits = partial and splits_any(layers, batches, blocks_here(), first)
        # A product goes to the loops if it is too small for BLAS (see
        # nnjit.dense.use_blas): a batch with too few rows, or a layer with
        # too few weights.
        n_layers = len(self.layout.sizes) - 1
        loops = any(len(self._blas_weights(B)) < n_layers for B in batches if B > 0)
        used = (
            (FORWARD_ROWS, loops),
            (INPUT_GRAD_ROWS, loops),
            (OUTER_ROWS, loops),
            (PARALLEL_INPUTS, splits),
            (TRANSPOSED_ROWS, blocks > 0),
            (PARALLEL_TRANSPOSED, blocks > 1),
        )
        return splits, blocks, tuple(which for which, use in used if use)

    def _load_kernels(self, needed: tuple[int, ...]) -> None:
        """Compile or load the kernels and the entry point for this dtype, holding the lock.

        The entry point is compiled for the one signature that every call
        uses, taken from the arguments of an evaluation of no samples, and
        the kernels for theirs (see :func:`nnjit.kernel_compile.compile_kernels`);
        the lock keeps another process from compiling into numba's cache at
        the same time (see :mod:`nnjit.kernel_cache`).  The call that follows
        then trains without holding it.  Of the kernels that only some
        networks and batch sizes need (:data:`nnjit.kernel_compile.OPTIONAL`),
        those ``needed``: the kernel of the products split over their inputs
        adds about 2 s to a cold compile.

        Raises
        ------
        RuntimeError
            With ``NUMBA_DISABLE_JIT=1``, which leaves nothing to run.
        """
        if numba.config.DISABLE_JIT:
            raise RuntimeError(
                "the numba backend needs numba's compiler, which NUMBA_DISABLE_JIT=1 turns "
                "off: unset it, or use backend='numpy', the same mathematics in plain NumPy"
            )
        X = np.empty((0, self.layout.sizes[0]), dtype=self.dtype)
        out = self._no_outputs
        params = np.zeros(self.layout.n_params, dtype=self.dtype)
        with cache_lock(cache_directory()):
            compile_kernels(
                self.dtype,
                lambda: self._evaluate(params, X, out, out, 0.0, False, loading=True),
                needed=needed,
            )
        _KERNELS_READY.add(self.dtype)
        _OPTIONAL_READY[self.dtype] = set(needed)


class _PinnedBesideOtherWork:
    """BLAS held to one thread and numba's threads fewer while other programs are busy.

    Both blocks at once, in a class rather than a generator, which added
    about 1.5 µs to every small prediction.
    """

    __slots__ = ("fewer", "pinned")

    def __init__(self, stop_waiting: bool) -> None:
        self.pinned = single_threaded(stop_waiting=stop_waiting)
        self.fewer = fewer_threads_when_busy()

    def __enter__(self) -> None:
        self.pinned.__enter__()
        try:
            self.fewer.__enter__()
        except BaseException:
            self.pinned.__exit__(None, None, None)
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.fewer.__exit__(*exc_info)
        finally:
            self.pinned.__exit__(*exc_info)


BACKENDS = {"numba": NumbaBackend, "numpy": NumpyBackend}
