"""Harness overhead: one cell through ``bench run`` against a bare hand-written PyTorch loop.

Both arms run in this process, one torch thread, on the same data already in memory (the synthetic
target is generated once, before timing), doing the same optimisation steps: resnet18 from a random
init at 64 px, AdamW with a cosine-decayed learning rate, batches of 16 with random flips, 3 epochs
over the same fine-tune images, then scoring the same evaluation images.

- ``bench``: ``bench.cli.main(["run", suite, "--workers", "0", ...])`` into a fresh results folder:
  suite loading, plan, claim + heartbeat, model creation, split, training, evaluation, metrics, the
  atomic record with provenance, and the report. It excludes interpreter start-up and imports (paid
  once per run, not per cell) and the worker-process start-up of ``--workers N >= 1`` (measured
  separately below, once per worker and run).
- ``bare``: the loop below, nothing else.

The arms alternate ``--repeats`` times; the figure is the median of the per-pair ratios, so a
machine that is busy at times affects both arms of a pair alike.

    .venv/bin/python benchmarks/overhead.py [--repeats 5] [--epochs 3]
"""
from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SUITE = {"name": "overhead",
         "axes": {"backbone": ["resnet18"], "source": ["random"], "ft_fraction": [0.5],
                  "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 1},
         "image_size": 64, "finetune": {"epochs": 3, "lr": 3e-4, "batch_size": 16},
         "data": {"synth-inbreast": {"n_images": 240}}}


def bench_arm(suite_file: Path) -> float:
    from bench.cli import main

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        code = main(["run", str(suite_file), "--workers", "0", "--no-progress", "--results", f"{d}/results",
                     "--reports", f"{d}/reports"])
        t = time.perf_counter() - t0
    assert code == 0
    return t


def bare_arm(images: np.ndarray, labels: np.ndarray, ft_idx: np.ndarray, ev_idx: np.ndarray, epochs: int) -> float:
    import timm

    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=1e-4)
    x_all = torch.from_numpy(images).float().div_(255).sub_(0.5).div_(0.5).unsqueeze(1).expand(-1, 3, -1, -1)
    y_all = torch.from_numpy(labels).long()
    n, bs = len(ft_idx), 16
    steps = max(1, n // bs if n % bs == 1 else math.ceil(n / bs))
    total = epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        order = ft_idx[torch.randperm(n, generator=gen).numpy()]
        for s in range(steps):
            idx = order[s * bs:(s + 1) * bs]
            x, y = x_all[idx].clone(), y_all[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():  # the train-accuracy pass and the evaluation pass bench also makes
        for part in (ft_idx, ev_idx):
            for i in range(0, len(part), 128):
                model(x_all[part[i:i + 128]])
    return time.perf_counter() - t0


def worker_startup() -> float:
    """Seconds for a spawned worker process to import the harness and torch (once per worker and run)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import bench.runner.worker, bench.runner.cell, torch"], check=True,
                   cwd=REPO)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    SUITE["finetune"]["epochs"] = args.epochs

    from bench.data.splits import finetune_split
    from bench.runner.datasets import get_dataset
    from bench.runner.seeds import split_seed

    target = get_dataset("synth-inbreast", SUITE["data"]["synth-inbreast"], 64)  # generated once, outside timing
    ft_idx, ev_idx = finetune_split(target.labels, target.groups, 0.5, split_seed("synth-inbreast", 0.5, 0))
    with tempfile.TemporaryDirectory() as d:
        suite_file = Path(d) / "overhead.yaml"
        suite_file.write_text(yaml.safe_dump(SUITE))
        bench_arm(suite_file)  # warm-up: imports, the dataset's in-process cache
        bare_arm(target.images, target.labels, ft_idx, ev_idx, 1)
        pairs = []
        for i in range(args.repeats):
            if i % 2:
                b = bare_arm(target.images, target.labels, ft_idx, ev_idx, args.epochs)
                h = bench_arm(suite_file)
            else:
                h = bench_arm(suite_file)
                b = bare_arm(target.images, target.labels, ft_idx, ev_idx, args.epochs)
            pairs.append((h, b))
            print(f"pair {i + 1}: bench run {h:.2f} s, bare loop {b:.2f} s, ratio {h / b:.3f}", flush=True)
    ratios = [h / b for h, b in pairs]
    med = statistics.median(ratios)
    print(f"{len(ft_idx)} fine-tune + {len(ev_idx)} evaluation images, resnet18 64 px, {args.epochs} epochs, "
          f"1 torch thread")
    print(f"median bench/bare ratio {med:.3f} ({(med - 1) * 100:+.1f} % wall time); "
          f"median bench {statistics.median(h for h, _ in pairs):.2f} s, bare {statistics.median(b for _, b in pairs):.2f} s")
    print(f"worker process start-up (once per worker per run with --workers N >= 1): {worker_startup():.2f} s")


if __name__ == "__main__":
    main()
