"""Does the runner keep the GPU busy? Cells per minute, GPU utilisation, and fit against a lean loop (issue 15).

Two parts, one report:

1. **The suite** (default ``bulathsinghalage-liu-synth``) runs through :func:`bench.run_suite` into a fresh
   results folder with the suite's executor settings (``--workers``/``--workers-per-gpu`` override them;
   on a GPU machine the default is several workers per GPU). A thread samples every GPU's utilisation once a
   second through NVML (``pip install nvidia-ml-py``; without it the report says "no NVML"). Reported:
   cells per minute, and the mean utilisation while cells run (from the first cell's start to the last
   cell's end, read from the records).
2. **fit against the lean loop**, per backbone at ``--size`` px (default 224): images per second of
   :func:`bench.train.fit` (as a cell calls it: flips, BatchNorm re-estimation, one stage) and of a lean loop
   doing the same optimisation steps with nothing else: images resident on the device as uint8, batches
   gathered there, bf16 autocast (float16 where the GPU lacks bf16; none on a CPU), channels_last, no host
   sync inside the epoch. ``fit/lean`` is the time ratio (1.0 = at the compute-bound limit), and
   :func:`bench.train.predict`'s images per second are shown beside.

The issue's targets on a GPU: at least 70 % mean utilisation while cells run, and ``fit/lean`` at most 1.2
for every built-in backbone at 224 px.

    .venv/bin/python benchmarks/gpu.py                       # the suite, then every built-in backbone at 224 px
    .venv/bin/python benchmarks/gpu.py --skip-suite --backbones resnet50 efficientnet_lite0
    .venv/bin/python benchmarks/gpu.py --quick               # tiny settings: a few seconds, also on a CPU
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BACKBONES = ("vgg16", "resnet18", "resnet50", "inception_v3", "efficientnet_lite0", "patch_cnn", "morphhr",
             "toy_cnn")
QUICK_SUITE = {"name": "gpu-quick", "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.5],
                                             "target": ["synth-inbreast"], "transfer": ["full"], "seeds": 2},
               "image_size": 32, "finetune": {"epochs": 1, "batch_size": 8}, "data": {"synth-inbreast": {"n_images": 40}},
               "executor": {"workers": 0}}


# --------------------------------------------------------------------------- GPU utilisation

class UtilisationSampler:
    """Samples every GPU's utilisation (percent) once per ``period_s`` in a thread, through NVML."""

    def __init__(self, period_s: float = 1.0):
        self.period_s, self.samples, self.problem = period_s, [], None
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception as exc:  # noqa: BLE001 - not installed, no driver, no GPU: the report says so
            self._nvml, self._handles = None, []
            self.problem = f"no NVML ({type(exc).__name__}: {exc}; pip install nvidia-ml-py)"
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            now = time.time()
            try:
                util = [self._nvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self._handles]
            except Exception:  # noqa: BLE001 - a failed sample is skipped
                continue
            self.samples.append((now, util))

    def __enter__(self):
        if self._handles:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def mean(self, start: float, end: float) -> float | None:
        """Mean utilisation (percent, over GPUs and samples) between two ``time.time()`` instants."""
        vals = [statistics.fmean(u) for t, u in self.samples if start <= t <= end and u]
        return statistics.fmean(vals) if vals else None


def run_suite_measured(suite, *, workers: int | None = None, workers_per_gpu=None, device: str | None = None) -> dict:
    """Run ``suite`` into a fresh folder while sampling the GPUs; cells per minute and utilisation."""
    from bench import run_suite, suite_records
    from bench.runner import executor_settings

    settings = executor_settings(suite, workers=workers, workers_per_gpu=workers_per_gpu, device=device)
    with tempfile.TemporaryDirectory() as d, UtilisationSampler() as sampler:
        t0 = time.time()
        summary = run_suite(suite, results_root=d, progress=False, log=lambda m: None, executor=settings)
        wall = time.time() - t0
        folder = Path(d) / suite.name
        cells = []
        for rec in suite_records(suite, d):
            if rec["status"] == "ok":
                end = (folder / f"{rec['cell_id']}.json").stat().st_mtime
                cells.append((end - rec["timing"]["total_s"], end))
    start, end = (min(s for s, _ in cells), max(e for _, e in cells)) if cells else (t0, t0 + wall)
    minutes = max(end - start, 1e-9) / 60
    return {"suite": suite.name, "cells": len(cells), "failed": summary.failed, "wall_s": wall,
            "cells_s": end - start, "cells_per_minute": len(cells) / minutes,
            "gpu_util_mean": sampler.mean(start, end), "gpu_util_run": sampler.mean(t0, t0 + wall),
            "nvml": sampler.problem or "ok", "executor": settings.model_dump(mode="json")}


# --------------------------------------------------------------------------- fit against the lean loop

def synthetic_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 ``(size, size)`` images, half with a bright square (something to learn), and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 200, (n, size, size), dtype=np.uint8)
    q = max(1, size // 4)
    images[labels == 1, q:3 * q, q:3 * q] = 255
    return images, labels


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lean_epochs(model, images: np.ndarray, labels: np.ndarray, *, batch_size: int, epochs: int, device,
                mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), lr: float = 3e-4) -> float:
    """Train ``model`` with nothing but the optimisation steps; return the seconds (device work included).

    Images resident on the device as uint8, batches gathered and flipped there, autocast in bf16 (float16 with
    loss scaling where the GPU lacks bf16, none on a CPU), channels_last on a GPU, no host sync inside the loop.
    """
    import torch
    import torch.nn.functional as F

    from bench.batches import amp_dtype

    dtype = amp_dtype(device)
    model.to(device).train()
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    x_all = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    y_all = torch.as_tensor(labels, dtype=torch.long, device=device)
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    n = len(labels)
    steps = max(1, n // batch_size if n % batch_size == 1 else math.ceil(n / batch_size))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, device=device)
        flips = torch.rand(n, device=device) < 0.5
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            x = x_all[idx].float().div_(255.0).unsqueeze(1)
            x = torch.where(flips[idx].view(-1, 1, 1, 1), x.flip(-1), x)
            x = ((x.expand(-1, 3, -1, -1) - m) / s)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y_all[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    _sync(device)
    return time.perf_counter() - t0


def fit_vs_lean(backbone: str, *, size: int, n_images: int, batch_size: int, epochs: int, device,
                repeats: int = 1) -> dict:
    """Images per second of :func:`bench.train.fit`, of the lean loop and of :func:`bench.train.predict` for one
    backbone (random init, 2 classes) on synthetic images; each after a one-epoch warm-up, the best of
    ``repeats``."""
    import torch

    from bench.backbones import BACKBONES, create_backbone
    from bench.train import fit, predict

    spec = BACKBONES.get(backbone)
    images, labels = synthetic_images(n_images, size)
    make = lambda: (torch.manual_seed(0), create_backbone(backbone, 2))[1]  # noqa: E731
    kw = dict(batch_size=batch_size, lr=3e-4, mean=spec.mean, std=spec.std, device=device)

    def timed_fit() -> float:
        model = make()
        _sync(device)
        t0 = time.perf_counter()
        fit(model, images, labels, epochs=epochs, **kw)
        _sync(device)
        return time.perf_counter() - t0

    model = make()
    fit(model, images[:2 * batch_size], labels[:2 * batch_size], epochs=1, **kw)  # warm-up: kernels, autotune
    lean_epochs(make(), images[:2 * batch_size], labels[:2 * batch_size], batch_size=batch_size, epochs=1,
                device=device, mean=spec.mean, std=spec.std)
    fit_s = min(timed_fit() for _ in range(repeats))
    lean_s = min(lean_epochs(make(), images, labels, batch_size=batch_size, epochs=epochs, device=device,
                             mean=spec.mean, std=spec.std) for _ in range(repeats))
    predict(model, images[:batch_size], mean=spec.mean, std=spec.std, device=device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    predict(model, images, mean=spec.mean, std=spec.std, device=device)
    predict_s = time.perf_counter() - t0
    seen = n_images * epochs
    return {"backbone": backbone, "size": size, "device": str(device), "images": n_images, "epochs": epochs,
            "batch_size": batch_size, "fit_img_s": seen / fit_s, "lean_img_s": seen / lean_s,
            "fit_over_lean": fit_s / lean_s, "predict_img_s": n_images / predict_s}


# --------------------------------------------------------------------------- the report

def _fmt(v, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def report(suite_row: dict | None, rows: list[dict]) -> str:
    lines = []
    if suite_row:
        lines += [f"## Suite {suite_row['suite']}", "",
                  f"{suite_row['cells']} cells ({suite_row['failed']} failed) in {suite_row['cells_s']:.1f} s of cells "
                  f"({suite_row['wall_s']:.1f} s wall): **{suite_row['cells_per_minute']:.1f} cells per minute**; "
                  f"mean GPU utilisation while cells run: **{_fmt(suite_row['gpu_util_mean'])} %** "
                  f"(whole run {_fmt(suite_row['gpu_util_run'])} %; NVML: {suite_row['nvml']}).",
                  f"Executor: workers {suite_row['executor']['workers']}, workers_per_gpu "
                  f"{suite_row['executor']['workers_per_gpu']}, device {suite_row['executor']['device'] or 'default'}.",
                  ""]
    if rows:
        r0 = rows[0]
        lines += [f"## fit against the lean loop ({r0['size']} px, {r0['images']} images, {r0['epochs']} epoch(s), "
                  f"batch {r0['batch_size']}, {r0['device']})", "",
                  "| backbone | fit img/s | lean img/s | fit/lean | predict img/s |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['backbone']} | {r['fit_img_s']:.0f} | {r['lean_img_s']:.0f} | {r['fit_over_lean']:.2f} | "
                  f"{r['predict_img_s']:.0f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="bulathsinghalage-liu-synth", help="suite name or file (default %(default)s)")
    ap.add_argument("--skip-suite", action="store_true", help="only the fit/lean comparison")
    ap.add_argument("--workers", type=int, help="override the suite's executor.workers")
    ap.add_argument("--workers-per-gpu", help="override executor.workers_per_gpu (a number or auto)")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: a GPU where there is one)")
    ap.add_argument("--backbones", nargs="*", default=list(BACKBONES), help="fit/lean backbones (none: skip)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=1280)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--quick", action="store_true",
                    help="tiny settings (toy_cnn, 32 px, a two-cell suite in this process): seconds, on a CPU too")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args(argv)

    import torch

    from bench.batches import default_device, device_problem

    if args.device and (problem := device_problem(args.device)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    device = torch.device(args.device) if args.device else default_device()
    per_gpu = (args.workers_per_gpu if args.workers_per_gpu in (None, "auto") else int(args.workers_per_gpu))
    if args.quick:
        from bench import build_suite

        suite = build_suite(QUICK_SUITE)
        args.backbones, args.size, args.images, args.batch_size = ["toy_cnn"], 32, 32, 8
    else:
        from bench import load_suite

        suite = load_suite(args.suite)
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + f", torch {torch.__version__}", file=sys.stderr)
    suite_row = None
    if not args.skip_suite:
        suite_row = run_suite_measured(suite, workers=args.workers, workers_per_gpu=per_gpu, device=args.device)
    rows = []
    for name in args.backbones:
        rows.append(fit_vs_lean(name, size=args.size, n_images=args.images, batch_size=args.batch_size,
                                epochs=args.epochs, device=device, repeats=args.repeats))
        print(f"{name}: fit/lean {rows[-1]['fit_over_lean']:.2f}", file=sys.stderr, flush=True)
    print(report(suite_row, rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": suite_row, "fit_vs_lean": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
