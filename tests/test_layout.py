"""Where each layer lives in the flat buffers."""

from __future__ import annotations

import numpy as np

from nnjit.activations import ACTIVATIONS
from nnjit.layout import ACTIVATION, B_OFFSET, N_IN, N_OUT, ROW_OFFSET, W_OFFSET, build_layout


def test_table_offsets():
    layout = build_layout([3, 4, 2], "tanh", "softmax", "cross_entropy")
    assert layout.n_params == 3 * 4 + 4 + 4 * 2 + 2
    first, second = layout.table
    assert (first[N_IN], first[N_OUT], first[W_OFFSET], first[B_OFFSET]) == (3, 4, 0, 12)
    assert (second[N_IN], second[N_OUT], second[W_OFFSET], second[B_OFFSET]) == (4, 2, 16, 24)
    assert first[ACTIVATION] == ACTIVATIONS["tanh"]
    assert second[ACTIVATION] == ACTIVATIONS["softmax"]
    assert (first[ROW_OFFSET], second[ROW_OFFSET]) == (0, 4)
    assert not layout.table.flags.writeable
    assert layout.is_classifier and layout.output == "softmax" and layout.n_layers == 2


def test_views_are_row_major_weights_then_biases():
    layout = build_layout([2, 3], "relu", "identity", "mse")
    params = np.arange(layout.n_params, dtype=float)
    (W,), (b,) = layout.views(params)
    np.testing.assert_array_equal(W, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(b, [6, 7, 8])
    W[0, 0] = -1
    assert params[0] == -1


def test_hidden_activations_one_per_layer():
    layout = build_layout([2, 3, 3, 1], ["relu", "sigmoid"], "identity", "mse")
    assert layout.activations == ("relu", "sigmoid", "identity")
