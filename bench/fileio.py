"""Atomic file writes: a reader sees the old file or the whole new one, never a half-written file.

Every write goes to a temp file in the target's folder (``.<name>.<random>.tmp``), is flushed to disk
(``fsync``), then moved over the target with ``os.replace``, which is atomic within one file system (also on
NFS). A process killed mid-write leaves only the temp file, which ``bench run`` deletes once it is old
(:func:`bench.runner.run.remove_stale_temp_files`); any other exception removes it at once.

One function per payload: :func:`write_bytes_atomic`, :func:`write_text_atomic`, :func:`write_json_atomic`,
and :func:`write_atomic_with` for writers that want a file object (``torch.save``, ``np.savez_compressed``).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic_with(path: str | Path, write: Callable[[IO[bytes]], object], *, mode: int | None = None) -> Path:
    """Call ``write(f)`` on a binary temp file next to ``path``, then move it to ``path`` atomically.

    Args:
        path: the file to (re)write; missing parent folders are created.
        write: writes the content into the open binary file it is given, e.g.
            ``lambda f: torch.save(state, f)``.
        mode: permission bits of the new file; default: those of :func:`tempfile.mkstemp` (``0o600``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic_with`)."""
    return write_atomic_with(path, lambda f: f.write(data), mode=mode)


def write_text_atomic(path: str | Path, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic_with`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON (``indent=1``; NaN and Infinity allowed) to ``path`` atomically.

    A reader sees either the old file, or the whole new one: never a half-written record.
    """
    return write_text_atomic(path, json.dumps(obj, indent=1, allow_nan=True))
