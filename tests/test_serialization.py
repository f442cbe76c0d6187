"""save / load: a bit-for-bit round trip, and refusal of anything that is not a model."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import nnjit
from nnjit.epoch import run_epochs


def _trained(dtype="float64", backend="numba"):
    net = nnjit.Network(
        [3, 5, 4, 2], ["tanh", "relu"], "softmax", "cross_entropy", dtype=dtype, seed=3,
        backend=backend,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    net.fit(rng.random((20, 3)), rng.integers(0, 2, 20), epochs=2, lr=0.1)
    return net


def test_round_trip_is_bit_for_bit(tmp_path, dtype, backend):
    net = _trained(dtype, backend)
    path = net.save(tmp_path / "model")
    assert path.endswith("model.npz")
    loaded = nnjit.load(path)
    assert loaded.params.tobytes() == net.params.tobytes()
    assert loaded.dtype == net.dtype
    assert repr(loaded) == repr(net)
    assert loaded.hidden == net.hidden and loaded.backend == backend
    X = np.random.default_rng(1).random((4, 3))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


def test_save_overwrites_atomically(tmp_path):
    net = _trained()
    target = tmp_path / "model.npz"
    net.save(target)
    net.params = net.params + 1
    net.save(target)
    np.testing.assert_array_equal(nnjit.load(target).params, net.params)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    net = _trained()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        net.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_arrays_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npz"
    payload = np.array([_Payload(str(marker))], dtype=object)
    np.savez(path, params=payload, meta=np.array(json.dumps({"format": "nnjit"})))
    with pytest.raises(ValueError, match="not a valid nnjit model"):
        nnjit.load(path)
    assert not marker.exists()


def test_a_plain_pickle_is_refused(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ValueError, match="not a valid nnjit model"):
        nnjit.load(path)
    assert not marker.exists()


def test_truncated_file_is_refused(tmp_path):
    path = _trained().save(tmp_path / "model.npz")
    data = open(path, "rb").read()
    for size in (0, 10, len(data) // 2, len(data) - 5):
        cut = tmp_path / f"cut{size}.npz"
        cut.write_bytes(data[:size])
        with pytest.raises(ValueError, match="not a valid nnjit model"):
            nnjit.load(cut)


def _archive(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return path


def test_other_archives_are_refused(tmp_path):
    net = _trained()
    meta = json.loads(str(np.load(net.save(tmp_path / "good.npz"))["meta"][()]))
    cases = {
        "no metadata": {"params": net.params},
        "foreign metadata": {"params": net.params, "meta": np.array('{"format": "other"}')},
        "wrong length": {"params": net.params[:-1], "meta": np.array(json.dumps(meta))},
        "wrong dtype": {
            "params": net.params.astype(np.float32),
            "meta": np.array(json.dumps(meta)),
        },
        "bad sizes": {
            "params": net.params,
            "meta": np.array(json.dumps({**meta, "sizes": "big"})),
        },
        "future version": {
            "params": net.params,
            "meta": np.array(json.dumps({**meta, "version": 99})),
        },
    }
    for name, arrays in cases.items():
        with pytest.raises(ValueError, match="model"):
            nnjit.load(_archive(tmp_path / f"{name}.npz", **arrays))
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ValueError, match="not a valid nnjit model"):
        nnjit.load(tmp_path / "empty.npz")


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        nnjit.load("no/such/model.npz")


COPIES = {
    "pickle": lambda net: pickle.loads(pickle.dumps(net)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
}


@pytest.mark.parametrize("how", list(COPIES))
def test_copies_keep_weights_and_biases_as_views_of_params(how, dtype):
    """Pickle and deepcopy once gave weights that neither followed nor changed the copy."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    net = nnjit.Network([3, 4, 2], "relu", "softmax", "cross_entropy", dtype=dtype, seed=0)
    net.fit(X, y, epochs=1, batch_size=5)
    original = net.params.copy()
    signatures = len(run_epochs.signatures)
    twin = COPIES[how](net)
    np.testing.assert_array_equal(twin.params, original)
    np.testing.assert_array_equal(twin.forward(X), net.forward(X))
    twin.weights[0][0, 0] = 7.0
    twin.biases[-1][1] = -7.0
    assert twin.params[0] == 7.0 and twin.params[-1] == -7.0
    twin.fit(X, y, epochs=1, batch_size=5)
    for layer, (W, b) in enumerate(zip(twin.weights, twin.biases, strict=True)):
        assert np.shares_memory(W, twin.params) and np.shares_memory(b, twin.params), layer
    # A writable layout table once compiled the entry point again (20 s).
    assert len(run_epochs.signatures) == signatures
    if how != "copy":  # a shallow copy shares its parameters, as copy.copy of an array would
        np.testing.assert_array_equal(net.params, original)
        assert not np.shares_memory(twin.params, net.params)
