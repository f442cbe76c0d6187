"""Helpers shared by the example scripts: quick mode, the picture directory, matplotlib.

Every example accepts ``--quick`` (or the environment variable
``NNJIT_EXAMPLES_QUICK=1``) to run with fewer epochs, and writes its pictures to
``examples/images/`` unless ``NNJIT_EXAMPLES_OUTPUT`` names another directory.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path
from typing import Any

QUICK_ENV = "NNJIT_EXAMPLES_QUICK"
OUTPUT_ENV = "NNJIT_EXAMPLES_OUTPUT"


def parse_args(argv: list[str] | None, description: str | None) -> argparse.Namespace:
    """Command line of every example: ``--quick``; ``args.quick`` also honours the env var."""
    first_paragraph = (description or "").strip().split("\n\n")[0]
    parser = argparse.ArgumentParser(description=first_paragraph)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer epochs, for tests (also set by {QUICK_ENV}=1)",
    )
    args = parser.parse_args(argv)
    args.quick = args.quick or os.environ.get(QUICK_ENV, "") not in ("", "0")
    return args


def say(text: str, indent: int = 0) -> None:
    """Print ``text`` as one paragraph wrapped to 88 columns, indented by ``indent`` spaces."""
    pad = " " * indent
    print(
        textwrap.fill(text, 88, initial_indent=pad, subsequent_indent=pad, break_on_hyphens=False)
    )


def output_dir() -> Path:
    """Where pictures go: ``$NNJIT_EXAMPLES_OUTPUT`` or ``images/`` next to the scripts."""
    path = Path(os.environ.get(OUTPUT_ENV) or Path(__file__).resolve().parent / "images")
    path.mkdir(parents=True, exist_ok=True)
    return path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or None if not installed."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: skipping the picture (pip install matplotlib)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def epoch_axes(*axes: Any) -> None:
    """Label the x axis "epoch", draw a light grid and the legend, on each of ``axes``."""
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()


def save_figure(fig: Any, name: str, title: str | None = None, *, tight: bool = True) -> Path:
    """Title ``fig``, save it as ``name`` in :func:`output_dir`, close it and say where it went.

    ``tight=False`` keeps a layout the script arranged itself (colour bars, text).
    """
    import matplotlib.pyplot as plt

    if title is not None:
        fig.suptitle(title)
    if tight:
        fig.tight_layout()
    path = output_dir() / name
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"saved picture: {path}")
    return path


def losses_until_divergence(
    net: Any, X: Any, y: Any, epochs: int, **fit_args: Any
) -> tuple[list[float], Exception | None]:
    """Train one epoch per ``fit`` call and record the loss until it stops being finite.

    Returns the per-epoch training losses and the ``DivergenceError`` that ended
    the run (None if all epochs stayed finite).  Plain SGD only: momentum would
    restart at every call.
    """
    import nnjit

    losses: list[float] = []
    for _ in range(epochs):
        try:
            losses.extend(net.fit(X, y, epochs=1, **fit_args).loss)
        except nnjit.DivergenceError as error:
            return losses, error
    return losses, None
