"""``bench status results/<suite>``: done / failed / running / pending cells of a results folder, with reasons.

It reads only the folder: the suite manifest (``_suite.json``, written by ``bench run``), the records
and the claim files. A claim whose heartbeat stopped (dead worker) is shown as stale: the next
``bench run`` takes it over. The runs of the suite's SVCCA analysis (``<folder>/svcca/``) are listed the same
way, under ``analyses``.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from bench.records import SVCCA_DIR, read_record, record_path
from bench.runner.claims import list_claims


class StatusError(ValueError):
    """The folder is not a results folder ``bench status`` can read; the message says why and what to pass."""


def folder_status(folder: str | Path, *, stale_after_s: float | None = None) -> dict:
    """Counts and lists of a results folder: ``done, na, failed, running, stale, pending`` cell ids, and the same
    lists of its SVCCA runs under ``analyses`` (None when the suite has none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StatusError(f"{folder}: no such results folder; pass results/<suite> (run 'bench run SUITE' first)")
    man_path = folder / "_suite.json"
    try:
        man = json.loads(man_path.read_text())
    except FileNotFoundError:
        raise StatusError(f"{folder}: no {man_path.name} (written by 'bench run'); is this a results/<suite> "
                          "folder? Folders written before claims existed: run 'bench run SUITE' once") from None
    except json.JSONDecodeError as exc:
        raise StatusError(f"{man_path}: not valid JSON ({exc}); delete it and run 'bench run SUITE' again") from None
    stale_after = stale_after_s or float((man.get("executor") or {}).get("stale_after_s", 120.0))
    out: dict = {"suite": man.get("suite"), "path": man.get("path"), "cells": len(man["cells"]),
                 **_job_status(folder, man["cells"], stale_after), "analyses": None}
    if man.get("analyses"):
        out["analyses"] = {"runs": len(man["analyses"]),
                           **_job_status(folder / SVCCA_DIR, man["analyses"], stale_after)}
    return out


def _job_status(folder: Path, jobs: dict, stale_after: float) -> dict:
    """``done, na, failed, running, stale, pending`` of ``jobs`` (id -> axes) from their records and claims."""
    claims = {c["id"]: c for c in list_claims(folder, stale_after)}
    out: dict = {"done": [], "na": [], "failed": [], "running": [], "stale": [], "pending": []}
    for cid, axes in jobs.items():
        rec = read_record(record_path(folder, cid))
        st = rec.get("status") if rec else None
        if st == "ok":
            out["done"].append(cid)
        elif st == "na":
            out["na"].append(cid)
        elif st == "failed":
            out["failed"].append({"id": cid, "axes": axes, "reason": rec.get("reason"),
                                  "kind": (rec.get("error") or {}).get("kind")})
        elif cid in claims:
            c = claims[cid]
            out["stale" if c["stale"] else "running"].append({"id": cid, "axes": axes, **c})
        else:
            out["pending"].append({"id": cid, "axes": axes})
    return out


def _label(axes: dict) -> str:
    return (f"{axes.get('backbone')}/{axes.get('source')}/ft{axes.get('ft_fraction', 0):g}/{axes.get('target')}/"
            f"{axes.get('transfer')}/s{axes.get('seed')}")


def format_status(st: dict, *, limit: int = 20) -> str:
    lines = [f"suite {st['suite']} ({st['path'] or 'no file'}): {st['cells']} cells",
             (f"  done {len(st['done'])} (+{len(st['na'])} NA), failed {len(st['failed'])}, running "
              f"{len(st['running'])}, stale {len(st['stale'])}, pending {len(st['pending'])}")]
    now = time.time()
    for r in st["running"][:limit]:
        lines.append(f"  running  {r['id']} {_label(r['axes'])} on {r.get('host')} pid {r.get('pid')}"
                     f"{' (Slurm job ' + r['slurm_job_id'] + ')' if r.get('slurm_job_id') else ''}, "
                     f"for {now - r.get('since', now):.0f}s, heartbeat {r['heartbeat_age_s']:.0f}s ago")
    for r in st["stale"][:limit]:
        lines.append(f"  stale    {r['id']} {_label(r['axes'])}: owner {r.get('host')} pid {r.get('pid')} is gone "
                     f"(heartbeat {r['heartbeat_age_s']:.0f}s ago); the next 'bench run' recomputes it")
    kinds = Counter(f["kind"] or "exception" for f in st["failed"])
    if st["failed"]:
        lines.append(f"  failures by kind: {', '.join(f'{k} {n}' for k, n in kinds.most_common())}"
                     " (kept; 'bench run SUITE --retry-failed' retries them)")
    for f in st["failed"][:limit]:
        lines.append(f"  failed   {f['id']} {_label(f['axes'])}: {f['reason']}")
    if len(st["failed"]) > limit:
        lines.append(f"  ... and {len(st['failed']) - limit} more failed")
    for p in st["pending"][:limit]:
        lines.append(f"  pending  {p['id']} {_label(p['axes'])}")
    if len(st["pending"]) > limit:
        lines.append(f"  ... and {len(st['pending']) - limit} more pending")
    an = st.get("analyses")
    if an:
        lines.append(f"  svcca analysis runs: {an['runs']}: done {len(an['done'])}, failed {len(an['failed'])}"
                     + (" (the next 'bench run' retries them)" if an["failed"] else "")
                     + f", running {len(an['running'])}, stale {len(an['stale'])}, pending {len(an['pending'])}")
        for f in an["failed"][:limit]:
            lines.append(f"  failed   svcca {f['id']} {_svcca_label(f['axes'])}: {f['reason']}")
        for r in an["running"][:limit]:
            lines.append(f"  running  svcca {r['id']} {_svcca_label(r['axes'])} on {r.get('host')} pid {r.get('pid')}")
    return "\n".join(lines)


def _svcca_label(axes: dict) -> str:
    return f"{axes.get('backbone')} from {axes.get('source')} on {axes.get('target')}, seed {axes.get('seed')}"
