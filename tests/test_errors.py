"""Divergence and interruption: the network is left at the end of a completed epoch."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from conftest import twin

import nnjit
from nnjit import reference

# Learning a sum from unscaled integers: the rate grows tenfold every epoch
# until the loss overflows, a few epochs in.
GRID = np.array([[a, b] for a in range(5) for b in range(5)], dtype=float)
SUMS = GRID.sum(axis=1)
EXPLODING = {"batch_size": 5, "lr": 1e-4, "lr_decay": 10.0, "shuffle": False}


def _net(backend):
    return nnjit.Network([2, 10, 1], "relu", "identity", "mse", seed=0, backend=backend)


@pytest.mark.parametrize("verbose", [False, True])
def test_divergence_keeps_the_last_finite_epoch(backend, verbose):
    net = _net(backend)
    survivor = twin(net, backend)
    with pytest.raises(nnjit.DivergenceError) as info:
        net.fit(GRID, SUMS, epochs=30, verbose=verbose, **EXPLODING)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert error.epoch > 1, "the schedule should diverge after some finite epochs"
    assert error.lr == pytest.approx(1e-4 * 10 ** (error.epoch - 1))
    message = str(error)
    assert f"epoch {error.epoch}" in message and "lr=" in message
    assert "smaller" in message and "scaled" in message
    survivor.fit(GRID, SUMS, epochs=error.epoch - 1, **EXPLODING)
    np.testing.assert_array_equal(net.params, survivor.params)
    assert np.isfinite(net.params).all()


def test_divergence_in_the_first_epoch_restores_the_start(backend):
    net = nnjit.Network([2, 1], seed=0, backend=backend)
    before = net.params.copy()
    with pytest.raises(nnjit.DivergenceError, match="before training"):
        net.fit(GRID * 1e6, SUMS * 1e6, epochs=3, batch_size=1, lr=1.0)
    np.testing.assert_array_equal(net.params, before)


def _snapshots(backend, X, y, epochs, **kwargs):
    """Parameters after 0, 1, ..., epochs epochs of plain SGD in order."""
    net = _net(backend)
    shots = [net.params.copy()]
    for _ in range(epochs):
        net.fit(X, y, epochs=1, **kwargs)
        shots.append(net.params.copy())
    return shots


def _interrupt_after(seconds):
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


@pytest.mark.parametrize(
    ("backend", "verbose"), [("numpy", False), ("numba", True), ("numba", False)]
)
def test_interrupted_fit_stops_at_an_epoch_boundary(backend, verbose):
    rng = np.random.default_rng(0)
    X = rng.random((400, 2))
    y = X.sum(axis=1)
    kwargs = {"batch_size": 2, "lr": 0.01, "shuffle": False}
    # About how long one epoch takes, so that the alarm lands mid-training.
    probe = _net(backend)
    start = time.perf_counter()
    probe.fit(X, y, epochs=2, verbose=verbose, **kwargs)
    per_epoch = (time.perf_counter() - start) / 2
    epochs = 40
    net = _net(backend)
    previous = _interrupt_after(per_epoch * 5.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, y, epochs=epochs, verbose=verbose, **kwargs)
            time.sleep(10 * per_epoch * epochs)  # the alarm comes during sleep at the latest
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    shots = _snapshots(backend, X, y, epochs, **kwargs)
    assert any(np.array_equal(net.params, shot) for shot in shots)


def test_interrupt_inside_a_numpy_epoch_restores_its_start(monkeypatch):
    """Deterministic: the third of the five mini-batches of the second epoch raises."""
    X = GRID / 4
    calls = {"n": 0}
    real_backward = reference.backward

    def interrupting_backward(*args):
        calls["n"] += 1
        if calls["n"] == 5 + 3:
            raise KeyboardInterrupt
        return real_backward(*args)

    kwargs = {"batch_size": 5, "lr": 0.01, "shuffle": False}
    net = _net("numpy")
    after_one = twin(net, "numpy")
    after_one.fit(X, SUMS, epochs=1, **kwargs)
    monkeypatch.setattr(reference, "backward", interrupting_backward)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, SUMS, epochs=5, **kwargs)
    np.testing.assert_array_equal(net.params, after_one.params)
