"""Where a result came from: package versions, git commit, machine, date."""
from __future__ import annotations

import datetime as _dt
import functools
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("bench", "torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "pandas", "pydantic")


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def git_commit() -> dict:
    """The bench checkout's commit and whether it had uncommitted changes (None outside git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if sha.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    import torch

    return {"packages": {p: _version(p) for p in PACKAGES}, **git_commit(), "python": platform.python_version(),
            "platform": platform.platform(), "hostname": platform.node(),
            "device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads()}


def provenance() -> dict:
    return {**_static(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
