"""What every ``bench`` subcommand module shares: the user-facing error and the results/reports roots."""
from __future__ import annotations

import os
from pathlib import Path

from bench.errors import UserError
from bench.records import AXES, MANIFEST, read_record_any  # noqa: F401  (AXES: bench.cli's name for it)


class CliError(UserError):
    """A user-facing error: printed as one message, exit code 2."""


def _root(arg: str | None, flag: str, env: str, default: str, layout: str) -> tuple[Path, str]:
    """A results or reports root from its flag, else ``$env``, else ``default`` (checked), and how to name it."""
    root = Path(arg or os.environ.get(env, default))
    named = flag if arg else (f"${env}" if os.environ.get(env) else f"{default} root")
    _check_root(root, named, layout)
    return root, named


def resolve_results_root(arg: str | None) -> Path:
    root, flag = _root(arg, "--results", "BENCH_RESULTS", "results", "results/<suite>")
    man = read_record_any(root / MANIFEST) if root.is_dir() else None
    if man is not None:
        raise CliError(f"{flag} {root}: this is the results folder of suite {man.get('suite')!r} itself; pass the "
                       f"folder that holds it ({root.parent}), results go to <root>/<suite>")
    return root


def resolve_reports_root(arg: str | None) -> Path:
    return _root(arg, "--reports", "BENCH_REPORTS", "reports", "reports/<suite>")[0]


def _check_root(root: Path, flag: str, layout: str) -> None:
    """A results or reports root must be a folder (or not exist yet), and so must every folder above it."""
    for p in (root, *root.parents):
        if p.exists() and not p.is_dir():
            raise CliError(f"{flag} {root}: {p} is a file, not a folder; pass a folder (it will hold {layout})")
