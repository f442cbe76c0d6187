"""Exceptions raised by nnjit."""

from __future__ import annotations


class DivergenceError(FloatingPointError):
    """The training loss stopped being finite.

    The network keeps the parameters from the end of the last epoch whose loss
    was finite.
    """

    def __init__(self, epoch: int, lr: float) -> None:
        self.epoch = epoch
        self.lr = lr
        kept = f"the end of epoch {epoch - 1}" if epoch > 1 else "before training"
        super().__init__(
            f"training diverged in epoch {epoch}: the loss stopped being finite with lr={lr:g}. "
            f"The network keeps its parameters from {kept}. Usual cures: a smaller "
            f"learning rate (try lr={lr / 10:g}), inputs scaled to mean 0 and unit "
            "variance per feature, targets of order 1, or an output activation "
            "suited to the targets."
        )
