"""Where each layer's parameters and activations live in the flat buffers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnjit.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS, SIGMOID, SOFTMAX
from nnjit.losses import CROSS_ENTROPY, LOSSES

# Columns of Layout.table.
N_IN, N_OUT, W_OFFSET, B_OFFSET, ACTIVATION, ROW_OFFSET = range(6)


@dataclass(frozen=True)
class Layout:
    """The architecture of a network and the offsets the kernels use.

    ``table[l]`` holds, for layer ``l``: its fan-in and fan-out, the offsets of
    its weights and biases in the flat parameter vector (weights first, row
    major, then biases), its activation code, and the number of activation
    columns that come before its output in the activation buffer (which holds
    the outputs of all layers, the input excluded).
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    table: np.ndarray
    n_params: int

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def loss_code(self) -> int:
        return LOSSES[self.loss]

    @property
    def output(self) -> str:
        return self.activations[-1]

    @property
    def is_classifier(self) -> bool:
        return LOSSES[self.loss] == CROSS_ENTROPY

    def __setstate__(self, state: dict) -> None:
        # Pickle and copy.deepcopy give the table back writable, and numba
        # compiles its entry point again for each kind of array it is given.
        self.__dict__.update(state)
        self.table.setflags(write=False)

    def views(self, params: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Weight and bias views into ``params``."""
        weights, biases = [], []
        for n_in, n_out, w_off, b_off, _, _ in self.table:
            weights.append(params[w_off : w_off + n_in * n_out].reshape(n_in, n_out))
            biases.append(params[b_off : b_off + n_out])
        return weights, biases


def build_layout(
    sizes: Sequence[int], hidden: str | Sequence[str], output: str, loss: str
) -> Layout:
    """Check an architecture and compute its layout; raise ``ValueError`` if invalid."""
    sizes = _check_sizes(sizes)
    n_hidden = len(sizes) - 2
    hidden_names = [hidden] * n_hidden if isinstance(hidden, str) else list(hidden)
    if len(hidden_names) != n_hidden:
        raise ValueError(
            f"hidden has {len(hidden_names)} activations but the network has "
            f"{n_hidden} hidden layers; give one name or one per hidden layer"
        )
    for name in hidden_names:
        _check_name("hidden activation", name, HIDDEN_ACTIVATIONS)
    _check_name("output activation", output, OUTPUT_ACTIVATIONS)
    _check_name("loss", loss, tuple(LOSSES))
    if LOSSES[loss] == CROSS_ENTROPY and ACTIVATIONS[output] not in (SOFTMAX, SIGMOID):
        raise ValueError(
            f"loss='cross_entropy' needs output='softmax' or output='sigmoid', "
            f"not {output!r}; use loss='mse' for other outputs"
        )
    names = (*hidden_names, output)
    table = np.empty((len(names), 6), dtype=np.int64)
    offset = 0
    row_offset = 0
    for layer, name in enumerate(names):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        table[layer] = (n_in, n_out, offset, offset + n_in * n_out, ACTIVATIONS[name], row_offset)
        offset += n_in * n_out + n_out
        row_offset += n_out
    table.setflags(write=False)
    return Layout(tuple(sizes), names, loss, table, offset)


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    try:
        items = list(sizes)
    except TypeError:
        raise ValueError(f"sizes must be a list of at least 2 ints, got {sizes!r}") from None
    if len(items) < 2:
        raise ValueError(f"sizes must hold at least 2 ints [n_in, ..., n_out], got {items!r}")
    checked = []
    for size in items:
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ValueError(f"every layer size must be an int >= 1, got {items!r}")
        checked.append(int(size))
    return tuple(checked)


def _check_name(what: str, name: object, valid: tuple[str, ...]) -> None:
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"unknown {what} {name!r}; valid choices are {', '.join(valid)}")
