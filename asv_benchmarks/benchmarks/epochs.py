"""Whole timed runs of the standard workloads: one epoch (W1, W2: all their steps)."""

from __future__ import annotations

from . import common


class Epoch:
    """``Network.fit`` for one timed run of a workload, as ``python -m nnjit bench`` times it."""

    params = (common.WORKLOADS, common.BACKENDS, common.DTYPES)
    param_names = ("workload", "backend", "dtype")
    number = 1
    repeat = (1, 5, 20.0)
    warmup_time = 0.0
    timeout = common.TIMEOUT

    def setup(self, workload_id: str, backend: str, dtype: str) -> None:
        self.X, self.y = common.data(workload_id, dtype)
        self.net = common.network(workload_id, dtype, backend)
        self.kwargs = common.workload(workload_id).fit_kwargs()

    def time_fit(self, workload_id: str, backend: str, dtype: str) -> None:
        self.net.fit(self.X, self.y, **self.kwargs)
