"""The seed study's representational analysis (Bulathsinghalage & Liu, section 3.3, Figure 1) as a suite analysis.

For every (backbone, source, target, seed) the suite's ``analysis.svcca`` block asks for:

1. the target is split once, stratified by label and grouped by patient, into a fine-tune share (``ft_share``,
   20 % in the paper) and the rest (80 %): the same split as a cell with ``ft_fraction = ft_share`` and that seed;
2. network **A** is the source network, built exactly as a cell builds it (:func:`bench.runner.cell.
   initial_weights`: the cached source pre-training, ImageNet weights, or the seeded random init);
3. network **B** is A fine-tuned on the share with the suite's fine-tuning settings, by the cells' own code
   (:func:`bench.runner.cell.finetune`; ``epochs`` may be overridden);
4. network **B'** (the *BN-only reference*) is A with its BatchNorm running statistics re-estimated on the share
   (:func:`bench.batchnorm.recalibrate`: a cumulative average over one pass, no gradient step): how much of
   A -> B is BatchNorm statistics alone. B's own statistics are re-estimated for its final weights on the share
   when the suite's fine-tuning does (``bn_recalibrate``, the default), as every fine-tuned cell's are;
5. A, B and B' are fed the rest in eval mode; forward hooks record the outputs of conv1, block1 .. block4 (the
   modules that :func:`bench.backbones.transfer.stage_boundaries` gives for the backbone);
6. per layer, the similarity of A with B and of A with B': SVCCA (:func:`bench.analysis.svcca.svcca`, ``keep`` and
   ``rule`` from the suite), PWCCA and linear CKA.

Datapoints. A convolutional map ``(images, channels, height, width)`` becomes, with ``pooling: positions`` (the
SVCCA paper's recipe), one datapoint per image and spatial position, ``(images * height * width, channels)``,
subsampled uniformly without replacement to at most ``max_datapoints`` rows per layer (the same rows for A, B and
B': the row choice depends only on the seed, the layer and the map's shape); with ``pooling: mean``, one datapoint
per image, the spatial mean ``(images, channels)``. Deep layers have few positions: with fewer than 5 datapoints per
neuron canonical correlations are biased upwards, and the record keeps the warning.

Records: ``<results_root>/<suite>/svcca/<analysis_id>.json``, ``analysis_id`` a content hash of everything the
result depends on (the cell-like config of network A and B, plus the analysis settings). A finished record is never
recomputed; a failed one is retried by the next run.

The runs are jobs of the suite's plan (kind "svcca", after the cells; :mod:`bench.runner.plan`): ``bench run`` runs
them with its executor (``--workers N``, Slurm) through :func:`compute_job_or_svcca`, claimed and journaled like
cells, and a failed run is a record with a cell's ``error`` (class, kind, message, cause, traceback, user_error).
:func:`run_svcca` runs only them (and the source pre-trainings they need) in this process.
"""
from __future__ import annotations

import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.batchnorm import recalibrate
from bench.records import (
    latest_svcca_records,
    read_record,
    record_path,
    write_json_atomic,
)
from bench.runner.local import RunSummary, run_local
from bench.runner.plan import (
    SVCCA_PROTOCOL,
    SvccaJob,
    build_plan,
    svcca_dir,
    svcca_jobs,
)
from bench.runner.worker import compute_job, log_collector, write_failure
from bench.suite import ExecutorSettings, Suite, content_hash

__all__ = [
    "SVCCA_PROTOCOL",
    "SvccaJob",
    "compute_job_or_svcca",
    "layer_activations",
    "run_svcca",
    "run_svcca_job",
    "svcca_dir",
    "svcca_jobs",
    "svcca_records",
]

LAYERS = ("conv1", "block1", "block2", "block3", "block4")


# --------------------------------------------------------------------------- networks and activations

@torch.no_grad()
def layer_activations(model: nn.Module, images: np.ndarray, modules: dict[str, str], *, mean, std,
                      pooling: str = "positions", max_datapoints: int = 10_000, seed: int = 0,
                      batch_size: int = 64, device: torch.device | None = None) -> dict[str, np.ndarray]:
    """Outputs of the named modules on ``images`` as ``(n_datapoints, channels)`` float64 matrices.

    Args:
        model: the network, run in eval mode.
        images: ``(N, H, W)`` uint8 images (the dataset contract).
        modules: layer name -> module name (e.g. from ``stage_boundaries``).
        pooling: ``"positions"``: one row per image and spatial position, subsampled to ``max_datapoints`` rows
            chosen by ``seed``, the layer's index and the map's shape only (so two networks of the same
            architecture get the same rows); ``"mean"``: one row per image, the spatial mean.

    Returns:
        layer name -> activations; rows in the same order for every network given the same arguments.
    """
    from bench.train import default_device, to_batch

    if pooling not in ("positions", "mean"):
        raise ValueError(f"The 'pooling' parameter of layer_activations must be 'positions' or 'mean'. "
                         f"Got {pooling!r} instead.")
    device = device or default_device()
    model.to(device).eval()
    names = list(modules)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    chosen: dict[str, np.ndarray | None] = {}
    offset = [0]

    def hook_for(index: int, name: str):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            out = out.detach().float()
            if out.ndim == 2:
                chunks[name].append(out.cpu().numpy())
                return
            b, c = out.shape[:2]
            if pooling == "mean":
                chunks[name].append(out.flatten(2).mean(2).cpu().numpy())
                return
            rows = out.flatten(2).transpose(1, 2).reshape(-1, c)  # (b * positions, c), image-major
            per_image = rows.shape[0] // b
            if name not in chosen:
                total = len(images) * per_image
                if total <= max_datapoints:
                    chosen[name] = None
                else:
                    rng = np.random.default_rng([seed, index, total])
                    chosen[name] = np.sort(rng.choice(total, size=max_datapoints, replace=False))
            pick = chosen[name]
            if pick is None:
                chunks[name].append(rows.cpu().numpy())
            else:
                start, stop = offset[0] * per_image, (offset[0] + b) * per_image
                local = pick[(pick >= start) & (pick < stop)] - start
                chunks[name].append(rows[torch.from_numpy(local)].cpu().numpy())
        return hook

    handles = [model.get_submodule(modules[name]).register_forward_hook(hook_for(i, name))
               for i, name in enumerate(names)]
    try:
        for i in range(0, len(images), batch_size):
            offset[0] = i
            model(to_batch(images[i:i + batch_size], mean, std, device))
    finally:
        for h in handles:
            h.remove()
    return {name: np.concatenate(chunks[name]).astype(np.float64) for name in names}


def _similarities(x: np.ndarray, y: np.ndarray, *, keep: float, rule: str) -> tuple[dict, list[str]]:
    from bench.analysis.svcca import linear_cka, pwcca, svcca

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = {"svcca": svcca(x, y, keep=keep, rule=rule), "pwcca": pwcca(x, y), "cka": linear_cka(x, y)}
    return scores, sorted({str(w.message) for w in caught})


# --------------------------------------------------------------------------- one job, the suite

def run_svcca_job(job: SvccaJob, *, suite: str, results_root: str | Path, log=print) -> dict:
    """Compute one run of the protocol and return its record (exceptions propagate to :func:`run_svcca`)."""
    from bench.backbones import BACKBONES, create_backbone
    from bench.backbones.transfer import stage_boundaries
    from bench.data.splits import finetune_split
    from bench.runner.cell import finetune, initial_weights
    from bench.runner.datasets import get_dataset
    from bench.runner.seeds import cell_seeds

    t0 = time.perf_counter()
    cell, cfg = job.cell, job.config
    spec = BACKBONES.get(cell.backbone)
    target = get_dataset(cell.target, cell.config["target_data"], cell.config["image_size"])
    seeds = cell_seeds(cell.axes)  # the split and the initialisation of the cell (target, ft_share, seed)
    ft_idx, ev_idx = finetune_split(target.labels, target.groups, cell.ft_fraction, seeds["split"])
    torch.manual_seed(seeds["init"])
    net_a = create_backbone(cell.backbone, 2)
    weights = initial_weights(cell, net_a, Path(results_root), log=log)
    modules = stage_boundaries(net_a, spec)
    net_b = copy.deepcopy(net_a)
    history, _, _ = finetune(cell, net_b, target, ft_idx, seeds)
    nets = {"finetuned": net_b}
    if cfg["bn_reference"]:
        net_bn = copy.deepcopy(net_a)
        recalibrate(net_bn, target.images[ft_idx], mean=spec.mean, std=spec.std)
        nets["bn_only"] = net_bn
    t_trained = time.perf_counter()

    kwargs = {"mean": spec.mean, "std": spec.std, "pooling": cfg["pooling"], "max_datapoints": cfg["max_datapoints"],
              "seed": cell.seed}
    eval_images = target.images[ev_idx]
    acts_a = layer_activations(net_a, eval_images, modules, **kwargs)
    acts = {ref: layer_activations(net, eval_images, modules, **kwargs) for ref, net in nets.items()}
    layers, notes = [], set()
    for name in modules:
        entry = {"layer": name, "module": modules[name], "neurons": int(acts_a[name].shape[1]),
                 "datapoints": int(acts_a[name].shape[0])}
        for ref in nets:
            entry[ref], caught = _similarities(acts_a[name], acts[ref][name], keep=cfg["keep"], rule=cfg["rule"])
            notes.update(f"{name}: {msg}" for msg in caught)
        layers.append(entry)
    t_end = time.perf_counter()
    ft_ids, eval_ids = target.image_ids[ft_idx].tolist(), target.image_ids[ev_idx].tolist()
    return {**job.record_head(suite), "status": "ok", "reason": None, "layers": layers, "n_finetune": len(ft_idx), "n_eval": len(ev_idx),
            "split": {"hash": content_hash({"target": cell.target, "finetune": ft_ids, "eval": eval_ids}),
                      "finetune_image_ids": ft_ids},
            "weights": weights, "history": history, "warnings": sorted(notes),
            "timing": {"networks_s": t_trained - t0, "similarity_s": t_end - t_trained, "total_s": t_end - t0}}


def compute_job_or_svcca(job: dict, *, suite_name: str, cells: dict, results_root: Path, echo=None) -> dict:
    """The job function (:data:`bench.runner.worker.JobFn`) of a plan with SVCCA runs: a "svcca" job is one run
    of the protocol (``cells[key]`` is its :class:`SvccaJob`), any other kind goes to
    :func:`bench.runner.worker.compute_job`. A failure is a ``failed`` record with a cell's error schema."""
    if job["kind"] != "svcca":
        return compute_job(job, suite_name=suite_name, cells=cells, results_root=results_root, echo=echo)
    from bench.provenance import provenance

    lines, log = log_collector(echo)
    t0 = time.perf_counter()
    try:
        rec = run_svcca_job(cells[job["key"]], suite=suite_name, results_root=results_root, log=log)
    except Exception as exc:  # noqa: BLE001 - a failure is a record, and the analysis goes on
        return write_failure(job, exc, suite_name=suite_name, cells=cells, results_root=results_root, log=lines,
                             t0=t0)
    rec["provenance"] = provenance()
    write_json_atomic(record_path(svcca_dir(results_root, suite_name), job["key"]), rec)
    return {"key": job["key"], "kind": "svcca", "status": "ok", "reason": None, "seconds": time.perf_counter() - t0}


def run_svcca(suite: Suite, *, results_root: str | Path = "results", log=None) -> RunSummary:
    """Run every unfinished job of the suite's ``analysis.svcca`` (and the source pre-trainings they need) in this
    process, through the plan and the local scheduler; one record per job; failures are records.

    Returns the run's summary: ``analyses`` computed, ``analyses_failed`` (``analysis_failures``: key, reason),
    ``skipped`` = the runs already done, ``pretrained``, ``seconds``."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    t0 = time.perf_counter()
    plan = build_plan(suite, Path(results_root))
    plan.keep_only(plan.analyses)
    summary = RunSummary(results_dir=plan.out)
    if plan.jobs:
        settings = ExecutorSettings(**{**suite.config.executor.model_dump(), "kind": "local", "workers": 0})
        run_local(plan, settings, summary, say=say, progress=False, job_fn=compute_job_or_svcca)
    summary.skipped = len(plan.analyses_done)
    summary.seconds = time.perf_counter() - t0
    return summary


def svcca_records(folder: str | Path, suite: Suite | None = None) -> list[dict]:
    """The SVCCA records under ``folder`` (a ``results/<suite>/svcca`` folder).

    With ``suite``, exactly its current jobs' records (in job order); without, the newest record of each
    (backbone, source, target, seed) found in the folder.
    """
    folder = Path(folder)
    if suite is not None:
        recs = (read_record(record_path(folder, job.analysis_id)) for job in svcca_jobs(suite))
        return [r for r in recs if r is not None]
    return latest_svcca_records(folder)
