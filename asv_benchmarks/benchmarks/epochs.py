"""Whole timed runs of the standard workloads: one epoch (W1, W2: all their steps)."""

from __future__ import annotations

from . import common


class Epoch(common.TrainingRun):
    """``Network.fit`` for one timed run of a workload, as ``python -m nnjit bench`` times it."""

    params = (common.WORKLOADS, common.BACKENDS, common.DTYPES)
    number = 1
    repeat = (1, 5, 20.0)
    warmup_time = 0.0

    def time_fit(self, workload_id: str, backend: str, dtype: str) -> None:
        self.net.fit(self.X, self.y, **self.kwargs)
