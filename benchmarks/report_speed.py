"""How long `bench report` takes on a folder of many records (issue 16: "at most a few seconds for 1,000").

The records are those of a finished suite (default: results/smoke), repeated over seeds until there are ``--n``
of them (each copy gets its own seed and cell id), so every table has many seeds per cell. The report is
rendered in a child process, as a user would run it, and its wall time printed.

    python benchmarks/report_speed.py                       # results/smoke -> 1,000 records
    python benchmarks/report_speed.py --source results/synth-controls --n 2000
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def many_records(source: Path, out: Path, n: int) -> int:
    """Write ``n`` records to ``out``: the cell records of ``source`` repeated over seeds 0, 1, ..."""
    recs = [json.loads(p.read_text()) for p in sorted(source.glob("*.json")) if not p.name.startswith("_")]
    recs = [r for r in recs if "cell" in r and "config" in r]
    if not recs:
        raise SystemExit(f"{source}: no cell records; run e.g. 'bench run smoke' first")
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for seed in range(n):
        for rec in recs:
            if written == n:
                return written
            copy = json.loads(json.dumps(rec))
            copy["cell"]["seed"] = copy["config"]["seed"] = seed
            copy["cell_id"] = hashlib.sha256(f"{rec['cell_id']}-{seed}".encode()).hexdigest()[:16]
            (out / f"{copy['cell_id']}.json").write_text(json.dumps(copy))
            written += 1
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="results/smoke", help="a finished results folder (default: results/smoke)")
    ap.add_argument("--n", type=int, default=1000, help="records in the timed folder (default: 1000)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "many"
        n = many_records(Path(args.source), folder, args.n)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parent.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", "report", str(folder), "--reports", str(Path(tmp) / "rep")],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
    print(f"bench report of {n} records (from {args.source}): {seconds:.1f} s wall, interpreter start included")


if __name__ == "__main__":
    main()
