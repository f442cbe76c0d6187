"""Where numba caches nnjit's kernels, and the lock that lets one process at a time fill it.

numba saves a compiled function by reading the function's index file,
choosing a data file name from the entries it holds, then writing the index
and the data, with no lock.  Two processes that compile the same kernel at
once, one for each dtype, can both read the index before either writes it:
both choose the first data file name, one dtype's entry is lost, and the
index can end up pointing at the other dtype's machine code, which numba
then loads without a check.  Compiling the two dtypes in two processes at
once lost three entries of thirteen in one run (numba/numba#10128 reports
the same kind of race for gufuncs).

So a process compiles or loads the kernels of a dtype holding an exclusive
lock on a file beside them, :data:`LOCK_NAME`.  Another process that needs
kernels at the same time waits, then loads what the first one compiled,
instead of compiling it again.  A process takes the lock once per dtype,
before its first call of the entry point; it never holds it while training.
The lock is advisory (``flock``): on a system without :mod:`fcntl`, or in a
directory where the lock file cannot be created, there is no lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

LOCK_NAME = "nnjit-compile.lock"

# The descriptors of the lock files this process holds now.
_held: set[int] = set()


def _drop_inherited_locks() -> None:
    """In a forked process: close the parent's lock descriptors.

    An ``flock`` belongs to the open file, which a fork shares: a child
    that kept its copy would hold the parent's lock after the parent let
    go, for as long as the child lives (a pool worker, for hours).
    """
    for fd in _held:
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


def held_locks() -> tuple[int, ...]:
    """The descriptors of the compile locks this process holds now.

    A process that starts a helper to compile under its lock hands them on
    (see :mod:`nnjit.kernel_compile`).  An ``flock`` belongs to the open file,
    which the helper then shares: the lock lasts until both have closed it,
    so a helper whose parent was killed still holds it while it writes to
    the cache.
    """
    return tuple(_held)


def cache_directory() -> str | None:
    """Where numba keeps the compiled kernels, if it says."""
    from nnjit.epoch import run_epochs

    # numba has no public accessor for it.  Every kernel module sits in the
    # package's own directory, so they all share the entry point's.
    return getattr(getattr(run_epochs, "_cache", None), "_cache_path", None)


@contextlib.contextmanager
def cache_lock(directory: str | None) -> Iterator[bool]:
    """Hold the exclusive compile lock of the kernel cache in ``directory``.

    Blocks while another process holds it.

    Parameters
    ----------
    directory : str or None
        The cache directory, from :func:`cache_directory`.  ``None`` means no
        cache, hence no lock.

    Yields
    ------
    bool
        Whether the lock is held: False without :mod:`fcntl`, without a
        directory, or if the lock file could not be created in it.
    """
    if fcntl is None or directory is None:
        yield False
        return
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield False
        return
    _held.add(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        _held.discard(fd)
        os.close(fd)  # releases the lock
