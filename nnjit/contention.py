"""Fewer threads for a fit or a prediction while other programs keep the cores busy.

A parallel product runs one row block per thread, and every thread waits at
the end of the loop for the last block.  With OpenMP a waiting thread spins,
holding its core, so that the next loop starts in microseconds.  When another
program wants a core too, the spinning thread keeps it from the thread still
working, and every loop waits for the operating system to give that thread
its turn: on the 2-core machine nnjit is developed on, with one other busy
process, W4 took 0.8-1.2 s in float64 on two threads and 0.39-0.42 s on one
(0.22-0.25 s on two with the machine to itself).

So before a fit, a prediction or a gradient whose products are split into
parallel blocks, :func:`fewer_threads_when_busy` counts the threads of other
processes that are running or waiting to run, and the call runs on no more
threads than the cores they leave: one, on two cores beside one busy
program.  The blocks, and so the results, never depend on the number of
threads (see :mod:`nnjit.dense`): only the time changes.  The count is
Linux's ``procs_running`` (in ``/proc/stat``) less this process's own
running threads.  One look takes about 0.1 ms; only if it sees other
threads does it look twice more, 1 ms apart, and keep the smallest count, so
that a task that runs for a moment is not taken for a busy program.  On an
idle machine, two looks 0.1 ms apart took one for a busy program in 8 checks
of 3000; three looks 1 ms apart, in none and then in 1 of 3000.  Elsewhere
than on Linux, or with the environment variable ``NNJIT_ADAPTIVE_THREADS=0``,
they use the threads they are given.
"""

from __future__ import annotations

import os
import time

import numba

ENV = "NNJIT_ADAPTIVE_THREADS"
LOOKS = 3
PAUSE_SECONDS = 1e-3
REUSE_SECONDS = 0.1

# When the last count was taken (time.monotonic()), and the count.
_last_look: tuple[float, int] | None = None


def enabled() -> bool:
    """Whether calls adapt their threads: unless ``NNJIT_ADAPTIVE_THREADS`` is ``0``."""
    return os.environ.get(ENV, "1").strip() != "0"


def procs_running(stat: bytes) -> int:
    """The ``procs_running`` field of ``/proc/stat``: threads running or runnable."""
    for line in stat.splitlines():
        if line.startswith(b"procs_running "):
            return int(line.split()[1])
    raise ValueError("no procs_running line in /proc/stat")


def is_running(task_stat: bytes) -> bool:
    """Whether ``/proc/<pid>/task/<tid>/stat`` says the thread is running or runnable.

    The state follows the command name, which is in parentheses and may
    itself hold spaces and parentheses.
    """
    state = task_stat.rindex(b")") + 2
    return task_stat[state : state + 1] == b"R"


def _own_running_threads() -> int:
    count = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as file:
                count += is_running(file.read())
        except OSError:  # the thread ended meanwhile
            pass
    return count


def _others_now() -> int:
    # This process's threads are counted before and after the total, and the
    # fewer taken: one of them that starts running in between must not hide
    # another program's thread.
    before = _own_running_threads()
    with open("/proc/stat", "rb") as file:
        total = procs_running(file.read())
    return max(0, total - min(before, _own_running_threads()))


def other_running_threads() -> int:
    """Threads of other processes running or waiting for a core, or 0 if it cannot tell.

    The smallest count of ``LOOKS`` looks, ``PAUSE_SECONDS`` apart; after a
    look that sees none, no more are taken.
    """
    try:
        count = _others_now()
        for _ in range(LOOKS - 1):
            if count == 0:
                break
            time.sleep(PAUSE_SECONDS)
            count = min(count, _others_now())
        return count
    except (OSError, ValueError):  # no /proc: not Linux
        return 0


def recent_other_running_threads() -> int:
    """:func:`other_running_threads`, or its last count if taken less than ``REUSE_SECONDS`` ago.

    A program that keeps a core busy does so for longer than that, and a
    loop of small predictions then looks once per tenth of a second instead
    of once per call.
    """
    global _last_look
    last = _last_look
    if last is not None and time.monotonic() - last[0] < REUSE_SECONDS:
        return last[1]
    count = other_running_threads()
    _last_look = (time.monotonic(), count)
    return count


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_to_use(threads: int, cores: int, others: int, machine_cores: int) -> int:
    """At most ``threads``, at most the cores the other threads leave, at least one.

    ``others`` counts the whole machine's threads: in a container confined
    to ``cores`` of the ``machine_cores`` (a cpuset), most of them may run on
    cores it cannot use.  They are taken as spread evenly over the machine,
    so that a container on 2 of 64 cores gives up a thread only once 32
    threads of other programs are running.
    """
    here = others * cores // max(machine_cores, cores)
    return max(1, min(threads, cores - here))


def fewer_threads_when_busy() -> FewerThreadsWhenBusy:
    """Run the block on fewer of numba's threads if other programs are busy on the cores.

    ``with`` gives the number of threads the block runs on, and puts back the
    calling thread's number afterwards (numba's count is per thread).
    """
    return FewerThreadsWhenBusy()


class FewerThreadsWhenBusy:
    """The block of :func:`fewer_threads_when_busy`.

    A class rather than a generator, which added about 1.5 µs to each of
    the small predictions that open one.
    """

    __slots__ = ("threads", "used")

    def __enter__(self) -> int:
        threads = self.threads = self.used = numba.get_num_threads()
        if threads > 1 and enabled():
            others = recent_other_running_threads()
            if others:
                machine = os.cpu_count() or 1
                self.used = threads_to_use(threads, usable_cores(), others, machine)
        if self.used != threads:
            numba.set_num_threads(self.used)
        return self.used

    def __exit__(self, *exc_info: object) -> None:
        if self.used != self.threads:
            numba.set_num_threads(self.threads)
