"""Kernel level: one mini-batch through each backend, and one dense layer's products."""

from __future__ import annotations

import functools

import numpy as np

from nnjit import dense, reference
from nnjit import workloads as wl
from nnjit.activations import ACTIVATIONS
from nnjit.backends import BACKENDS as BACKEND_CLASSES
from nnjit.kernel_compile import kernel_table
from nnjit.layout import build_layout
from nnjit.transposed import transposed_blocks
from nnjit.validation import check_targets

from . import common


@functools.cache
def _batch(workload_id: str, backend: str, dtype: str) -> tuple:
    """Backend, parameters, one batch and ``l2``; each entry point called once."""
    workload = common.workload(workload_id)
    X, y = common.data(workload_id, dtype)
    rows = workload.batch_size
    layout = build_layout(workload.sizes, workload.hidden, workload.output, workload.loss)
    model = BACKEND_CLASSES[backend](layout, np.dtype(dtype))
    params = wl.make_network(workload, dtype, backend).params
    Xb = np.ascontiguousarray(X[:rows])
    Yb = check_targets(y[:rows], layout, rows, np.dtype(dtype), "y")
    model.output(params, Xb)
    model.evaluate(params, Xb, Yb, workload.l2)
    model.loss_and_grad(params, Xb, Yb, workload.l2)
    return model, params, Xb, Yb, workload.l2


class BackendKernels:
    """A backend's entry points on one mini-batch of a workload (the full data for W1, W2).

    ``output`` is the forward pass, ``loss`` adds the loss and the accuracy
    (the backend's ``evaluate``), ``loss_and_grad`` adds the backward pass:
    what ``scipy.optimize.minimize`` calls.
    """

    params = (common.WORKLOADS, common.BACKENDS, common.DTYPES_UNLESS_QUICK)
    param_names = ("workload", "backend", "dtype")
    timeout = common.TIMEOUT

    def setup(self, workload_id: str, backend: str, dtype: str) -> None:
        self.model, self.params, self.X, self.Y, self.l2 = _batch(workload_id, backend, dtype)

    def time_output(self, workload_id: str, backend: str, dtype: str) -> None:
        self.model.output(self.params, self.X)

    def time_loss(self, workload_id: str, backend: str, dtype: str) -> None:
        self.model.evaluate(self.params, self.X, self.Y, self.l2)

    def time_loss_and_grad(self, workload_id: str, backend: str, dtype: str) -> None:
        self.model.loss_and_grad(self.params, self.X, self.Y, self.l2)


# Representative layers of the workloads: (rows of the batch, n_in, n_out, activation).
LAYERS = {
    "W2 1x64 b201": (201, 1, 64, "leaky_relu"),
    "W3 784x30 b10": (10, 784, 30, "sigmoid"),
    "W4 784x100 b200": (200, 784, 100, "relu"),
    "W5 512x512 b256": (256, 512, 512, "relu"),
    "W6 128x128 b1": (1, 128, 128, "relu"),
}
# The layers above that are their network's first: they have no input
# gradient, and may split their products where hidden layers would not
# (see nnjit.dense.split_blocks).
FIRST_LAYERS = ("W2 1x64 b201", "W3 784x30 b10", "W4 784x100 b200")


def _layer_arrays(bench: object, layer: str, dtype: str) -> None:
    """Set on ``bench`` a layer's activation, ``X``, ``W``, ``b``, ``dZ`` and room for ``Z``."""
    rows, n_in, n_out, name = LAYERS[layer]
    rng = np.random.default_rng(0)
    bench.name = name
    bench.code = np.int64(ACTIVATIONS[name])
    bench.X = reference.ACTIVATIONS[name](rng.standard_normal((rows, n_in))).astype(dtype)
    bench.W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    bench.b = rng.standard_normal(n_out).astype(dtype)
    bench.dZ = rng.standard_normal((rows, n_out)).astype(dtype)
    bench.Z = np.empty((rows, n_out), dtype=dtype)


class DenseKernels:
    """The three matrix products of one dense layer, compiled and in plain NumPy.

    ``forward``: ``A = f(X @ W + b)``; ``input_grad``: ``(dZ @ W.T) * f'(X)``;
    ``weight_grad``: ``X.T @ dZ``.  The compiled kernels run with BLAS on one
    thread, as inside ``fit``.
    """

    params = (list(LAYERS), common.BACKENDS, common.DTYPES_UNLESS_QUICK)
    param_names = ("layer", "backend", "dtype")
    timeout = common.TIMEOUT

    def setup(self, layer: str, backend: str, dtype: str) -> None:
        rows, n_in, n_out, _ = LAYERS[layer]
        _layer_arrays(self, layer, dtype)
        self.dX = np.empty((rows, n_in), dtype=dtype)
        self.dW = np.empty((n_in, n_out), dtype=dtype)
        self.scal = dense.make_scalars(np.dtype(dtype))
        self.one = np.int64(dense.ONE)  # the slot of W's factor: 1
        self.no_rows = np.empty(0, dtype=np.int64)  # no batch to gather
        # Room for the blocks of a product split over the inputs (W3's, W4's).
        self.first = layer in FIRST_LAYERS
        size = dense.split_buffer_size((n_in, n_out), rows, dense.blocks_here(), self.first)
        self.partial = np.empty(size, dtype=dtype)
        self.kernels = kernel_table(np.dtype(dtype))
        self.limiter = common.pin_blas(backend)
        for method in (self.time_forward, self.time_input_grad, self.time_weight_grad):
            method(layer, backend, dtype)

    def teardown(self, layer: str, backend: str, dtype: str) -> None:
        if self.limiter is not None:
            self.limiter.restore_original_limits()

    def time_forward(self, layer: str, backend: str, dtype: str) -> None:
        if backend == "numba":
            args = (self.kernels, self.X, self.W, self.b, self.Z, self.code, self.scal, self.one)
            pending = (False, self.no_rows, self.Z)  # no step to take first
            rest = (self.X, self.no_rows, False, self.partial, self.first, False, pending)
            dense.dense_forward(*args, *rest)
        else:
            reference.ACTIVATIONS[self.name](self.X @ self.W + self.b)

    def time_input_grad(self, layer: str, backend: str, dtype: str) -> None:
        if backend == "numba":
            args = (self.kernels, self.dZ, self.W, self.X, self.dX, self.code, self.scal, self.one)
            dense.dense_input_grad(*args, False)  # the gradient alone, no step
        else:
            (self.dZ @ self.W.T) * reference.DERIVATIVES[self.name](self.X)

    def time_weight_grad(self, layer: str, backend: str, dtype: str) -> None:
        if backend == "numba":
            dW, one, zero = self.dW, np.int64(dense.ONE), np.int64(dense.ZERO)
            args = (self.kernels, self.X, self.dZ, dW, self.scal, one, zero, dW, dW)
            dense.dense_outer(*args, False, self.first)
        else:
            self.X.T @ self.dZ


class TransposedFirstLayer:
    """W3's first layer as ``fit`` trains it, weights stored transposed (``nnjit.transposed``).

    Split over the cores where ``fit`` splits it (in float64).

    ``forward``: ``A = f(X @ W + b)``; ``step``: the SGD step ``W <- W - lr
    X.T @ dZ``; ``step_then_forward``: both, as ``fit`` takes them with plain
    SGD (the step of the previous batch in the forward pass's parallel loop,
    see ``nnjit.propagation.backward``).  The ``numpy`` backend computes them
    in plain NumPy, with ``W`` stored as everywhere else.  The first layer has
    no input gradient.
    """

    params = (["W3 784x30 b10"], common.BACKENDS, common.DTYPES_UNLESS_QUICK)
    param_names = ("layer", "backend", "dtype")
    timeout = common.TIMEOUT

    def setup(self, layer: str, backend: str, dtype: str) -> None:
        _layer_arrays(self, layer, dtype)
        self.WT = np.ascontiguousarray(self.W.T)
        self.scal = dense.make_scalars(np.dtype(dtype))
        self.scal[dense.MINUS_LR] = -0.01
        self.scal[dense.DECAY] = 1
        # In as many parallel blocks as fit takes with plain SGD (see nnjit.transposed).
        rows, n_in, n_out, _ = LAYERS[layer]
        cores = dense.blocks_here()
        blocks = transposed_blocks((n_in, n_out), rows, cores, np.dtype(dtype), plain=True)
        self.scal[dense.TRANSPOSED] = blocks
        self.slots = np.int64(dense.MINUS_LR), np.int64(dense.DECAY)
        # The batch's rows of the data, which the layer reads where they are.
        self.rows = np.arange(rows, dtype=np.int64)
        self.no_partial = np.empty(0, dtype=dtype)  # never split
        self.kernels = kernel_table(np.dtype(dtype))
        self.time_forward(layer, backend, dtype)
        self.time_step(layer, backend, dtype)
        self.time_step_then_forward(layer, backend, dtype)

    def _forward(self, stepping: bool) -> None:
        one = np.int64(dense.ONE)
        args = (self.kernels, self.X, self.WT, self.b, self.Z, self.code, self.scal, one)
        pending = (stepping, self.rows, self.dZ)
        no_partial = self.no_partial
        dense.dense_forward(*args, self.X, self.rows, False, no_partial, True, True, pending)

    def time_forward(self, layer: str, backend: str, dtype: str) -> None:
        if backend == "numba":
            self._forward(False)
        else:
            reference.ACTIVATIONS[self.name](self.X @ self.W + self.b)

    def time_step_then_forward(self, layer: str, backend: str, dtype: str) -> None:
        if backend == "numba":
            self._forward(True)
        else:
            self.W += self.scal[dense.MINUS_LR] * (self.X.T @ self.dZ)
            reference.ACTIVATIONS[self.name](self.X @ self.W + self.b)

    def time_step(self, layer: str, backend: str, dtype: str) -> None:
        if backend == "numba":
            args = (self.kernels, self.X, self.rows, self.dZ, self.WT, self.scal, *self.slots)
            dense.transposed_outer(*args, self.WT, self.WT, False)
        else:
            self.W += self.scal[dense.MINUS_LR] * (self.X.T @ self.dZ)
