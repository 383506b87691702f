"""The plan of a suite run: a dependency graph of source pre-training jobs and the cells that use them.

The result store is the state. A cell with an ``ok`` or ``na`` record is done; a ``failed`` record is
kept (not recomputed) unless ``retry_failed``; a pre-training is done when its checkpoint and ``ok``
sidecar exist, and failed when its sidecar says ``failed``. Everything else is pending. A pending cell
whose source pre-training is pending depends on it. The runs of the suite's SVCCA analysis
(``analysis.svcca``, :mod:`bench.runner.svcca`) are jobs of the same graph (kind "svcca"), after the cells: one
is done when its record under ``<suite>/svcca/`` says ok; a failed one is retried by the next run.
"""
from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.records import (
    SCHEMA,
    SVCCA_DIR,
    load_pretrained_meta,
    pretrain_paths,
    read_record,
    record_path,
)
from bench.suite import (
    SPECIAL_SOURCES,
    Axes,
    Cell,
    Suite,
    expand,
    identity_hash,
    stage_map_revision,
)

#: Bump when the SVCCA protocol's meaning changes: it is part of every analysis id.
SVCCA_PROTOCOL = 1


@dataclass(frozen=True)
class SvccaJob:
    """One (backbone, source, target, seed) of the protocol; ``cell`` describes networks A and B like a cell."""

    backbone: str
    source: str
    target: str
    seed: int
    cell: Cell
    config: dict = field(repr=False)
    analysis_id: str = ""

    @property
    def axes(self) -> dict:
        return {"backbone": self.backbone, "source": self.source, "target": self.target, "seed": self.seed,
                "ft_share": self.cell.ft_fraction}

    def record_head(self, suite: str) -> dict:
        """The keys every record of this run starts with (ok or failed)."""
        return {"schema": SCHEMA, "suite": suite, "kind": "svcca", "analysis_id": self.analysis_id,
                "cell_id": self.analysis_id, "job": self.axes, "config": self.config}


def svcca_jobs(suite: Suite) -> list[SvccaJob]:
    """The protocol's runs for a suite, in order backbone x source x target x seed (empty without the block).

    Networks A and B are described by a :class:`bench.suite.Cell` built by the suite's own expansion (axes: the
    job's backbone, source, target and seed, ``ft_fraction = ft_share``, transfer full), so their config (data
    options, source pre-training id, weights, fine-tuning settings) is resolved exactly as for a cell.
    """
    sv = suite.config.analysis.svcca
    if sv is None:
        return []
    cfg = suite.config
    sources = sv.sources if sv.sources is not None else [s for s in cfg.axes.source if s not in SPECIAL_SOURCES]
    finetune = cfg.finetune if sv.epochs is None else cfg.finetune.model_copy(update={"epochs": sv.epochs})
    axes = Axes(backbone=sv.backbones or cfg.axes.backbone, source=sources, ft_fraction=[sv.ft_share],
                target=sv.targets, transfer=["full"], seeds=cfg.axes.seed_list)
    settings = {"pooling": sv.pooling, "max_datapoints": sv.max_datapoints, "keep": sv.keep, "rule": sv.rule,
                "bn_reference": sv.bn_reference}
    jobs = []
    for cell in expand(cfg.model_copy(update={"axes": axes, "exclude": [], "finetune": finetune})):
        config = {"analysis": "svcca", "protocol": SVCCA_PROTOCOL, "cell": cell.config, **settings}
        if stage_map_revision(cell.backbone):  # the layers compared are the stage ends
            config["stage_map_revision"] = stage_map_revision(cell.backbone)
        jobs.append(SvccaJob(cell.backbone, cell.source, cell.target, cell.seed, cell, config, identity_hash(config)))
    return jobs


def svcca_dir(results_root: str | Path, suite: str) -> Path:
    return Path(results_root) / suite / SVCCA_DIR


def result_folder(results_root: str | Path, suite: str, kind: str) -> Path:
    """Where a job of ``kind`` writes its result (and its claim and journal live)."""
    if kind == "pretrain":
        return Path(results_root) / "pretrain"
    return svcca_dir(results_root, suite) if kind == "svcca" else Path(results_root) / suite


@dataclass(frozen=True)
class Job:
    """One node of the graph: ``kind`` is "pretrain", "cell", "na" (an NA cell: written, not trained) or
    "svcca" (one run of the SVCCA analysis, ``analysis``)."""

    key: str
    kind: str
    cell: Cell | None = None
    config: dict | None = None
    deps: tuple[str, ...] = ()
    analysis: SvccaJob | None = None

    @property
    def label(self) -> str:
        if self.kind == "pretrain":
            return f"pre-training {self.config['backbone']} on {self.config['source']} (seed {self.config['seed']})"
        c = self.cell
        if self.kind == "svcca":
            return f"{c.backbone} from {c.source} on {c.target}, seed {c.seed}"
        return f"{c.backbone}/{c.source}/ft{c.ft_fraction:g}/{c.target}/{c.transfer}/s{c.seed}"


@dataclass
class Plan:
    suite: Suite
    results_root: Path
    pretrain: dict[str, Job] = field(default_factory=dict)  # pending pre-trainings, by pretrain id
    cells: list[Job] = field(default_factory=list)  # pending cells (NA cells included), in suite order
    done: list[str] = field(default_factory=list)  # cell ids with an ok/na record
    failed_kept: dict[str, str] = field(default_factory=dict)  # cell id -> reason (kept, not retried)
    pretrain_failed: dict[str, str] = field(default_factory=dict)  # pretrain id -> reason (kept)
    pretrain_cached: set[str] = field(default_factory=set)
    analyses: list[Job] = field(default_factory=list)  # pending SVCCA runs (failed ones included: retried)
    analyses_done: list[str] = field(default_factory=list)  # analysis ids with an ok record
    analyses_failed: dict[str, str] = field(default_factory=dict)  # analysis id -> reason of the earlier failure

    @property
    def out(self) -> Path:
        return self.results_root / self.suite.name

    @property
    def jobs(self) -> list[Job]:
        """Every pending job, pre-trainings first, the SVCCA runs last."""
        return list(self.pretrain.values()) + self.cells + self.analyses

    def keep_only(self, jobs: list[Job]) -> None:
        """Restrict the pending cells and analyses to ``jobs``, and the pre-trainings to those they need."""
        keys = {j.key for j in jobs}
        self.cells = [j for j in self.cells if j.key in keys]
        self.analyses = [j for j in self.analyses if j.key in keys]
        needed = {d for j in self.cells + self.analyses for d in j.deps}
        self.pretrain = {k: v for k, v in self.pretrain.items() if k in needed or k in keys}


def pretrain_state(results_root: Path, pretrain_id: str) -> tuple[str, str | None]:
    """("done" | "failed" | "pending", reason) of a source pre-training."""
    if load_pretrained_meta(results_root, pretrain_id) is not None:
        return "done", None
    meta = read_record(pretrain_paths(results_root, pretrain_id)[1])
    if meta and meta.get("status") == "failed":
        return "failed", meta.get("reason")
    return "pending", None


def build_plan(suite: Suite, results_root: str | Path, *, retry_failed: bool = False, analyses: bool = True) -> Plan:
    """The plan of ``suite`` under ``results_root``; ``analyses``: with the runs of its SVCCA analysis."""
    results_root = Path(results_root)
    plan = Plan(suite=suite, results_root=results_root)
    out = plan.out
    for cell in suite.cells:
        rec = read_record(record_path(out, cell.cell_id))
        status = rec.get("status") if rec else None
        if status in ("ok", "na"):
            plan.done.append(cell.cell_id)
            continue
        if status == "failed" and not retry_failed:
            plan.failed_kept[cell.cell_id] = rec.get("reason") or "failed"
            continue
        if cell.na_reason:
            plan.cells.append(Job(cell.cell_id, "na", cell=cell))
            continue
        plan.cells.append(Job(cell.cell_id, "cell", cell=cell, deps=_deps(plan, cell, retry_failed)))
    for job in svcca_jobs(suite) if analyses else ():
        rec = read_record(record_path(svcca_dir(results_root, suite.name), job.analysis_id))
        if rec and rec.get("status") == "ok":
            plan.analyses_done.append(job.analysis_id)
            continue
        if rec and rec.get("status") == "failed":
            plan.analyses_failed[job.analysis_id] = rec.get("reason") or "failed"
        plan.analyses.append(Job(job.analysis_id, "svcca", cell=job.cell, config=job.config,
                                 deps=_deps(plan, job.cell, retry_failed), analysis=job))
    return plan


def _deps(plan: Plan, cell: Cell, retry_failed: bool) -> tuple[str, ...]:
    """The pending (or failed) source pre-training ``cell`` depends on, added to the plan on first sight."""
    pid = cell.pretrain_id
    if not pid:
        return ()
    if pid not in plan.pretrain and pid not in plan.pretrain_cached and pid not in plan.pretrain_failed:
        state, reason = pretrain_state(plan.results_root, pid)
        if state == "done":
            plan.pretrain_cached.add(pid)
        elif state == "failed" and not retry_failed:
            plan.pretrain_failed[pid] = reason or "failed"
        else:
            plan.pretrain[pid] = Job(pid, "pretrain", config=cell.config["pretrain"])
    return (pid,) if pid in plan.pretrain or pid in plan.pretrain_failed else ()


# --------------------------------------------------------------------------- cost estimate

def _size(x) -> str:
    return json.dumps(x)


def _ft_epochs(ft: dict | None) -> int:
    """Fine-tuning epochs of a resolved ``finetune`` config: ``epochs``, or the sum over its ``schedule``."""
    ft = ft or {}
    if ft.get("schedule"):
        return sum(int(s.get("epochs", 0)) for s in ft["schedule"])
    return int(ft.get("epochs", 0))


@dataclass
class Timings:
    """What the finished jobs under a results folder measured, keyed for look-up by :func:`estimate_seconds`.

    Every list holds ``(value, device)`` pairs, ``device`` from the record's ``provenance.device`` (None if unknown).
    """

    cells: dict = field(default_factory=lambda: defaultdict(list))  # cell key -> timing.total_s
    pre: dict = field(default_factory=lambda: defaultdict(list))  # pre-training key -> seconds
    train_ips: dict = field(default_factory=lambda: defaultdict(list))  # (backbone, size) -> images x epochs / s
    eval_ips: dict = field(default_factory=lambda: defaultdict(list))  # (backbone, size) -> images scored / s
    setup: dict = field(default_factory=lambda: defaultdict(list))  # backbone -> timing.setup_s
    counts: dict = field(default_factory=lambda: defaultdict(list))  # (target, data, share) -> (n_trained, n_eval)
    pre_ips: dict = field(default_factory=lambda: defaultdict(list))  # (backbone, size) -> images x epochs / s
    pre_counts: dict = field(default_factory=lambda: defaultdict(list))  # (source, data, val_fraction) -> n_train


def _device(rec: dict) -> str | None:
    return (rec.get("provenance") or {}).get("device")


def _add_cell(t: Timings, rec: dict) -> None:
    c, cfg, timing, m = rec.get("cell") or {}, rec.get("config") or {}, rec["timing"], rec.get("metrics") or {}
    dev, size, bb = _device(rec), _size(cfg.get("image_size")), c.get("backbone")
    total = (float(timing["total_s"]), dev)
    ft = _ft_epochs(cfg.get("finetune")) if c.get("ft_fraction") else 0
    t.cells[(bb, size, c.get("target"), c.get("ft_fraction"), ft)].append(total)
    t.cells[(bb, size, bool(c.get("ft_fraction")))].append(total)
    t.cells[(bb,)].append(total)
    if timing.get("eval_images_per_s"):  # records written before throughput was recorded lack these
        t.eval_ips[(bb, size)].append((float(timing["eval_images_per_s"]), dev))
        t.setup[bb].append((float(timing["setup_s"]), dev))
    if timing.get("train_images_per_s"):
        t.train_ips[(bb, size)].append((float(timing["train_images_per_s"]), dev))
    if m.get("n_eval") is not None:
        n_trained = int(m.get("n_finetune") or 0) - int(m.get("n_val") or 0)  # early stopping holds n_val out
        t.counts[(c.get("target"), _size(cfg.get("target_data")), c.get("ft_fraction"))].append(
            ((n_trained, int(m["n_eval"])), dev))


def recorded_timings(results_root: str | Path) -> Timings:
    """Seconds, throughput and image counts of every finished cell and pre-training under ``results_root``."""
    root = Path(results_root)
    t = Timings()
    if not root.is_dir():
        return t
    for p in root.glob("*/*.json"):
        rec = read_record(p) if p.parent.name != "pretrain" else None
        if rec and rec.get("status") == "ok" and (rec.get("timing") or {}).get("total_s") is not None:
            _add_cell(t, rec)
    for p in (root / "pretrain").glob("*.json"):
        meta = read_record(p)
        if meta and meta.get("status") == "ok" and meta.get("seconds") is not None:
            cfg, dev = meta.get("config") or {}, _device(meta)
            t.pre[(cfg.get("backbone"), cfg.get("source"), _size(cfg.get("image_size")), cfg.get("epochs"))].append(
                (float(meta["seconds"]), dev))
            t.pre[(cfg.get("backbone"),)].append((float(meta["seconds"]), dev))
            if meta.get("images_per_s"):
                t.pre_ips[(cfg.get("backbone"), _size(cfg.get("image_size")))].append((meta["images_per_s"], dev))
            if meta.get("n_train") is not None:
                t.pre_counts[(cfg.get("source"), _size(cfg.get("source_data")), cfg.get("val_fraction"))].append(
                    (int(meta["n_train"]), dev))
    return t


@dataclass
class Estimate:
    """:func:`estimate_seconds`: ``seconds`` of compute for ``known`` jobs; ``unknown`` jobs had nothing to go by;
    ``rough`` were estimated only from the same backbone at another image size, source or schedule;
    ``from_throughput`` from the images per second of the same backbone and image size; ``devices``: where the
    timings used were measured (records' ``provenance.device``), most used first."""

    seconds: float = 0.0
    known: int = 0
    unknown: int = 0
    rough: int = 0
    from_throughput: int = 0
    devices: Counter = field(default_factory=Counter)

    def __iter__(self):  # (seconds, known, unknown, rough), as this function returned before
        return iter((self.seconds, self.known, self.unknown, self.rough))


def _median(entries: list) -> float:
    return statistics.median(v for v, _ in entries)


def _from_throughput(t: Timings, job: Job) -> tuple[float, list] | None:
    """Seconds of ``job`` from the throughput measured for its backbone and image size, and the entries used;
    None without such a measurement or without recorded image counts for its target (or source) and share."""
    if job.kind == "pretrain":
        c = job.config
        ips = t.pre_ips.get((c["backbone"], _size(c["image_size"])))
        n = t.pre_counts.get((c["source"], _size(c.get("source_data")), c.get("val_fraction")))
        if not ips or not n:
            return None
        return _median(n) * int(c["epochs"]) / _median(ips), ips
    c, cfg = job.cell, job.cell.config
    key, epochs = (c.backbone, _size(cfg["image_size"])), _ft_epochs(cfg.get("finetune")) if c.ft_fraction else 0
    counts = t.counts.get((c.target, _size(cfg.get("target_data")), c.ft_fraction))
    ev, tr, setup = t.eval_ips.get(key), t.train_ips.get(key), t.setup.get(c.backbone)
    if not counts or not ev or not setup or (epochs and not tr):
        return None
    n_trained = statistics.median(n[0] for n, _ in counts)
    n_eval = statistics.median(n[1] for n, _ in counts)
    seconds = _median(setup) + n_eval / _median(ev) + (n_trained * epochs / _median(tr) if epochs else 0.0)
    return seconds, ev + (tr if epochs else [])


def estimate_seconds(plan: Plan) -> Estimate:
    """The compute the pending jobs need, from what finished jobs under the plan's results folder measured.

    A job is estimated, in order of preference, from: the median ``timing.total_s`` of finished jobs with the same
    backbone, image size, target, share and fine-tuning epochs (pre-training: backbone, source, size, epochs); else
    the throughput measured for the same backbone and image size on any target (``timing.train_images_per_s``,
    ``eval_images_per_s``, ``setup_s``; a pre-training's ``images_per_s``) times its images, counted in the
    records of its target (source) and share; else, roughly, other cells of the same backbone. SVCCA runs are not
    estimated.
    """
    t = recorded_timings(plan.results_root)
    est = Estimate()
    for job in plan.jobs:
        if job.kind == "na":
            continue
        if job.kind == "svcca":  # not estimated (its record keeps its timing, but not in the cells' terms)
            est.unknown += 1
            continue
        if job.kind == "pretrain":
            c = job.config
            keys = [(c["backbone"], c["source"], _size(c["image_size"]), c["epochs"]), (c["backbone"],)]
            table = t.pre
        else:
            c, cfg = job.cell, job.cell.config
            ft = _ft_epochs(cfg.get("finetune")) if c.ft_fraction else 0
            keys = [(c.backbone, _size(cfg["image_size"]), c.target, c.ft_fraction, ft),
                    (c.backbone, _size(cfg["image_size"]), bool(c.ft_fraction)), (c.backbone,)]
            table = t.cells
        measured = None if table.get(keys[0]) else _from_throughput(t, job)
        found = next((k for k in keys if table.get(k)), None)
        if measured is not None:
            seconds, used = measured
            est.from_throughput += 1
        elif found:
            seconds, used = _median(table[found]), table[found]
            est.rough += found == keys[-1]  # (backbone,) only
        else:
            est.unknown += 1
            continue
        est.seconds += seconds
        est.known += 1
        est.devices.update(d for _, d in used if d)
    return est


def _fmt_s(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def format_plan(plan: Plan, *, workers: int = 1) -> str:
    """The plan as text: counts, the graph (pre-training -> dependent cells), NA cells, cost estimate."""
    suite = plan.suite
    n_na = sum(1 for c in suite.cells if c.na_reason)
    lines = [f"suite {suite.name}: {len(suite.cells)} cells ({n_na} NA), results in {plan.out}",
             (f"  done {len(plan.done)}, failed (kept) {len(plan.failed_kept)}, pending {len(plan.cells)} "
              f"({sum(1 for j in plan.cells if j.kind == 'na')} NA to write)")]
    dependents = Counter(d for j in plan.cells for d in j.deps)
    lines.append(f"  source pre-trainings: {len(plan.pretrain)} to run, {len(plan.pretrain_cached)} cached, "
                 f"{len(plan.pretrain_failed)} failed (kept)")
    for pid, job in plan.pretrain.items():
        lines.append(f"    {pid}: {job.label} -> {dependents[pid]} cell(s) wait for it")
    for pid, reason in plan.pretrain_failed.items():
        lines.append(f"    {pid}: FAILED ({reason}) -> {dependents[pid]} cell(s) will be marked failed")
    free = sum(1 for j in plan.cells if j.kind == "cell" and not j.deps)
    lines.append(f"  cells with no pending dependency (can start at once): {free}")
    for reason, n in Counter(c.cell.na_reason for c in plan.cells if c.kind == "na").items():
        lines.append(f"    NA x{n}: {reason}")
    if plan.analyses or plan.analyses_done:
        lines.append(f"  svcca analysis runs: {len(plan.analyses)} to run"
                     + (f" ({len(plan.analyses_failed)} failed before, retried)" if plan.analyses_failed else "")
                     + f", {len(plan.analyses_done)} done")
        for job in plan.analyses[:10]:
            lines.append(f"    svcca {job.key}: {job.label}"
                         + (f" (after {job.deps[0]})" if job.deps else ""))
    for cid, reason in list(plan.failed_kept.items())[:10]:
        lines.append(f"    failed (kept; --retry-failed to retry) {cid}: {reason}")
    est = estimate_seconds(plan)
    total, known, unknown, rough = est
    if known:
        w = max(1, workers)
        where = f" (measured on {', '.join(d for d, _ in est.devices.most_common())})" if est.devices else ""
        lines.append(f"  estimate from recorded timings{where}: {_fmt_s(total)} of compute for {known} job(s)"
                     f"{f', about {_fmt_s(total / w)} wall with {w} workers' if w > 1 else ''}"
                     + (f"; {est.from_throughput} of them from the images per second measured for the same backbone "
                        f"and image size" if est.from_throughput else "")
                     + (f"; {rough} of them rough (only the same backbone was recorded, at another image size, "
                        f"source or schedule)" if rough else "")
                     + (f"; {unknown} job(s) have no comparable recorded timing" if unknown else ""))
    elif unknown:
        lines.append(f"  estimate: unknown ({unknown} job(s), no comparable recorded timing under "
                     f"{plan.results_root} yet)")
    else:
        lines.append("  nothing to compute")
    return "\n".join(lines)
