"""What the report marks before a number is believed: degenerate cells and cells computed without BatchNorm
re-estimation (issue 11). Record dicts and frames in, marks and rows out; the table modules of
:mod:`bench.report` lay them out.

- ``⚑`` (:data:`DEGENERATE`): at least one seed of the table cell is degenerate (:mod:`bench.analysis.degenerate`:
  one class predicted at the threshold, AUC interval below 0.5, or eval-mode train accuracy far below the running
  one). The report lists those seeds under *Flagged cells* with sensitivity, specificity and both accuracies.
- ``◊`` (:data:`UNCALIBRATED`): a network of the cell was evaluated with the BatchNorm running statistics that
  training left (records written before re-estimation existed, or a suite with ``bn_recalibrate: false``).
- ``◐`` (:data:`PARTIAL`): the cell's pretrained weights filled fewer than 90 % of the tensors before the head
  and the suite accepted it (``accept_partial_weights: true``; issue 12).
"""
from __future__ import annotations

import math

import pandas as pd

from bench.analysis.degenerate import FLAGS, WEAK_SOURCE_AUC, record_flags, weak_source
from bench.analysis.intervals import CELL_KEYS

__all__ = ["DEGENERATE", "PARTIAL", "UNCALIBRATED", "environment_line", "flagged_rows", "marks_note", "record_check",
           "table_marks", "uses_running_statistics", "weak_source_line"]

DEGENERATE = "⚑"
UNCALIBRATED = "◊"
PARTIAL = "◐"
SHORT = {"one_class": "one class", "auc_below_chance": "AUC < 0.5", "eval_below_running": "eval < train"}


def uses_running_statistics(record: dict) -> bool:
    """True when a trained network of the record was scored with the statistics training left: it was fine-tuned,
    or pre-trained on a source, without ``bn_recalibrate`` in its config."""
    cfg = record.get("config") or {}
    return any(block in cfg and not (cfg[block] or {}).get("bn_recalibrate") for block in ("finetune", "pretrain"))


def record_check(record: dict) -> dict:
    """The per-record columns the report adds: ``flags`` (comma-joined names, "" when none), ``uncalibrated``
    (bool; False for records that are not ok) and the numbers behind the flags."""
    diag = record_flags(record) or {}
    ok = record.get("status") == "ok"
    partial = bool((((record.get("weights") or {}).get("transfer")) or {}).get("partial"))
    return {"flags": ",".join(diag.get("flags", [])), "uncalibrated": ok and uses_running_statistics(record),
            "partial_weights": ok and partial,
            "auc_low": diag.get("auc_low", math.nan), "auc_high": diag.get("auc_high", math.nan),
            "running_train_acc": diag.get("running_train_acc")}


def table_marks(df: pd.DataFrame) -> dict[tuple, str]:
    """(cell keys) -> the marks of that table cell (``⚑`` and/or ``◊``), from a records frame with the
    :func:`record_check` columns."""
    marks: dict[tuple, str] = {}
    for key, rows in df[df["status"] == "ok"].groupby(list(CELL_KEYS), sort=False):
        mark = ((DEGENERATE if (rows["flags"] != "").any() else "")
                + (UNCALIBRATED if rows["uncalibrated"].any() else "")
                + (PARTIAL if rows["partial_weights"].any() else ""))
        if mark:
            marks[tuple(key)] = mark
    return marks


def marks_note(df: pd.DataFrame) -> str:
    """The line under a table: how many of its cells carry each mark."""
    ok = df[df["status"] == "ok"]
    cells = ok.groupby(list(CELL_KEYS), sort=False)
    n = cells.ngroups
    flagged = sum(1 for _, rows in cells if (rows["flags"] != "").any())
    kinds = {k: int(ok["flags"].str.split(",").map(lambda f, k=k: k in f).sum()) for k in FLAGS}
    text = (f"{DEGENERATE} = degenerate seed(s), see *Flagged cells*: {flagged} of {n} cells"
            + (f" ({', '.join(f'{SHORT[k]}: {v} seed(s)' for k, v in kinds.items() if v)})" if flagged else ""))
    stale = sum(1 for _, rows in cells if rows["uncalibrated"].any())
    if stale:
        text += (f"; {UNCALIBRATED} = evaluated with the BatchNorm statistics training left (no re-estimation): "
                 f"{stale} of {n} cells")
    partial = sum(1 for _, rows in cells if rows["partial_weights"].any())
    if partial:
        text += (f"; {PARTIAL} = pretrained weights filled fewer than 90 % of the tensors before the head "
                 f"(accept_partial_weights): {partial} of {n} cells")
    return text + "."


def flagged_rows(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the *Flagged cells* table: one row per flagged record."""
    headers = ["Backbone", "Pre-training", "FT", "Target", "Transfer", "Seed", "Flags", "AUC [95 % DeLong]",
               "Sens / spec", "Train acc eval / running", "Reading"]
    rows = []
    for r in df[(df["status"] == "ok") & (df["flags"] != "")].itertuples():
        running = "—" if r.running_train_acc is None or pd.isna(r.running_train_acc) else f"{r.running_train_acc:.3f}"
        train = "—" if pd.isna(r.train_acc) else f"{r.train_acc:.3f}"
        rows.append([str(r.backbone), str(r.source), f"{r.ft_fraction:g}", str(r.target), str(r.transfer),
                     str(r.seed), ", ".join(SHORT[f] for f in r.flags.split(",")),
                     f"{r.auc:.3f} [{r.auc_low:.3f}, {r.auc_high:.3f}]", f"{r.sensitivity:.2f} / {r.specificity:.2f}",
                     f"{train} / {running}", _reading(r.flags.split(","), r.ft_fraction, r.source)])
    return headers, rows


def _reading(flags: list[str], ft_fraction: float, source: str) -> str:
    """What a flagged seed most likely means, from which flags it carries."""
    if "eval_below_running" in flags:
        return "the evaluated network is not the one that trained: a harness bug until shown otherwise"
    if "one_class" in flags and ft_fraction == 0 and source == "random":
        return "an untrained random network: where its threshold falls is arbitrary"
    if "one_class" in flags and ft_fraction == 0:
        return "no fine-tuning: the source network's threshold does not carry over to this target"
    if "one_class" in flags:
        return ("scored as it trained (eval ≈ running train acc); on new images every score falls on one side of "
                "the threshold: too little separation, or memorised training images")
    return "ranks new images the wrong way round, beyond chance"


def environment_line(records: list[dict]) -> str | None:
    """Which environment produced the records (from their provenance), and what reproduces exactly; None when no
    record says. CPU results are bit-identical only on the same CPU type, thread count and library versions."""
    envs: dict[tuple, int] = {}
    for r in records:
        p = r.get("provenance") or {}
        if r.get("status") != "ok" or not p.get("torch"):
            continue
        key = (p.get("torch"), p.get("python"), p.get("device"), p.get("cpu"), p.get("torch_threads"))
        envs[key] = envs.get(key, 0) + 1
    if not envs:
        return None

    def text(key: tuple) -> str:
        torch, python, device, cpu, threads = key
        where = f"{device}" + (f" ({cpu})" if cpu and device == "cpu" else "")
        return f"torch {torch}, Python {python}, {where}, {threads} torch thread(s)"

    listed = "; ".join(text(k) + (f" ({n} records)" if len(envs) > 1 else "") for k, n in envs.items())
    return (f"**Environment** (from the records): {listed}. On a CPU the numbers reproduce bit for bit with the same "
            "CPU type, thread count and library versions; on another CPU or thread count the last digits can differ, "
            f"and a mark (†, {DEGENERATE}) near its threshold can flip.")


def weak_source_line(records: list[dict]) -> str | None:
    """One sentence naming the pre-trained source networks whose held-out source AUC (``weights.pretrain_held_out_auc``
    of the cells that used them) is below :data:`~bench.analysis.degenerate.WEAK_SOURCE_AUC`, or None when there is
    none: such a network did not learn its source, so its cells compare random init with random init."""
    weak: dict[tuple, int] = {}  # (backbone, source, held-out AUC, held-out images) -> cells that used it
    for rec in records:
        w = rec.get("weights") or {}
        auc = w.get("pretrain_held_out_auc")
        if rec.get("status") == "ok" and weak_source(auc):
            key = (str((rec.get("cell") or {}).get("backbone")), str(w.get("source")), float(auc),
                   w.get("pretrain_held_out_n") or 0)
            weak[key] = weak.get(key, 0) + 1
    if not weak:
        return None
    parts = [f"{b} on {src}: {auc:.3f}" + (f" on {n} held-out images" if n else "")
             + f" ({c} cell{'s' if c != 1 else ''})" for (b, src, auc, n), c in sorted(weak.items())]
    return (f"**Weak sources:** the source network of these cells scored held-out source AUC below {WEAK_SOURCE_AUC:.2f} "
            f"after pre-training: {'; '.join(parts)}. It did not learn its source, so those cells start from what is "
            "in effect a random network and cannot show transfer; give pre-training more steps (`pretrain.epochs`, or "
            "more source images) before reading them (benchmarks/known_answer.md).")
