"""Why does the synth-ddsm source not beat random init without fine-tuning for vgg16 / resnet50 / morphhr
in ``suites/paper-backbones.yaml``? (issue 15; notes in ``benchmarks/known_answer.md``)

For each backbone x pre-training setting it pre-trains the backbone on ``synth-ddsm`` exactly as the suite's
pre-training job does (``bench.runner.recipes.train_on_images`` with the cell's ``config["pretrain"]``, the
same held-out split and seeds as ``bench.runner.pretrain.ensure_pretrained``), overriding only the settings
named on the command line, then scores without fine-tuning:

* the held-out source AUC (the job's own 10 % held out, as the sidecar's ``held_out``) and on a fresh,
  independent ``synth-ddsm`` draw (data seed 1, 200 images: less noisy than 20 held-out images);
* ``synth-inbreast`` (the suite's target, 100 images) and ``synth-ultrasound`` (the negative control,
  100 images) with the network in eval mode (running BatchNorm statistics, what a cell does) and with
  BatchNorm in training mode (batch statistics of the whole target, no running statistics updated);
* the random-init network of the same seed (what the suite's Random-init No-FT cell evaluates);
* the logit margins: share of images called malignant, the margins' spread (a constant network has ~0).

Examples (CPU, one thread)::

    python benchmarks/known_answer.py                                  # defaults: morphhr, suite vs fix
    python benchmarks/known_answer.py --backbones resnet50 morphhr --settings suite e20 n1000
    python benchmarks/known_answer.py --backbones vgg16 --settings suite e20 e20-lr3e-4

A setting is ``suite`` or a ``-``-joined list of overrides: ``e<epochs>``, ``n<source images>``,
``lr<rate>``, ``w<warm-up epochs>``, ``wd<weight decay>``, ``bs<batch>``, ``nobn`` (no BatchNorm
re-estimation), e.g. ``e20-n1000-lr3e-4``.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import time

import numpy as np
import torch

TARGET_N = 100


def parse_setting(name: str) -> dict:
    out: dict = {}
    if name == "suite":
        return out
    for part in name.split("-") if "e-" not in name else re.split(r"-(?=[a-z])", name):
        m = re.fullmatch(r"(e|n|lr|wd|w|bs|s)([0-9.e-]+)", part)
        if part in ("suite", "random"):
            continue
        if part == "nobn":
            out["bn_recalibrate"] = False
        elif m:
            key = {"e": "epochs", "n": "n_images", "lr": "lr", "wd": "weight_decay", "w": "warmup_epochs",
                   "bs": "batch_size", "s": "seed"}[m.group(1)]
            out[key] = float(m.group(2)) if key in ("lr", "weight_decay") else int(m.group(2))
        else:
            raise SystemExit(f"unknown setting part {part!r} in {name!r}")
    return out


def pretrain_cfg(suite, backbone: str, overrides: dict) -> dict:
    cell = next(c for c in suite.cells if c.backbone == backbone and c.source == "synth-ddsm")
    cfg = json.loads(json.dumps(cell.config["pretrain"]))  # a plain, writable copy (a cell config is frozen)
    for k, v in overrides.items():
        if k == "n_images":
            cfg["source_data"]["n_images"] = v
        else:
            cfg[k] = v
    return cfg, cell


@torch.no_grad()
def margins(model, images, spec, bn_batch_stats: bool) -> np.ndarray:
    from bench.train import predict, set_batchnorm_train

    if not bn_batch_stats:
        return predict(model, images, mean=spec.mean, std=spec.std)
    m = copy.deepcopy(model)  # train-mode BatchNorm would update the running statistics: work on a copy
    m.eval()
    set_batchnorm_train(m, True)
    from bench.train import to_batch
    x = to_batch(images, spec.mean, spec.std, torch.device("cpu"))
    logits = m(x).float()  # the whole target as one batch: its own statistics
    return (logits[:, 1] - logits[:, 0]).numpy()


def scores(model, data: dict, spec) -> dict:
    from bench.analysis.metrics import binary_metrics

    out = {}
    for name, (images, labels) in data.items():
        for mode in ("eval", "train") if name != "src" else ("eval",):
            s = margins(model, images, spec, mode == "train")
            out[f"{name}_{mode}"] = binary_metrics(labels, s)["auc"]
            if mode == "eval":
                out[f"{name}_pos"] = float((s > 0).mean())
                out[f"{name}_sd"] = float(s.std())
    return out


def run(backbone: str, setting: str, suite, data: dict, log) -> dict:
    from bench.backbones import BACKBONES, create_backbone
    from bench.data.splits import finetune_split
    from bench.runner.datasets import get_dataset
    from bench.runner.recipes import pretrain_recipe, train_on_images
    from bench.runner.seeds import pretrain_seeds

    spec = BACKBONES.get(backbone)
    cfg, cell = pretrain_cfg(suite, backbone, parse_setting(setting))
    if setting.split("-")[0] == "random":  # the untrained network of this seed (a Random-init No-FT cell)
        torch.manual_seed(pretrain_seeds(cfg)["init"])
        return {"backbone": backbone, "setting": setting, "steps": 0, "seconds": 0.0, "loss": [], "acc": None,
                "held_out": None, **scores(create_backbone(backbone, 2), data, spec)}
    source = get_dataset(cfg["source"], cfg["source_data"], cfg["image_size"])
    seeds = pretrain_seeds(cfg)
    val_idx, train_idx = finetune_split(source.labels, source.groups, cfg["val_fraction"], seeds["split"])
    t0 = time.perf_counter()
    recipe = pretrain_recipe(spec, train_on_images)
    model, history, _ = recipe(cfg, source, train_idx, val_idx, seeds=seeds, log=lambda *_: None)
    seconds = time.perf_counter() - t0
    from bench.analysis.metrics import binary_metrics
    from bench.train import predict

    held = binary_metrics(source.labels[val_idx], predict(model, source.images[val_idx], mean=spec.mean,
                                                          std=spec.std))["auc"]
    whole = [e for e in history if e.get("stage", "whole_image") in ("whole_image", 1, None)] or history
    row = {"backbone": backbone, "setting": setting, "steps": -(-len(train_idx) // cfg["batch_size"]) * cfg["epochs"],
           "seconds": seconds, "loss": [round(e["loss"], 3) for e in whole],
           "acc": round(whole[-1]["running_train_acc"], 3), "held_out": held, **scores(model, data, spec)}
    return row


def random_row(backbone: str, suite, data: dict) -> dict:
    from bench.backbones import BACKBONES, create_backbone
    from bench.runner.seeds import pretrain_seeds

    cfg, _ = pretrain_cfg(suite, backbone, {})
    torch.manual_seed(pretrain_seeds(cfg)["init"])
    model = create_backbone(backbone, 2)
    return {"backbone": backbone, "setting": "random", "steps": 0, "seconds": 0.0, "loss": [], "acc": None,
            "held_out": None, **scores(model, data, BACKBONES.get(backbone))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="suites/paper-backbones.yaml")
    p.add_argument("--backbones", nargs="+", default=["morphhr"])
    p.add_argument("--settings", nargs="+", default=["suite", "e20"])
    p.add_argument("--no-random", action="store_true", help="skip the random-init rows")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jsonl", help="append each row as JSON to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from bench import load_suite
    from bench.runner.datasets import get_dataset

    suite = load_suite(args.suite)
    cell = next(c for c in suite.cells if c.source == "synth-ddsm")
    size = cell.config["image_size"]
    src_opts = {**cell.config["pretrain"]["source_data"], "seed": 1}
    sets = {"src": get_dataset("synth-ddsm", src_opts, size),
            "inb": get_dataset("synth-inbreast", cell.config["target_data"], size),
            "us": get_dataset("synth-ultrasound", {"n_images": TARGET_N}, size)}
    data = {k: (d.images, d.labels) for k, d in sets.items()}
    head = (f"{'backbone':12} {'setting':16} {'steps':>5} {'sec':>6} {'loss first->last':>17} {'acc':>5} "
            f"{'held':>5} {'src':>5} | {'inb ev':>6} {'inb tr':>6} {'pos':>4} {'sd':>6} | {'us ev':>5} {'us tr':>5} "
            f"{'pos':>4}")
    print(head, flush=True)
    for b in args.backbones:
        if not args.no_random:
            show(random_row(b, suite, data), args.jsonl)
        for s in args.settings:
            show(run(b, s, suite, data, print), args.jsonl)


def show(r: dict, jsonl: str | None) -> None:
    loss = f"{r['loss'][0]:.3g}->{r['loss'][-1]:.3g}" if r["loss"] else "-"
    held = "-" if r["held_out"] is None else f"{r['held_out']:.3f}"
    acc = "-" if r["acc"] is None else f"{r['acc']:.2f}"
    print(f"{r['backbone']:12} {r['setting']:16} {r['steps']:5d} {r['seconds']:6.1f} {loss:>17} {acc:>5} "
          f"{held:>5} {r['src_eval']:.3f} | {r['inb_eval']:.3f}  {r['inb_train']:.3f}  {r['inb_pos']:.2f} "
          f"{r['inb_sd']:6.3g} | {r['us_eval']:.3f} {r['us_train']:.3f} {r['us_pos']:.2f}", flush=True)
    if jsonl:
        with open(jsonl, "a") as f:
            f.write(json.dumps(r) + "\n")

if __name__ == "__main__":
    main()
