"""What training reaches: the final loss and the training accuracy of one timed run.

Both backends compute the same mathematics, so their figures agree to
rounding; a change in either is a change in behaviour.  The exception is W3:
with Nielsen's large learning rate, SGD amplifies rounding differences over
the epoch, so its figures differ between backends and dtypes.
"""

from __future__ import annotations

import numpy as np

from nnjit import workloads as wl

from . import common


class FinalLoss(common.TrainingRun):
    """Training loss of the last epoch (``History.loss[-1]``), nnjit's convention."""

    params = (common.WORKLOADS, common.BACKENDS, common.DTYPES_UNLESS_QUICK)
    unit = "loss"

    def track_loss(self, workload_id: str, backend: str, dtype: str) -> float:
        return self.net.fit(self.X, self.y, **self.kwargs).loss[-1]


class Accuracy(common.TrainingRun):
    """Share of the training samples classified right after one timed run."""

    params = (common.CLASSIFIERS, common.BACKENDS, common.DTYPES_UNLESS_QUICK)
    unit = "accuracy"

    def setup(self, workload_id: str, backend: str, dtype: str) -> None:
        super().setup(workload_id, backend, dtype)
        self.labels = wl.labels(common.workload(workload_id), self.y)

    def track_accuracy(self, workload_id: str, backend: str, dtype: str) -> float:
        self.net.fit(self.X, self.y, **self.kwargs)
        return float(np.mean(self.net.forward(self.X).argmax(axis=1) == self.labels))
