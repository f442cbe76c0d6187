"""Command line: ``python -m nnjit demo``, ``bench`` and ``compile``."""

from __future__ import annotations

import sys

USAGE = """usage: python -m nnjit {demo,bench,compile} [options]

  demo     train on generated and bundled data; compare the numba and numpy backends
  bench    time the standard workloads against the numpy backend and installed peers
  compile  compile the kernels into numba's cache ahead of the first fit

'python -m nnjit COMMAND --help' describes each command's options."""


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; returns the process exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from nnjit.demo import main as run
    elif command == "bench":
        from nnjit.bench import main as run
    elif command == "compile":
        from nnjit.precompile import main as run
    else:
        print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
