"""What every ``bench`` subcommand module shares: the user-facing error and the results/reports roots."""
from __future__ import annotations

import os
from pathlib import Path

from bench.errors import UserError

AXES = ("backbone", "target", "source", "ft_fraction", "transfer", "train_mode", "seed")


class CliError(UserError):
    """A user-facing error: printed as one message, exit code 2."""


def _results_root(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("BENCH_RESULTS", "results"))
    flag = "--results" if arg else ("$BENCH_RESULTS" if os.environ.get("BENCH_RESULTS") else "results root")
    _check_root(root, flag, "results/<suite>")
    from bench.records import MANIFEST, read_record_any

    man = read_record_any(root / MANIFEST) if root.is_dir() else None
    if man is not None:
        raise CliError(f"{flag} {root}: this is the results folder of suite {man.get('suite')!r} itself; pass the "
                       f"folder that holds it ({root.parent}), results go to <root>/<suite>")
    return root


def _reports_root(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("BENCH_REPORTS", "reports"))
    _check_root(root, "--reports" if arg else ("$BENCH_REPORTS" if os.environ.get("BENCH_REPORTS") else "reports root"),
                "reports/<suite>")
    return root


def _check_root(root: Path, flag: str, layout: str) -> None:
    """A results or reports root must be a folder (or not exist yet), and so must every folder above it."""
    for p in (root, *root.parents):
        if p.exists() and not p.is_dir():
            raise CliError(f"{flag} {root}: {p} is a file, not a folder; pass a folder (it will hold {layout})")
