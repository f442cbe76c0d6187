"""Per-epoch record of a training run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What :meth:`nnjit.Network.fit` measured, one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Training loss: the mean over the epoch's samples of the mini-batch data
        loss seen before each step, plus the L2 term at the end of the epoch.
    val_loss : list of float
        Loss on ``validation_data`` at the end of each epoch (same L2 term).
    accuracy, val_accuracy : list of float
        Classifiers only: the share of samples predicted right.
    epoch_time : list of float
        Wall-clock seconds per epoch, validation excluded.  Without validation
        data or ``verbose``, ``fit`` runs several short epochs per compiled
        call; each of them is then given the call's mean.
    """

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loss)

    def plot(self, path: str | None = None) -> Any:
        """Draw the loss (and accuracy) curves with matplotlib.

        Parameters
        ----------
        path : str or path-like, optional
            Where to save the figure (any format matplotlib knows, from the
            suffix).  Without it the figure is only returned.

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install 'nnjit[plot]'") from None
        panels = 2 if self.accuracy else 1
        fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
        epochs = range(1, len(self.loss) + 1)
        curves = [
            ("loss", self.loss, self.val_loss),
            ("accuracy", self.accuracy, self.val_accuracy),
        ]
        for ax, (name, train, val) in zip(axes[0], curves[:panels], strict=True):
            ax.plot(epochs, train, marker=".", label=f"training {name}")
            if val:
                ax.plot(epochs, val, marker=".", label=f"validation {name}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            if name == "loss" and train and min(train) > 0:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig
