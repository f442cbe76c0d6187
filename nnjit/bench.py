"""``python -m nnjit bench``: the standard workloads on every backend and installed peer.

For each workload of :mod:`nnjit.workloads` and each dtype the command times
one run -- a full epoch, or for W1 and W2 all their full-batch steps -- of
nnjit's ``numba`` and ``numpy`` backends and of its peers: the plain NumPy
loop a tutorial teaches, and PyTorch and scikit-learn where they are
installed (see :mod:`nnjit.peers`).  Every runner first trains
once on a shrunk copy of the workload, untimed, so that compilation and
first-call costs never count.  Then the runs go in rounds: in each, every
workload in turn, and within it every runner in turn, so that a slow moment
of a shared machine hits the runners of a workload alike and no workload
more than a round's worth; the median of each runner's samples is reported.
A sample is one run, or for a run shorter than ``--min-time`` (0.1 s by
default) as many runs back to back, each on a fresh model, as take that long
together, and their mean: as with :mod:`timeit`, a run of a few milliseconds
timed alone mostly measures the state the machine is in.  On this machine,
after the pause that ends every timed run's preparation, a compiled loop of
2.2 ms took up to 3.4 ms, and W1's 1000 steps in nnjit 3.0-5.1 ms against
2.5-2.7 ms back to back; a delay of that size is a few percent of the
peers' runs, of 30 ms and more.  Beside the ratio of
the medians, the fastest peer's run over numba's is taken
round by round, the two runs seconds apart, and the median of those ratios
reported too ("paired").

Speed is also given as GFLOP/s, from the exact count of the matrix-product
operations (:func:`nnjit.workloads.train_flops`), and as a percentage of the
matrix-product peak: the median speed of a large square ``A @ B`` in the same
dtype, timed after the runners of the same workload in every round.  A
shared machine's speed drifts over the minutes a bench takes; a peak taken
alongside keeps the percentage a side-by-side ratio.

Last comes the start-up (:mod:`nnjit.startup`): in fresh processes, the time
of ``import nnjit`` and then of a first W4 epoch, with the kernels in numba's
cache on disk and, unless ``--startup warm`` or ``--quick``, with an empty
cache, where that first ``fit`` compiles them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnjit import workloads as wl
from nnjit.peers import PEERS, Runner, Setup, available_runners
from nnjit.startup import measure_startup

DTYPES = ("float64", "float32")
DEFAULT_REPEAT = 3
# A sample repeats a shorter run until the runs have taken this long together.
MIN_SAMPLE_SECONDS = 0.1
# ... but runs it at most this many times.
MAX_RUNS_PER_SAMPLE = 1000
# Side of the square matrices whose product measures the peak speed.
PEAK_SIZE = 2048
PEAK_SIZE_QUICK = 1024
# A peak sample below this share of the run's median is reported (see uneven_peaks).
UNEVEN_PEAK = 0.75
# What the start-up measurement covers, and the workload it trains.
STARTUP_CHOICES = ("full", "warm", "none")
STARTUP_WORKLOAD = "W4"

GENERAL_NOTES = (
    "seconds: one run of the workload, the median over the samples; W1 and W2 run all their "
    "full-batch steps, the others one epoch",
    "sample: one timed run, or the mean of as many runs back to back, each on a fresh model, "
    "as take the minimum time (--min-time) together; runs_per_sample in the JSON file",
    "peer/numba: seconds of the fastest peer over numba's; above 1 numba is faster",
    "paired: the median over the rounds of the fastest peer's run over numba's run of the "
    "same round, taken seconds apart: a slow spell that spans a round slows both",
    "GFLOP/s and % peak: numba's speed in the matrix products (train_flops), and its share "
    "of the peak measured in turn with the runners of the same workload",
    "threads: every runner is given the same number; nnjit's fit takes fewer while other "
    "programs keep the cores busy (NNJIT_ADAPTIVE_THREADS=0 keeps them all)",
)
RUNNER_NOTES = {
    "torch": "torch starts from nnjit's initial weights",
    "sklearn": "scikit-learn draws its own initial weights",
}


class PeakProduct:
    """The square matrix product ``A @ B`` of side ``size`` in ``dtype`` that measures the peak.

    NumPy's BLAS runs it on as many threads as it is allowed, by default all
    the cores (``python -m nnjit bench --threads`` sets the number).
    """

    def __init__(self, dtype: str, size: int = PEAK_SIZE) -> None:
        rng = np.random.default_rng(0)
        self.size = size
        self.A = rng.random((size, size)).astype(dtype)
        self.B = rng.random((size, size)).astype(dtype)
        self.out = np.empty_like(self.A)
        np.matmul(self.A, self.B, out=self.out)  # warm-up: thread pool, page faults

    def sample(self) -> float:
        """GFLOP/s of one product."""
        start = time.perf_counter()
        np.matmul(self.A, self.B, out=self.out)
        return 2 * self.size**3 / (time.perf_counter() - start) / 1e9


def _prepare(runner: Runner, workload: wl.Workload, X: np.ndarray, y: np.ndarray) -> Setup:
    """Prepare a runner after warming it up on a shrunk copy of the workload, untimed."""
    small = workload.shrink()
    runner.prepare(small, X[: small.n_samples], y[: small.n_samples])()()
    return runner.prepare(workload, X, y)


SETTLE_SECONDS = 0.2


def _settle() -> None:
    """Start every timed run from the same state: BLAS workers started, then idle.

    OpenBLAS's workers spin for about 0.1 s after each multi-threaded call,
    and nnjit's ``fit`` stops them; without a pause the runner after NumPy
    would share the cores with its workers, and the runner after nnjit would
    pay for starting them again.
    """
    np.ones((256, 256)) @ np.ones((256, 256))
    time.sleep(SETTLE_SECONDS)


class _Entry:
    """One workload in one dtype: its data, its runners' prepared runs and their timings."""

    def __init__(self, workload: wl.Workload, dtype: str, runners: Sequence[Runner]) -> None:
        self.workload = workload
        self.dtype = dtype
        self.runners = runners
        self.X, self.y = wl.make_data(workload, dtype)
        self.setups: dict[str, Setup] = {}
        self.samples: dict[str, list[float]] = {}
        self.runs: dict[str, list[int]] = {}
        self.losses: dict[str, float | None] = {}
        self.errors: dict[str, str] = {}
        self.peak_samples: list[float] = []

    def warm_up(self, runner: Runner) -> None:
        try:
            self.setups[runner.name] = _prepare(runner, self.workload, self.X, self.y)
            self.samples[runner.name] = []
            self.runs[runner.name] = []
        except Exception as exc:  # a peer that fails is reported, not fatal
            self.errors[runner.name] = f"{type(exc).__name__}: {exc}"

    def time_run(self, runner: Runner, min_seconds: float = MIN_SAMPLE_SECONDS) -> None:
        """One sample: the runs of ``runner``, each on a fresh model, until ``min_seconds``.

        The model of each run is built before its clock starts; the first
        run waits for :func:`_settle`, the others follow at once.
        """
        if runner.name in self.errors:
            return
        try:
            run = self.setups[runner.name]()
            _settle()
            elapsed = 0.0
            runs = 0
            while True:
                start = time.perf_counter()
                loss = run()
                elapsed += time.perf_counter() - start
                runs += 1
                if elapsed >= min_seconds or runs == MAX_RUNS_PER_SAMPLE:
                    break
                run = self.setups[runner.name]()
            self.samples[runner.name].append(elapsed / runs)
            self.runs[runner.name].append(runs)
            finite = loss is not None and math.isfinite(loss)
            self.losses[runner.name] = float(loss) if finite else None
        except Exception as exc:
            self.errors[runner.name] = f"{type(exc).__name__}: {exc}"
            del self.samples[runner.name]
            del self.runs[runner.name]

    def result(self) -> dict[str, Any]:
        entry = _entry(
            self.workload, self.dtype, self.runners, self.samples, self.losses, self.errors
        )
        gflops = entry["gflops"].get("numba")
        peak = statistics.median(self.peak_samples)
        entry["runs_per_sample"] = self.runs
        entry["peak"] = {"gflops": peak, "samples": self.peak_samples}
        entry["percent_of_peak"] = None if gflops is None else 100 * gflops / peak
        return entry


def bench_workloads(
    workloads: Sequence[wl.Workload],
    dtypes: Sequence[str],
    runners: Sequence[Runner],
    repeat: int,
    progress: Any = None,
    peak_size: int = PEAK_SIZE,
    min_seconds: float = MIN_SAMPLE_SECONDS,
) -> list[dict[str, Any]]:
    """Time every runner on every workload and dtype, in rounds.

    After an untimed warm-up of everything, each of the ``repeat`` rounds
    takes one sample of every runner on each workload and dtype in turn, and
    after each workload's runners one product of the peak in its dtype
    (:class:`PeakProduct`).  A slow spell of a shared machine, which lasts
    from seconds to minutes, then costs each workload a sample or two rather
    than every sample of the workloads it falls on; the medians shrug it off.
    Every workload's data stays in memory throughout.

    Parameters
    ----------
    workloads : sequence of Workload
    dtypes : sequence of {"float64", "float32"}
    runners : sequence of Runner
        ``runners[0]`` is nnjit's ``numba`` backend; the others are its peers.
    repeat : int
        Rounds: samples per runner, workload and dtype; the median is reported.
    progress : tqdm, optional
        Advanced by one per warm-up, per sample and per peak sample.
    peak_size : int
        Side of the square matrices of the peak's product.
    min_seconds : float
        A sample repeats a shorter run, each time on a fresh model, until
        the runs have taken this long together, and is their mean; with 0
        it is a single run.

    Returns
    -------
    list of dict
        One result entry per workload and dtype, in that order; see
        :func:`main` for the fields.
    """
    entries = []
    for workload in workloads:
        for dtype in dtypes:
            entry = _Entry(workload, dtype, runners)
            for runner in runners:
                _advance(progress, f"{workload.id} {dtype} {runner.name} warm-up")
                entry.warm_up(runner)
            entries.append(entry)
    peaks = {dtype: PeakProduct(dtype, peak_size) for dtype in dtypes}
    for round_ in range(1, repeat + 1):
        for entry in entries:
            label = f"round {round_}/{repeat}: {entry.workload.id} {entry.dtype}"
            for runner in runners:
                _advance(progress, f"{label} {runner.name}")
                entry.time_run(runner, min_seconds)
            _advance(progress, f"{label} peak")
            _settle()
            entry.peak_samples.append(peaks[entry.dtype].sample())
    return [entry.result() for entry in entries]


def _advance(progress: Any, label: str) -> None:
    """Show ``label`` as what runs now on the progress line, if any, and count a step."""
    if progress is not None:
        progress.set_description_str(label)
        progress.update()


def _entry(
    workload: wl.Workload,
    dtype: str,
    runners: Sequence[Runner],
    samples: dict[str, list[float]],
    losses: dict[str, float | None],
    errors: dict[str, str],
) -> dict[str, Any]:
    flops = wl.train_flops(workload)
    seconds = {name: statistics.median(times) for name, times in samples.items()}
    peers = {name: s for name, s in seconds.items() if name != "numba"}
    fastest = min(peers, key=peers.get) if peers else None
    numba = seconds.get("numba")
    paired = None
    if fastest and numba and len(samples[fastest]) == len(samples["numba"]):
        paired = statistics.median(
            peer / own for peer, own in zip(samples[fastest], samples["numba"], strict=True)
        )
    notes = [note for runner in runners for note in runner.notes(workload)]
    notes += [f"{name} failed: {error}" for name, error in errors.items()]
    return {
        "workload": workload.id,
        "architecture": workload.architecture,
        "description": workload.description,
        "dtype": dtype,
        "n_samples": workload.n_samples,
        "batch_size": workload.batch_size,
        "epochs": workload.epochs,
        "steps": workload.steps,
        "flops": flops,
        "seconds": seconds,
        "samples": samples,
        "gflops": {name: flops / s / 1e9 for name, s in seconds.items()},
        "ratio_to_numba": {name: s / numba for name, s in seconds.items()} if numba else {},
        "loss": losses,
        "fastest_peer": fastest,
        "speedup": peers[fastest] / numba if fastest and numba else None,
        "paired_speedup": paired,
        "notes": notes,
        "errors": errors,
    }


def run_peaks(results: Sequence[dict[str, Any]], size: int) -> dict[str, dict[str, Any]]:
    """Per dtype, the median of every peak sample of the run, and their least and most."""
    peaks = {}
    for entry in results:
        peak = peaks.setdefault(entry["dtype"], {"size": size, "samples": []})
        peak["samples"] += entry["peak"]["samples"]
    for peak in peaks.values():
        peak["gflops"] = statistics.median(peak["samples"])
        peak["min"] = min(peak["samples"])
        peak["max"] = max(peak["samples"])
    return peaks


def uneven_peaks(peaks: dict[str, dict[str, Any]]) -> list[str]:
    """A note for each dtype whose peak samples fell below ``UNEVEN_PEAK`` of their median.

    The peak is one product on every core: a sample far below the others
    was taken while other work held a core or the machine ran slower, and
    the runs of that round ran on such a machine too.  The percentages of
    the peak compare medians taken over the same rounds; the paired ratios
    compare runs seconds apart.
    """
    notes = []
    for dtype, peak in peaks.items():
        if peak["min"] < UNEVEN_PEAK * peak["gflops"]:
            notes.append(
                f"the {dtype} peak's samples ranged {peak['min']:.0f}-{peak['max']:.0f} GFLOP/s: "
                "the machine's speed moved during the run; the paired ratios and the "
                "samples in the JSON file show which rounds it slowed"
            )
    return notes


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def format_table(results: Sequence[dict[str, Any]], runners: Sequence[str]) -> str:
    """The results as a Markdown table, one row per workload and dtype."""
    header = [
        "workload",
        "dtype",
        *(f"{name} s" for name in runners),
        "fastest peer",
        "peer/numba",
        "paired",
        "GFLOP/s",
        "% peak",
    ]
    rows = []
    for entry in results:
        speedup = entry["speedup"]
        paired = entry["paired_speedup"]
        percent = entry.get("percent_of_peak")
        gflops = entry["gflops"].get("numba")
        rows.append(
            [
                f"{entry['workload']} {entry['architecture']}",
                entry["dtype"],
                *(_seconds(entry["seconds"].get(name)) for name in runners),
                entry["fastest_peer"] or "-",
                "-" if speedup is None else f"{speedup:.2f}",
                "-" if paired is None else f"{paired:.2f}",
                "-" if gflops is None else f"{gflops:.3g}",
                "-" if percent is None else f"{percent:.0f}",
            ]
        )
    return _markdown(header, rows, left=2)


def format_startup(startups: Sequence[dict[str, Any]]) -> str:
    """The start-up figures as a Markdown table, one row per dtype."""
    header = ["dtype", "import nnjit s", "first run, warm cache s", "first run, empty cache s"]
    rows = [
        [
            startup["dtype"],
            _seconds(startup["warm"]["import"]),
            _seconds(startup["warm"]["first_run"]),
            _seconds(startup["cold"]["first_run"] if startup["cold"] else None),
        ]
        for startup in startups
    ]
    return _markdown(header, rows, left=1)


def _markdown(header: list[str], rows: list[list[str]], left: int) -> str:
    """A Markdown table; the first ``left`` columns are aligned left, the others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    dashes = ["-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths)]
    rule = "|" + "|".join(dashes) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def plot(results: Sequence[dict[str, Any]], runners: Sequence[str], path: str) -> None:
    """Bar chart of every runner's time relative to numba's, one panel per dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(dict.fromkeys(entry["dtype"] for entry in results))
    fig, axes = plt.subplots(
        len(dtypes), 1, figsize=(10, 3.6 * len(dtypes)), squeeze=False, sharex=True
    )
    width = 0.8 / len(runners)
    for ax, dtype in zip(axes[:, 0], dtypes, strict=True):
        entries = [entry for entry in results if entry["dtype"] == dtype]
        positions = np.arange(len(entries))
        for i, name in enumerate(runners):
            ratios = [entry["ratio_to_numba"].get(name, np.nan) for entry in entries]
            ax.bar(positions + (i - (len(runners) - 1) / 2) * width, ratios, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(positions)
        ax.set_xticklabels(
            [f"{e['workload']}\n{e['architecture']}" for e in entries], fontsize="small"
        )
        ax.set_ylabel("time / numba's time")
        ax.set_title(f"{dtype}: seconds per epoch relative to nnjit numba (lower is faster)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize="small", ncol=len(runners))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine_info() -> dict[str, Any]:
    """Processor, cores, threads and library versions, for the JSON record."""
    import numba

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_model() or platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {key: pool.get(key) for key in ("internal_api", "version", "num_threads", "prefix")}
            for pool in threadpool_info()
            if pool.get("user_api") == "blas"
        ]
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        pass
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _names(text: str, valid: Sequence[str], what: str) -> list[str]:
    names = [item.strip() for item in text.split(",") if item.strip()]
    for name in names:
        if name not in valid:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {name!r}; valid choices are {', '.join(valid)}"
            )
    return list(dict.fromkeys(names))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nnjit bench",
        description="Time the standard workloads (W1-W6) on nnjit's backends and its "
        "peers (a plain NumPy loop, and PyTorch and scikit-learn where installed).",
    )
    parser.add_argument(
        "--workloads",
        type=lambda text: _names(text.upper(), wl.WORKLOAD_IDS, "workload"),
        default=list(wl.WORKLOAD_IDS),
        help=f"comma-separated workload ids (default: all, {','.join(wl.WORKLOAD_IDS)})",
    )
    parser.add_argument(
        "--dtype",
        type=lambda text: _names(text, DTYPES, "dtype"),
        default=list(DTYPES),
        help="comma-separated dtypes (default: float64,float32)",
    )
    parser.add_argument(
        "--peers",
        type=lambda text: [] if text == "none" else _names(text, PEERS, "peer"),
        default=list(PEERS),
        help="comma-separated peers to time beside numba, or 'none' "
        "(default: plain,numpy,torch,sklearn; those not installed are skipped)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help="timed samples per entry, the median is reported (default: %(default)s)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=MIN_SAMPLE_SECONDS,
        metavar="SECONDS",
        help="a sample repeats a shorter run back to back, on fresh models, until the runs "
        "have taken this long, and is their mean; 0 times single runs (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"shrink every workload about {wl.QUICK_FACTOR}-fold (also: {wl.QUICK_ENV}=1)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure to a JSON file")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="draw the times relative to numba (needs matplotlib)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads of numba, BLAS and torch alike (default: numba's, all the cores)",
    )
    parser.add_argument(
        "--startup",
        choices=STARTUP_CHOICES,
        default=None,
        help="start-up in fresh processes: import nnjit, then a first W4 run with a warm "
        "kernel cache ('warm') and also with an empty one, which compiles ('full'); "
        "'none' skips it (default: full, or warm with --quick)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status.

    The JSON file holds ``machine``, ``peers`` (version or why it is
    missing), ``peak`` per dtype, and ``results``: per workload and dtype,
    ``seconds`` (median per runner), ``samples`` (every sample: the mean
    seconds of its runs), ``runs_per_sample``,
    ``flops``, ``gflops``, ``ratio_to_numba``, ``loss`` (final training loss
    in nnjit's convention, None where not comparable), ``fastest_peer``,
    ``speedup`` (its seconds over numba's), ``paired_speedup`` (the median
    over the rounds of its run over numba's, None if a run is missing),
    ``peak`` (the peak's samples taken alongside, and their median
    ``gflops``), ``percent_of_peak`` (numba's GFLOP/s over that median) and
    ``notes``.  The run's ``peak`` per dtype is the median of all the
    samples in that dtype (``gflops``), with their ``min`` and ``max``; a
    note says when the least fell below ``UNEVEN_PEAK`` of the median
    (:func:`uneven_peaks`).  ``startup`` has one entry per dtype from
    :func:`nnjit.startup.measure_startup`, or none.
    """
    args = _parser().parse_args(argv)
    if args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.min_time <= 60:
        print("--min-time must be between 0 and 60 seconds", file=sys.stderr)
        return 2
    import numba

    if args.threads is not None and not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
        print(
            f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} (NUMBA_NUM_THREADS)",
            file=sys.stderr,
        )
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "--plot needs matplotlib, which is not installed: pip install matplotlib",
                file=sys.stderr,
            )
            return 2
    quick = args.quick or wl.quick_mode()
    workloads = [wl.get(workload_id, quick=quick) for workload_id in args.workloads]
    runners, missing = available_runners(["numba", *args.peers])
    names = [runner.name for runner in runners]
    for name, why in missing.items():
        print(f"skipping {name}: {why}", file=sys.stderr)

    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    threads = numba.get_num_threads() if args.threads is None else args.threads
    numba.set_num_threads(threads)
    startup = args.startup or ("warm" if quick else "full")
    steps_per_entry = len(runners) * (1 + args.repeat) + args.repeat
    total = len(workloads) * len(args.dtype) * steps_per_entry
    if startup != "none":
        total += len(args.dtype) * (args.repeat + (startup == "full"))
    peak_size = PEAK_SIZE_QUICK if quick else PEAK_SIZE
    progress = tqdm(total=total, file=sys.stderr, disable=args.quiet, leave=False)
    # Every runner gets the same number of threads: numba's prange loops,
    # BLAS (the numpy backend, scikit-learn, the peak) and torch's pool.
    with progress, threadpool_limits(threads, user_api="blas"):
        results = bench_workloads(
            workloads, args.dtype, runners, args.repeat, progress, peak_size, args.min_time
        )
        startups = []
        if startup != "none":
            workload = wl.get(STARTUP_WORKLOAD, quick=quick)
            startups = [
                measure_startup(
                    workload, dtype, cold=startup == "full", warm_runs=args.repeat,
                    threads=threads, step=lambda label: _advance(progress, label),
                )
                for dtype in args.dtype
            ]  # fmt: skip

    report = {
        "nnjit_version": _version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m nnjit bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": quick,
        "repeat": args.repeat,
        "min_time": args.min_time,
        "machine": machine_info(),
        "threads": threads,
        "peers": {
            **{runner.name: {"available": True, "version": runner.version()} for runner in runners},
            **{name: {"available": False, "note": why} for name, why in missing.items()},
        },
        "peak": run_peaks(results, peak_size),
        "notes": [*GENERAL_NOTES, *(RUNNER_NOTES[name] for name in names if name in RUNNER_NOTES)],
        "results": results,
        "startup": startups,
    }
    print(_summary(report, names))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2, allow_nan=False, default=_json_default)
        print(f"\nwrote {args.json}")
    if args.plot:
        plot(results, names, args.plot)
        print(f"wrote {args.plot}")
    failed = any(entry["errors"] for entry in results)
    return 1 if failed else 0


def _summary(report: dict[str, Any], names: Sequence[str]) -> str:
    machine = report["machine"]
    peaks = ", ".join(
        f"{peak['gflops']:.1f} GFLOP/s in {dtype} ({peak['min']:.0f}-{peak['max']:.0f} "
        "over the rounds)"
        for dtype, peak in report["peak"].items()
    )
    quick = " (quick: shrunk workloads)" if report["quick"] else ""
    lines = [
        f"nnjit {report['nnjit_version']} bench{quick}: seconds per run, median of "
        f"{report['repeat']} samples of at least {report['min_time']:g} s",
        f"{machine['processor']}, {machine['cpu_count']} cores; {report['threads']} "
        f"thread(s) for every runner; matrix-product peak {peaks}",
        "",
        format_table(report["results"], names),
        "",
    ]
    notes = list(report["notes"]) + uneven_peaks(report["peak"])
    if report["startup"]:
        first = report["startup"][0]
        lines += [
            f"Start-up in a fresh process: import nnjit, then a first run of {first['workload']} "
            f"{first['architecture']} (one epoch of {first['samples']} samples)",
            "",
            format_startup(report["startup"]),
            "",
        ]
        notes.append(
            "start-up: the data is loaded before the clock starts; warm cache: the median of "
            f"{report['repeat']} processes; empty cache: one process with a new "
            "NUMBA_CACHE_DIR, whose first fit compiles the kernels"
        )
    lines += [f"- {note}" for note in notes]
    for name, peer in report["peers"].items():
        if not peer["available"]:
            lines.append(f"- {name} skipped: {peer['note']}")
    seen = set()
    for entry in report["results"]:
        for note in entry["notes"]:
            if (entry["workload"], note) not in seen:
                seen.add((entry["workload"], note))
                lines.append(f"- {entry['workload']}: {note}")
    return "\n".join(lines)


def _version() -> str:
    import nnjit

    return nnjit.__version__


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
