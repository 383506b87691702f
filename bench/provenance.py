"""Where a result came from: code, packages, machine, scheduler job, and the exact data and weights used.

:func:`provenance` returns what is the same for every record a process writes (git commit and whether
the tree was dirty, with a hash of the diff; package versions; torch, CUDA and cuDNN versions; device;
hostname; Slurm job ids; date). :func:`record_provenance` adds what is specific to one record: the hash
of its fine-tune/evaluation split and the SHA-256 of the weights it started from.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("bench", "torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "pandas", "pydantic",
            "submitit")


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def git_commit() -> dict:
    """The bench checkout's commit, whether tracked files had uncommitted changes, and a hash of that diff."""
    root = Path(__file__).resolve().parent.parent
    none = {"commit": None, "dirty": None, "diff_sha256": None}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False)
        diff = subprocess.run(["git", "diff", "HEAD"], cwd=root, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return none
    if sha.returncode != 0:
        return none
    dirty = bool(diff.stdout.strip())
    return {"commit": sha.stdout.strip(), "dirty": dirty,
            "diff_sha256": hashlib.sha256(diff.stdout).hexdigest()[:16] if dirty else None}


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else ``platform.processor()``): CPU results reproduce bit for
    bit only on the same CPU type, thread count and library versions."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"packages": {p: _version(p) for p in PACKAGES}, **git_commit(), "python": platform.python_version(),
            "platform": platform.platform(), "hostname": platform.node(), "cpu": cpu_model(),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "gpu_count": torch.cuda.device_count() if cuda else 0}


def device_label() -> str:
    """The device this process computes cells on (``bench run --device``, else a GPU where there is one):
    "cpu", or "cuda:" and the GPU's name ("cuda:NVIDIA H200"); which GPU is ``cuda_visible_devices``."""
    import torch

    from bench.batches import default_device

    device = default_device()
    if device.type != "cuda":
        return device.type
    try:
        return "cuda:" + torch.cuda.get_device_name(device)
    except Exception:  # noqa: BLE001 -- provenance never fails a finished cell
        return str(device)


def provenance() -> dict:
    """Code, packages, machine, Slurm ids and date of this process (cheap after the first call)."""
    import torch

    from bench.runner.claims import slurm_ids

    return {**_static(), "device": device_label(), "torch_threads": torch.get_num_threads(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "slurm": slurm_ids() or None,
            "pid": os.getpid(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (cached per path, modification time and size)."""
    st = Path(path).stat()
    return _file_sha256(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def state_dict_sha256(backbone: str, explicit_path: str | None) -> str:
    """SHA-256 over the names and bytes of the ImageNet state dict a cell loaded (built-in weights)."""
    from bench.backbones.specs import imagenet_state_dict

    h = hashlib.sha256()
    for k, v in sorted(imagenet_state_dict(backbone, explicit_path).items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def imagenet_weights_sha256(backbone: str, explicit_path: str | None = None) -> str | None:
    """SHA-256 of the ImageNet weights ``source: imagenet`` loads for ``backbone`` here: the bytes of the file
    it loads (the suite's ``weights:``, ``$BENCH_WEIGHTS_DIR``, timm's cache; for a ``weights_from`` backbone
    without its own, that backbone's file), or :func:`state_dict_sha256` of built-in weights; None when there
    are none (nothing is loaded or downloaded to find out)."""
    from bench.backbones.specs import find_imagenet_weights

    found = find_imagenet_weights(backbone, explicit_path, follow_weights_from=True)
    if found is None:
        return None
    if found.path is None:  # built-in weights: no file to hash
        return state_dict_sha256(backbone, None)
    return file_sha256(found.path)


def weights_sha256(record: dict, results_root: str | Path) -> str | None:
    """SHA-256 of the weights a cell started from: the source checkpoint file, the ImageNet weights (see
    :func:`imagenet_weights_sha256`), or None (random initialisation, reproducible from the record's seeds)."""
    w = record.get("weights") or {}
    try:
        if w.get("pretrain_id"):
            from bench.records import pretrain_paths

            return file_sha256(pretrain_paths(results_root, w["pretrain_id"])[0])
        if w.get("source") == "imagenet":
            cfg = record.get("config") or {}
            return imagenet_weights_sha256(cfg.get("backbone"), cfg.get("weights"))
    except (OSError, ValueError, KeyError):
        return None
    return None


def backbone_origin(name: str | None) -> str | None:
    """Where the cell's backbone came from: "built-in", or a plugin's entry point with its distribution and
    version, its module, or ``timm:``/``module:factory`` (plugin code is not part of a cell id: this says which)."""
    if not name:
        return None
    from bench.backbones import BACKBONES

    try:
        return BACKBONES.origin_of(name)
    except Exception:  # noqa: BLE001 -- provenance never fails a finished cell
        return None


def record_provenance(record: dict, results_root: str | Path) -> dict:
    """:func:`provenance` plus the record's split hash, the hash of the weights it started from and the origin of
    its backbone."""
    return {**provenance(), "split_hash": (record.get("split") or {}).get("hash"),
            "weights_sha256": weights_sha256(record, results_root),
            "backbone_origin": backbone_origin((record.get("cell") or {}).get("backbone"))}
