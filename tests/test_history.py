"""History: per-epoch records of fit, and its plot."""

from __future__ import annotations

import numpy as np
import pytest

import nnjit


def _fit(**kwargs):
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 2)), rng.integers(0, 2, 30)
    net = nnjit.Network([2, 4, 2], "tanh", "softmax", "cross_entropy", seed=0)
    return net.fit(X, y, epochs=3, batch_size=8, lr=0.1, **kwargs), net


def test_records_every_epoch():
    history, _ = _fit(validation_data=None)
    assert len(history) == 3
    assert len(history.loss) == len(history.accuracy) == len(history.epoch_time) == 3
    assert history.val_loss == [] and history.val_accuracy == []
    assert all(isinstance(v, float) for v in history.loss + history.accuracy)
    assert all(t >= 0 for t in history.epoch_time)


def test_validation_records_use_the_end_of_each_epoch():
    history, _ = _fit(validation_data=None)
    checked, _ = _fit(validation_data=None)
    with_val, net = _fit(validation_data=(np.zeros((3, 2)), [0, 1, 1]), l2=0.01)
    assert len(with_val.val_loss) == len(with_val.val_accuracy) == 3
    assert with_val.val_loss[-1] == pytest.approx(
        net.loss(np.zeros((3, 2)), [0, 1, 1], l2=0.01), rel=1e-12
    )
    assert with_val.val_accuracy[-1] == net.score(np.zeros((3, 2)), [0, 1, 1])
    assert history.loss == checked.loss


def test_regressors_record_no_accuracy():
    net = nnjit.Network([2, 1])
    history = net.fit(np.ones((4, 2)), np.ones(4), epochs=2)
    assert history.accuracy == [] and len(history.loss) == 2


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    history, _ = _fit(validation_data=(np.zeros((3, 2)), [0, 1, 1]))
    figure = history.plot(tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 1000
    assert len(figure.axes) == 2
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert labels == ["training loss", "validation loss"]
