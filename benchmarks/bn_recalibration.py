"""What BatchNorm re-estimation changes, and what it costs (issue 11).

For each fine-tuned cell of a suite (default: smoke's full-transfer cells, plus the synth-obvious control),
fine-tune once *without* re-estimation (the weights' trajectory does not depend on it), then score three
copies of the final network in eval mode:

- ``running``: the running statistics as training left them (bench before issue 11);
- ``plain``: re-estimated on the fine-tune images as they are (bench's default);
- ``augmented``: re-estimated on the fine-tune images and their horizontal flips (the flip augmentation's
  distribution).

Printed per cell: the last epoch's running training accuracy (batch statistics, augmented images, weights
moving), eval-mode accuracy on the fine-tune images, AUC / sensitivity / specificity on the evaluation images,
and the re-estimation time.

    .venv/bin/python benchmarks/bn_recalibration.py                      # smoke's cells (random, ImageNet)
    .venv/bin/python benchmarks/bn_recalibration.py --sources synth-ddsm  # also the pre-trained source
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.analysis.metrics import accuracy, binary_metrics
from bench.backbones import BACKBONES
from bench.batchnorm import recalibrate
from bench.data.splits import finetune_split
from bench.runner.cell import create_cell_model, finetune, initial_weights
from bench.runner.datasets import get_dataset
from bench.runner.seeds import cell_seeds
from bench.suite import load_suite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="smoke")
    ap.add_argument("--sources", nargs="+", default=["random", "imagenet"])
    ap.add_argument("--targets", nargs="+", default=["synth-inbreast", "synth-ultrasound", "synth-obvious"])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.2, 0.5])
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    suite = load_suite(args.suite)
    base = next(c for c in suite.cells if c.ft_fraction > 0 and c.transfer == "full")
    root = Path(tempfile.mkdtemp(prefix="bn-recal-"))
    print("cell | last running acc | eval-mode train acc: running / plain / augmented | "
          "AUC: running / plain / augmented | sens/spec: running / plain | recal s")
    for source in args.sources:
        for target in args.targets:
            for frac in args.fractions:
                for seed in range(args.seeds):
                    cell = _cell_like(base, suite, source=source, target=target, ft_fraction=frac, seed=seed)
                    _measure(cell, root)


def _cell_like(base, suite, **axes):
    """``base`` with other axes (the target's options from the suite's data block or the defaults)."""
    from bench.suite import _dataset_options

    cfg = copy.deepcopy(base.config)
    cfg.update(axes)
    cfg["target_data"] = _dataset_options(axes["target"], suite.config.data.get(axes["target"]), "<bench>")
    cfg["finetune"]["bn_recalibrate"] = False
    if axes["source"] in ("random", "imagenet"):
        cfg.pop("pretrain", None)
        pretrain_id = None
    else:
        cfg["pretrain"] = {**cfg["pretrain"], "source": axes["source"], "seed": axes["seed"]}
        pretrain_id = f"bench-{axes['source']}-{axes['seed']}"
    return dataclasses.replace(base, **axes, config=cfg, pretrain_id=pretrain_id)


def _measure(cell, root: Path) -> None:
    spec = BACKBONES.get(cell.backbone)
    target = get_dataset(cell.target, cell.config["target_data"], cell.config["image_size"])
    seeds = cell_seeds(cell.axes)
    torch.manual_seed(seeds["init"])
    model = create_cell_model(cell)
    initial_weights(cell, model, root, log=lambda *a: None)
    ft_idx, ev_idx = finetune_split(target.labels, target.groups, cell.ft_fraction, seeds["split"])
    history, train_idx, _ = finetune(cell, model, target, ft_idx, seeds)
    tr_x, tr_y = target.images[train_idx], target.labels[train_idx]
    nets, seconds = {"running": model}, {}
    for kind, images in (("plain", tr_x), ("augmented", np.concatenate([tr_x, tr_x[:, :, ::-1]]))):
        net = copy.deepcopy(model)
        t0 = time.perf_counter()
        recalibrate(net, images, mean=spec.mean, std=spec.std)
        seconds[kind] = time.perf_counter() - t0
        nets[kind] = net
    from bench.train import predict

    out = {}
    for kind, net in nets.items():
        train_acc = accuracy(tr_y, predict(net, tr_x, mean=spec.mean, std=spec.std))
        m = binary_metrics(target.labels[ev_idx], predict(net, target.images[ev_idx], mean=spec.mean, std=spec.std))
        out[kind] = (train_acc, m["auc"], m["sensitivity"], m["specificity"])
    label = f"{cell.source:>10} {cell.target:>16} FT {cell.ft_fraction} s{cell.seed} (n={len(train_idx)})"
    print(f"{label} | {history[-1]['running_train_acc']:.3f} | "
          + " / ".join(f"{out[k][0]:.3f}" for k in nets) + " | "
          + " / ".join(f"{out[k][1]:.3f}" for k in nets) + " | "
          + " / ".join(f"{out[k][2]:.2f},{out[k][3]:.2f}" for k in ("running", "plain"))
          + f" | {seconds['plain']:.2f}", flush=True)


if __name__ == "__main__":
    main()
