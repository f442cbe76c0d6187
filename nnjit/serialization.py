"""Saving and loading models: arrays and JSON metadata in one ``.npz``, never pickles."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nnjit.network import Network

FORMAT = "nnjit.Network"
FORMAT_VERSION = 1


def save(net: Network, path: Any) -> str:
    """Write ``net`` to ``path`` (``.npz`` is appended if missing), atomically.

    The file is written next to its destination under a temporary name and
    renamed over it, so a crash never leaves a truncated model behind.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "sizes": net.sizes,
        "hidden": list(net.hidden),
        "output": net.output,
        "loss": net.loss_name,
        "dtype": net.dtype.name,
        "backend": net.backend,
    }
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".nnjit-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, params=net.params, meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: Any) -> Network:
    """Read a model written by :meth:`Network.save`.

    Only arrays and JSON are read (``allow_pickle=False``); any file that is
    not a complete nnjit model raises ``ValueError``.
    """
    from nnjit.network import Network

    name = os.fspath(path)
    try:
        with np.load(name, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            params = archive["params"]
            meta = json.loads(str(archive["meta"][()]))
    except FileNotFoundError:
        raise
    except (
        ValueError,
        KeyError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
        TypeError,
    ) as exc:
        raise ValueError(f"{name} is not a valid nnjit model file: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{name} is not a valid nnjit model file: no nnjit metadata")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{name} has model format version {meta.get('version')!r}; "
            f"this nnjit reads {FORMAT_VERSION}"
        )
    try:
        net = Network(
            meta["sizes"],
            meta["hidden"] if meta["hidden"] else "relu",
            meta["output"],
            meta["loss"],
            dtype=meta["dtype"],
            backend=meta.get("backend", "numba"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a valid nnjit model file: bad metadata ({exc})") from None
    if params.dtype != net.dtype or params.shape != (net.n_params,):
        raise ValueError(
            f"{name} is not a valid nnjit model file: parameters of shape {params.shape} and "
            f"dtype {params.dtype} do not fit a {net!r} ({net.n_params} {net.dtype.name})"
        )
    net.params[:] = params
    return net
