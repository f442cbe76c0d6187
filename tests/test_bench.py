"""``python -m nnjit bench`` on shrunk workloads: the report's fields and figures."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from nnjit import bench
from nnjit import workloads as wl
from nnjit.peers import NnjitRunner, PlainNumpyRunner, Runner, _plain_activations


def run_bench(tmp_path: Path, *options: str) -> tuple[int, dict]:
    """A quick bench in float64, one run each, without start-up unless ``options`` ask."""
    path = tmp_path / "bench.json"
    status = bench.main(
        ["--quick", "--dtype", "float64", "--repeat", "1", "--json", str(path), "--startup",
         "none", *options]
    )  # fmt: skip
    return status, json.loads(path.read_text())


def test_report_fields_and_figures_agree(tmp_path, capsys):
    status, report = run_bench(tmp_path, "--workloads", "W1,W3", "--peers", "numpy")
    assert status == 0
    captured = capsys.readouterr()
    assert "| W1 2-10-1 " in captured.out
    assert "peer/numba" in captured.out
    assert "W3 float64" in captured.err  # the progress line

    assert report["quick"] is True
    assert report["repeat"] == 1
    assert report["min_time"] == bench.MIN_SAMPLE_SECONDS
    # The peak is sampled once per round, in turn with the runners.
    peak_samples = [sample for entry in report["results"] for sample in entry["peak"]["samples"]]
    assert len(peak_samples) == 2 and min(peak_samples) > 0
    assert report["peak"]["float64"]["gflops"] == pytest.approx(statistics.median(peak_samples))
    assert report["peak"]["float64"]["min"] == min(peak_samples)
    assert report["peak"]["float64"]["max"] == max(peak_samples)
    low, high = round(min(peak_samples)), round(max(peak_samples))
    assert f"in float64 ({low}-{high} over the rounds)" in captured.out
    assert [entry["workload"] for entry in report["results"]] == ["W1", "W3"]
    for entry in report["results"]:
        workload = wl.get(entry["workload"], quick=True)
        assert entry["dtype"] == "float64"
        assert entry["flops"] == wl.train_flops(workload)
        assert entry["steps"] == workload.steps
        assert set(entry["seconds"]) == {"numba", "numpy"}
        for name, seconds in entry["seconds"].items():
            assert seconds > 0
            assert entry["samples"][name] == [seconds]
            # The quick runs are short: each sample is the mean of enough of them.
            (runs,) = entry["runs_per_sample"][name]
            assert runs > 1 and seconds * runs >= bench.MIN_SAMPLE_SECONDS
            assert entry["gflops"][name] == pytest.approx(entry["flops"] / seconds / 1e9)
            assert entry["ratio_to_numba"][name] == pytest.approx(
                seconds / entry["seconds"]["numba"]
            )
        assert entry["fastest_peer"] == "numpy"
        assert entry["speedup"] == pytest.approx(
            entry["seconds"]["numpy"] / entry["seconds"]["numba"]
        )
        assert entry["paired_speedup"] == pytest.approx(entry["speedup"])  # one round
        (peak,) = entry["peak"]["samples"]
        assert entry["peak"]["gflops"] == peak
        assert entry["percent_of_peak"] == pytest.approx(100 * entry["gflops"]["numba"] / peak)
        # The same data, initial weights and mathematics: the same training loss.
        assert entry["loss"]["numpy"] == pytest.approx(entry["loss"]["numba"], rel=1e-9)


def test_paired_speedup_takes_each_round_apart():
    """A slow round for both runners counts once, not in each runner's median."""
    samples = {"numba": [1.0, 4.0, 1.0], "plain": [3.0, 4.0, 1.5], "numpy": [5.0, 5.0, 5.0]}
    entry = bench._entry(wl.get("W1"), "float64", [], samples, {}, {})
    assert entry["fastest_peer"] == "plain"
    assert entry["speedup"] == pytest.approx(3.0)  # medians 3.0 and 1.0
    assert entry["paired_speedup"] == pytest.approx(1.5)  # rounds 3.0, 1.0, 1.5
    assert "| 3.00 | 1.50 |" in " ".join(bench.format_table([entry], ["numba"]).split())
    # A runner that lost a run has no rounds to pair.
    samples["plain"] = [3.0, 4.0]
    assert bench._entry(wl.get("W1"), "float64", [], samples, {}, {})["paired_speedup"] is None


def test_uneven_peak_samples_are_reported():
    samples = [100.0, 98.0, 102.0, 74.0, 101.0]
    results = [{"dtype": "float64", "peak": {"samples": samples}}]
    peaks = bench.run_peaks(results, 64)
    assert (peaks["float64"]["min"], peaks["float64"]["max"]) == (74.0, 102.0)
    (note,) = bench.uneven_peaks(peaks)
    assert note.startswith("the float64 peak's samples ranged 74-102 GFLOP/s")
    # At three quarters of the median or above, nothing is said.
    results[0]["peak"]["samples"] = [100.0, 98.0, 102.0, 75.0, 101.0]
    assert bench.uneven_peaks(bench.run_peaks(results, 64)) == []


def test_startup_in_fresh_processes(tmp_path, capsys):
    status, report = run_bench(
        tmp_path, "--workloads", "W1", "--peers", "none", "--startup", "warm"
    )
    assert status == 0
    (startup,) = report["startup"]
    assert startup["workload"] == "W4" and startup["dtype"] == "float64"
    assert startup["cold"] is None  # "warm": nothing compiles
    (run,) = startup["warm"]["runs"]
    # The tests' session compiled the kernels into the usual cache first.
    assert run["compiled"] is False
    assert 0 < run["import"] == startup["warm"]["import"]
    assert 0 < run["first_run"] == startup["warm"]["first_run"]
    captured = capsys.readouterr()
    assert "first run, warm cache s" in captured.out
    assert "start-up float64, warm cache" in captured.err  # the progress line


class _Recorder(Runner):
    """A runner that notes which workload each of its runs trains."""

    name = "numba"

    def __init__(self) -> None:
        self.runs: list[str] = []

    def prepare(self, workload, X, y):
        def setup():
            def run() -> float:
                self.runs.append(workload.id)
                return 1.0

            return run

        return setup


def test_rounds_take_every_workload_in_turn():
    """A slow spell of the machine costs each workload a run, not all of one workload's."""
    recorder = _Recorder()
    workloads = [wl.get("W1", quick=True), wl.get("W3", quick=True)]
    results = bench.bench_workloads(
        workloads, ["float64"], [recorder], 2, peak_size=64, min_seconds=0
    )
    # The warm-ups first, then two rounds of one run each.
    assert recorder.runs == ["W1", "W3"] * 3
    for entry in results:
        assert len(entry["samples"]["numba"]) == len(entry["peak"]["samples"]) == 2


class _Clock:
    """``time`` for the bench, whose clock moves only when a run says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        pass


class _Timed(Runner):
    """A runner whose runs take ``seconds`` on the clock; it counts the models it builds."""

    name = "numba"

    def __init__(self, clock: _Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.models = 0
        self.trained: list[int] = []

    def prepare(self, workload, X, y):
        def setup():
            self.models += 1
            model = self.models

            def run() -> float:
                assert model not in self.trained  # each run on a fresh model
                self.trained.append(model)
                self.clock.now += self.seconds
                return 1.0

            return run

        return setup


@pytest.mark.parametrize(
    ("seconds", "min_seconds", "runs"),
    [(0.03, 0.1, 4), (0.1, 0.1, 1), (0.5, 0.1, 1), (0.03, 0.0, 1), (0.001, 0.1, 7)],
)
def test_a_sample_repeats_short_runs(monkeypatch, seconds, min_seconds, runs):
    """Runs shorter than the minimum are repeated back to back and averaged."""
    clock = _Clock()
    monkeypatch.setattr(bench, "time", clock)
    monkeypatch.setattr(bench, "MAX_RUNS_PER_SAMPLE", 7)
    monkeypatch.setattr(bench.PeakProduct, "sample", lambda self: 1.0)  # timed on the clock
    runner = _Timed(clock, seconds)
    results = bench.bench_workloads(
        [wl.get("W1", quick=True)], ["float64"], [runner], 2, peak_size=64,
        min_seconds=min_seconds,
    )  # fmt: skip
    (entry,) = results
    assert entry["runs_per_sample"]["numba"] == [runs, runs]
    assert entry["samples"]["numba"] == pytest.approx([seconds, seconds])
    assert len(runner.trained) == 1 + 2 * runs  # the warm-up, then the two samples


def test_flop_count_of_a_workload():
    # 784-30-10 over 50,000 samples: P = 23,860, P1 = 23,550.
    workload = wl.get("W3", quick=False)
    assert wl.train_flops(workload) == (4 * 23_860 + 2 * 310) * 50_000


def test_missing_peers_are_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    # None in sys.modules makes every import of the package fail.
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    status, report = run_bench(tmp_path, "--workloads", "W1", "--quiet")
    assert status == 0
    for name, package in (("torch", "torch"), ("sklearn", "scikit-learn")):
        assert report["peers"][name]["available"] is False
        assert f"pip install {package}" in report["peers"][name]["note"]
    (entry,) = report["results"]
    assert set(entry["seconds"]) == {"numba", "plain", "numpy"}
    captured = capsys.readouterr()
    assert "skipping torch" in captured.err
    assert "sklearn skipped" in captured.out


@pytest.mark.parametrize("workload_id", wl.WORKLOAD_IDS)
def test_plain_numpy_peer_trains_the_same_network(workload_id):
    """The tutorial's NumPy loop: nnjit's initial weights, data order and conventions."""
    workload = wl.get(workload_id, quick=True)
    X, y = wl.make_data(workload, "float64")[:2]
    plain = PlainNumpyRunner().prepare(workload, X, y)()()
    numba = NnjitRunner("numba").prepare(workload, X, y)()()
    assert plain == pytest.approx(numba, rel=1e-12)


@pytest.mark.parametrize("name", ["identity", "relu", "leaky_relu", "sigmoid", "tanh"])
def test_plain_numpy_peer_keeps_float32(name):
    """No float64 slope or constant promotes the plain loop's float32 arrays."""
    activation, derivative = _plain_activations(name)
    z = np.linspace(-2, 2, 9, dtype=np.float32)
    a = activation(z)
    assert a.dtype == np.float32
    assert (z * derivative(a)).dtype == np.float32


def test_torch_peer_trains_the_same_network(tmp_path):
    pytest.importorskip("torch")
    status, report = run_bench(tmp_path, "--workloads", "W1,W4", "--peers", "torch", "--quiet")
    assert status == 0
    for entry in report["results"]:
        assert entry["fastest_peer"] == "torch"
        # Same initial weights, same data order, same loss and L2 conventions.
        assert entry["loss"]["torch"] == pytest.approx(entry["loss"]["numba"], rel=1e-9)


def test_sklearn_peer_runs_and_says_where_it_differs(tmp_path, capsys):
    pytest.importorskip("sklearn")
    status, report = run_bench(tmp_path, "--workloads", "W2,W3", "--peers", "sklearn", "--quiet")
    assert status == 0
    w2, w3 = report["results"]
    assert w2["seconds"]["sklearn"] > 0 and w3["seconds"]["sklearn"] > 0
    assert any("leaky ReLU" in note for note in w2["notes"])
    assert any("binary cross-entropy" in note for note in w3["notes"])
    assert w3["loss"]["sklearn"] is None  # a different loss: not comparable
    assert "W3: scikit-learn cannot train sigmoid outputs on MSE" in capsys.readouterr().out


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    status, _ = run_bench(
        tmp_path, "--workloads", "W1", "--peers", "numpy", "--quiet", "--plot", str(png)
    )
    assert status == 0
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "options",
    [
        ["--workloads", "W9"],
        ["--dtype", "float16"],
        ["--peers", "jax"],
        ["--repeat", "0"],
        ["--min-time", "-1"],
        ["--startup", "cold"],
    ],
)
def test_bad_options(options, capsys):
    try:
        status = bench.main(options)
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    assert capsys.readouterr().err
