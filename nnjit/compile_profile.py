"""Where a cold compile spends its time: seconds per compiled function.

``python -m nnjit compile --profile`` prints it.  numba announces every
compilation of a function, and every stretch of LLVM work, as events
(:mod:`numba.core.event`); :func:`record` listens to both.  A function that
calls others compiles them while it is typed, so its compile time holds
theirs: the ``own`` column leaves it out, and the ``own`` times add up to the
whole compile.  ``LLVM`` is the part of ``own`` spent optimising LLVM IR and
generating machine code; the rest is numba's own passes, from type inference
to lowering.  numba links a callee's code into its caller and optimises it
there again: a kernel's LLVM time holds the BLAS products it calls, but the
entry point's holds no kernel, which it calls through their addresses (see
:mod:`nnjit.kernel_calls`).  Kernels that a helper process compiled (see
:mod:`nnjit.kernel_compile`) are not in this process's events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from numba.core import event

COMPILE = "numba:compile"
LLVM = "numba:llvm_lock"
# Functions of numba's own modules (its overloads of max, np.empty, ...) are
# summed up in one row under this name.
NUMBA_OWN = "numba's own functions"


@dataclass
class FunctionTime:
    """Compile time of one function, in seconds, over its compilations."""

    name: str
    total: float  # from the start to the end of its compilations
    own: float  # total, less the functions compiled while it compiled
    llvm: float  # the part of own spent in LLVM
    compilations: int


class _Recorder(event.Listener):
    """Every start and end of a compilation and of LLVM work, in the order they came."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, bool, str]] = []

    def _add(self, ev: event.Event) -> None:
        name = ""
        if ev.kind == COMPILE:
            function = ev.data["dispatcher"].py_func
            name = f"{function.__module__}.{function.__qualname__}"
        self.events.append((time.perf_counter(), ev.kind, ev.is_start, name))

    def on_start(self, ev: event.Event) -> None:
        self._add(ev)

    def on_end(self, ev: event.Event) -> None:
        self._add(ev)


class CompileProfile:
    """What :func:`record` heard; :meth:`functions` sums it up."""

    def __init__(self) -> None:
        self._recorder = _Recorder()

    def functions(self) -> list[FunctionTime]:
        """Every function compiled, the longest ``own`` time first.

        Functions from numba's own modules are summed in one row,
        :data:`NUMBA_OWN`.
        """
        times: dict[str, FunctionTime] = {}
        # Open compilations: [name, start, seconds of the ones inside it].
        stack: list[list] = []
        llvm_depth = 0
        llvm_start = 0.0
        for stamp, kind, is_start, name in self._recorder.events:
            if kind == LLVM:
                # LLVM's lock is taken again while held: count the outer hold.
                llvm_depth += 1 if is_start else -1
                if is_start and llvm_depth == 1:
                    llvm_start = stamp
                elif not is_start and llvm_depth == 0 and stack:
                    self._entry(times, stack[-1][0]).llvm += stamp - llvm_start
                continue
            if is_start:
                stack.append([name, stamp, 0.0])
                continue
            name, start, inner = stack.pop()
            total = stamp - start
            entry = self._entry(times, name)
            entry.total += total
            entry.own += total - inner
            entry.compilations += 1
            if stack:
                stack[-1][2] += total
        return sorted(times.values(), key=lambda entry: -entry.own)

    @staticmethod
    def _entry(times: dict[str, FunctionTime], name: str) -> FunctionTime:
        key = NUMBA_OWN if name.startswith("numba.") else name
        if key not in times:
            times[key] = FunctionTime(key, 0.0, 0.0, 0.0, 0)
        return times[key]


@contextlib.contextmanager
def record() -> Iterator[CompileProfile]:
    """Listen to numba's compilations inside the block.

    Yields
    ------
    CompileProfile
        Call :meth:`CompileProfile.functions` after the block.
    """
    profile = CompileProfile()
    with contextlib.ExitStack() as stack:
        for kind in (COMPILE, LLVM):
            stack.enter_context(event.install_listener(kind, profile._recorder))
        yield profile


def format_profile(functions: list[FunctionTime], prefix: str = "nnjit.") -> str:
    """A table of :meth:`CompileProfile.functions`, with the names shortened.

    Parameters
    ----------
    functions : list of FunctionTime
    prefix : str
        Taken off the front of every name.

    Returns
    -------
    str
        One line per function and a last line with the sums, the ``own``
        sum being the whole compile.
    """
    names = [f.name.removeprefix(prefix) for f in functions]
    width = max([len(name) for name in names] + [len("function"), len("sum")])
    lines = [f"{'function':<{width}}  {'total s':>8}  {'own s':>7}  {'LLVM s':>7}  compilations"]
    for name, f in zip(names, functions, strict=True):
        lines.append(
            f"{name:<{width}}  {f.total:8.2f}  {f.own:7.2f}  {f.llvm:7.2f}  {f.compilations:>12}"
        )
    own = sum(f.own for f in functions)
    llvm = sum(f.llvm for f in functions)
    count = sum(f.compilations for f in functions)
    lines.append(f"{'sum':<{width}}  {'':>8}  {own:7.2f}  {llvm:7.2f}  {count:>12}")
    return "\n".join(lines)
