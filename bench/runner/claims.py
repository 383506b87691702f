"""Claim files: several runners (processes, hosts, Slurm array tasks) share one results folder safely.

Before computing a job (a cell or a source pre-training) a runner creates ``<folder>/.claims/<id>.claim``
with ``os.open(O_CREAT | O_EXCL)``: exactly one creator wins, on a local disk and on NFSv3+. The file
holds who owns it (host, pid, Slurm ids, a random token, the attempt number); its owner touches it every
``heartbeat_s`` seconds. A claim is *stale* when its heartbeat is older than ``stale_after_s``, or at
once when its owner ran on this host and that process is gone (``kill -9``). A stale claim is taken
over: under a short ``.break`` lock (itself ``O_EXCL``) the taker re-reads it, removes it and creates
its own with ``attempt + 1``. The record written by the job is the "done" marker; the claim only says
"someone is working on it", and is removed when the job ends.
"""
from __future__ import annotations

import json
import os
import platform
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.fileio import write_text_atomic

CLAIMS_DIR = ".claims"
CLAIM_MODE = 0o644


def claims_dir(folder: str | Path) -> Path:
    return Path(folder) / CLAIMS_DIR


def claim_path(folder: str | Path, job_id: str) -> Path:
    return claims_dir(folder) / f"{job_id}.claim"


def slurm_ids() -> dict:
    """The Slurm (or submitit local) job ids of this process, empty outside a job."""
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
            "SUBMITIT_LOCAL_JOB_ID")
    return {k.lower(): os.environ[k] for k in keys if os.environ.get(k)}


def _owner(token: str, attempt: int) -> dict:
    return {"host": platform.node(), "pid": os.getpid(), "token": token, "attempt": attempt,
            "since": time.time(), **slurm_ids()}


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped by its parent is a zombie: dead for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def read_claim(path: str | Path) -> tuple[dict | None, float | None]:
    """The claim's owner info (None if unreadable, e.g. just being written) and its heartbeat time."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None, None
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        info = None
    return (info if isinstance(info, dict) else None), mtime


def is_stale(info: dict | None, mtime: float, stale_after_s: float, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if now - mtime > stale_after_s:
        return True
    job = os.environ.get("SLURM_JOB_ID")
    if info and job and info.get("slurm_job_id") == job and info.get("pid") != os.getpid():
        return True  # our own Slurm job, requeued after preemption or timeout: its old claim is dead
    return bool(info and info.get("host") == platform.node() and not pid_alive(int(info.get("pid", -1))))


@dataclass
class Claim:
    """A claim this process holds. ``attempt`` counts how many owners have started the job."""

    path: Path
    token: str
    attempt: int = 1
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def adopt(self) -> None:
        """Make this process the owner (a worker taking over the claim its parent made for it)."""
        info, _ = read_claim(self.path)
        if info is not None and info.get("token") != self.token:
            raise ClaimLost(f"{self.path}: claimed by another owner ({info.get('host')} pid {info.get('pid')})")
        write_text_atomic(self.path, json.dumps(_owner(self.token, self.attempt)), mode=CLAIM_MODE)

    def start_heartbeat(self, period_s: float) -> None:
        def beat():
            while not self._stop.wait(period_s):
                try:
                    os.utime(self.path)
                except FileNotFoundError:
                    return
        self._thread = threading.Thread(target=beat, name=f"heartbeat-{self.path.stem}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the claim if it is still ours."""
        self._stop.set()
        info, _ = read_claim(self.path)
        if info is None or info.get("token") == self.token:
            self.path.unlink(missing_ok=True)


class ClaimLost(RuntimeError):
    """The claim was taken over by another runner (this one looked dead)."""


def try_claim(folder: str | Path, job_id: str, *, stale_after_s: float) -> Claim | None:
    """Claim ``job_id`` in ``folder``; None if a live owner holds it. Stale claims are taken over."""
    path = claim_path(folder, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    attempt = 1
    for _ in range(3):
        token = secrets.token_hex(8)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, CLAIM_MODE)
        except FileExistsError:
            info, mtime = read_claim(path)
            if mtime is None:
                continue  # released meanwhile: try again
            if not is_stale(info, mtime, stale_after_s):
                return None
            if not _break_stale(path, info, stale_after_s):
                return None
            attempt = int((info or {}).get("attempt", 1)) + 1
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(_owner(token, attempt), f)
        return Claim(path=path, token=token, attempt=attempt)
    return None


def _break_stale(path: Path, seen: dict | None, stale_after_s: float) -> bool:
    """Remove a stale claim under a ``.break`` lock, unless it changed since it was judged stale."""
    lock = path.with_name(path.name + ".break")
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, CLAIM_MODE)
    except FileExistsError:
        try:  # a breaker that died holding the lock
            if time.time() - lock.stat().st_mtime > stale_after_s:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    os.close(fd)
    try:
        info, mtime = read_claim(path)
        if mtime is None:
            return True
        same = (info or {}).get("token") == (seen or {}).get("token")
        if same and is_stale(info, mtime, stale_after_s):
            path.unlink(missing_ok=True)
            return True
        return False
    finally:
        lock.unlink(missing_ok=True)


def list_claims(folder: str | Path, stale_after_s: float) -> list[dict]:
    """Every claim in ``folder`` with its owner, heartbeat age and whether it is stale."""
    out = []
    now = time.time()
    for p in sorted(claims_dir(folder).glob("*.claim")):
        info, mtime = read_claim(p)
        if mtime is None:
            continue
        out.append({"id": p.stem, **(info or {}), "heartbeat_age_s": now - mtime,
                    "stale": is_stale(info, mtime, stale_after_s, now)})
    return out
