"""Seconds per cell spent outside training, on whatever device it runs (issue 15).

For each backbone, a small suite of ``--cells`` fine-tune cells (random init, synthetic INbreast-like target)
runs through :func:`bench.run_suite` in this process (``workers: 0``, ``--device``), into a fresh results
folder, after a warm-up run that pays the imports and first-use costs once. Each record says how long its
training epochs took (``history[].seconds``) and how long the cell took in all (``timing``); the rest of the
run is the harness:

- ``setup``: dataset lookup, model construction and initial weights (``timing.setup_s``);
- ``ft other``: fine-tuning minus its epochs: BatchNorm re-estimation and the train-accuracy pass;
- ``eval``: scoring the evaluation images, metrics, the record's contents (``timing.eval_s``);
- ``runner``: what ``run_suite`` adds per cell: plan, claims, provenance, writing the record and the
  report's inputs, data preloading (shared by the cells, divided among them).

    .venv/bin/python benchmarks/cell_overhead.py [--device cpu|cuda] [--size 64] [--cells 4]
    .venv/bin/python benchmarks/cell_overhead.py --backbones toy_cnn --size 32 --cells 2   # seconds, on a CPU
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BACKBONES = ("resnet18", "efficientnet_lite0", "toy_cnn")


def suite_for(backbone: str, *, size: int, cells: int, n_images: int, epochs: int) -> dict:
    seeds = max(1, cells // 2)
    return {"name": f"overhead-{backbone.replace('_', '-')}",
            "axes": {"backbone": [backbone], "source": ["random"], "ft_fraction": [0.25, 0.5][:min(2, cells)],
                     "target": ["synth-inbreast"], "transfer": ["full"], "seeds": seeds},
            "image_size": size, "finetune": {"epochs": epochs, "lr": 3e-4, "batch_size": 16},
            "data": {"synth-inbreast": {"n_images": n_images}}}


def run_once(raw: dict, device: str | None) -> dict:
    """One run of the suite into a fresh folder: the per-cell split of its wall time (seconds per cell)."""
    from bench import build_suite, run_suite, suite_records
    from bench.suite import ExecutorSettings

    suite = build_suite(raw)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run_suite(suite, results_root=d, progress=False, log=lambda m: None,
                  executor=ExecutorSettings(workers=0, threads=None, device=device))
        wall = time.perf_counter() - t0
        recs = [r for r in suite_records(suite, d) if r["status"] == "ok"]
    if not recs:
        raise RuntimeError(f"suite {suite.name}: no cell finished")
    n = len(recs)
    train = sum(e["seconds"] for r in recs for e in r["history"]) / n
    timing = {k: sum(r["timing"][k] for r in recs) / n for k in ("setup_s", "finetune_s", "eval_s", "total_s")}
    return {"cells": n, "wall_per_cell": wall / n, "training": train, "setup": timing["setup_s"],
            "ft_other": timing["finetune_s"] - train, "eval": timing["eval_s"],
            "runner": wall / n - timing["total_s"], "outside": wall / n - train,
            "device": recs[0]["provenance"]["device"]}


def measure(backbone: str, *, device: str | None, size: int, cells: int, n_images: int, epochs: int,
            repeats: int) -> dict:
    raw = suite_for(backbone, size=size, cells=cells, n_images=n_images, epochs=epochs)
    run_once(raw, device)  # warm-up: imports, kernels, first-use costs (once per process, not per cell)
    runs = [run_once(raw, device) for _ in range(repeats)]
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k not in ("device", "cells")}
    return {"backbone": backbone, "size": size, "cells": runs[0]["cells"], "device": runs[0]["device"], **out}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: a GPU where there is one)")
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    ap.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    ap.add_argument("--cells", type=int, default=4, help="cells per run (default 4)")
    ap.add_argument("--n-images", type=int, default=80, help="target images (default 80)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up; the median is shown")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if args.device:
        from bench.batches import device_problem

        if problem := device_problem(args.device):
            sys.exit(f"error: {problem}")
    rows = [measure(b, device=args.device, size=args.size, cells=args.cells, n_images=args.n_images,
                    epochs=args.epochs, repeats=args.repeats) for b in args.backbones]
    print(f"seconds per cell, median of {args.repeats} runs, {args.size} px, {args.n_images} target images, "
          f"{args.epochs} epochs; device {rows[0]['device']}")
    print("| backbone | cells | wall/cell | training | outside training | setup | ft other | eval | runner |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backbone']} | {r['cells']} | {r['wall_per_cell']:.3f} | {r['training']:.3f} | "
              f"{r['outside']:.3f} | {r['setup']:.3f} | {r['ft_other']:.3f} | {r['eval']:.3f} | {r['runner']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
