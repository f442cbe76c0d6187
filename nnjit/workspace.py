"""The buffers of one compiled call, for batches of up to a given number of rows."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Workspace(NamedTuple):
    """Buffers for batches of up to ``rows`` samples, allocated once per call.

    :func:`nnjit.propagation.make_workspace` allocates them.
    """

    # (rows, n_in): the gathered mini-batch; a first layer kept transposed
    # reads its batch where it is, and gathers none (nnjit.dense.dense_forward)
    inputs: np.ndarray
    targets: np.ndarray  # (rows, n_out)
    acts: np.ndarray  # rows * sum(sizes[1:]): every layer's output
    logits: np.ndarray  # rows * n_out: the output layer's Z
    delta: np.ndarray  # 2 * rows * max(sizes[1:]): two halves used in turn
    row_loss: np.ndarray  # (rows,) float64
    row_correct: np.ndarray  # (rows,) int64
    scal: np.ndarray  # BLAS's alpha and beta slots, see nnjit.dense
    partial: np.ndarray  # the blocks' results of products split over the inputs, if any
