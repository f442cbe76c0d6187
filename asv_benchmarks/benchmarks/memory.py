"""Peak memory of training: the process's largest resident size during ``fit``.

asv reads the peak resident size over the whole life of the process, and
making the data takes more memory than holding it; so another process makes
the data and saves it, and the benchmark maps the files.  Their pages count
once ``fit`` reads them, so the figure is the interpreter and the compiled
kernels, the data, and whatever ``fit`` allocates on top.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from . import common

SAVE_DATA = """
import numpy as np
from nnjit import workloads as wl
X, y = wl.make_data(wl.get({workload_id!r}), {dtype!r})
np.save({X!r}, X)
np.save({y!r}, y)
"""


class Fit:
    """One timed run of a workload."""

    params = (common.WORKLOADS, common.BACKENDS, common.DTYPES_UNLESS_QUICK)
    param_names = ("workload", "backend", "dtype")
    timeout = common.TIMEOUT

    def setup(self, workload_id: str, backend: str, dtype: str) -> None:
        self.directory = tempfile.mkdtemp(prefix="nnjit-peakmem-")
        paths = {name: os.path.join(self.directory, f"{name}.npy") for name in ("X", "y")}
        code = SAVE_DATA.format(workload_id=workload_id, dtype=dtype, **paths)
        subprocess.run([sys.executable, "-c", code], check=True)
        self.X = np.load(paths["X"], mmap_mode="r")
        self.y = np.load(paths["y"], mmap_mode="r")
        self.net = common.network(workload_id, dtype, backend)
        self.kwargs = common.workload(workload_id).fit_kwargs()

    def teardown(self, workload_id: str, backend: str, dtype: str) -> None:
        del self.X, self.y
        shutil.rmtree(self.directory, ignore_errors=True)

    def peakmem_fit(self, workload_id: str, backend: str, dtype: str) -> None:
        self.net.fit(self.X, self.y, **self.kwargs)
