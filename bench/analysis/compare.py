"""Two runs of a suite side by side: the same cells' AUCs, their differences and tests, and the settings that differ.

Pure functions: record dicts in, a :class:`Comparison` (DataFrames and counts) out; no I/O, no torch, no GPU, nothing
retrained or re-scored. ``bench compare RESULTS_A RESULTS_B`` reads the two folders and renders the result
(:mod:`bench.report.compare`).

Pairing
-------
Cells are matched on their axes, :data:`CELL_KEYS` (backbone, source, target, ft_fraction, transfer, train_mode,
seed), never on their cell id: the id hashes the whole resolved config, so a changed setting (``finetune.lr``) gives
the "same" cell another id, and that setting is exactly what the comparison is about. Of several records with the
same axes in one run the newest is kept (:func:`bench.records.latest_per_cell`); records that are not ``ok`` (NA,
failed) are left out and counted.

Tests
-----
Each shared cell's two AUCs are recomputed from the stored predictions (label and logit margin per evaluation image).

- **paired**: when the two records were evaluated on exactly the same images (same image ids, each once, with the
  same labels; :func:`bench.analysis.paired.align_predictions`), DeLong's test for two correlated AUCs
  (:func:`bench.analysis.stats.delong_test`). Changing a fine-tune setting leaves the split alone, so this is the
  usual case.
- **unpaired**: otherwise (e.g. the data or split changed) the two AUCs are treated as independent:
  ``z = (AUC_B - AUC_A) / sqrt(var_A + var_B)`` with each variance DeLong's (:func:`bench.analysis.stats.
  delong_variance`), two-sided normal p-value. Where the two evaluation sets overlap, their AUCs are positively
  correlated and this test is conservative.

The p-values of the table are Holm-adjusted together (:func:`bench.analysis.stats.holm`): one family per comparison.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.analysis.paired import align_predictions
from bench.analysis.stats import delong_auc_ci, delong_test, holm
from bench.records import axis_value, latest_per_cell

__all__ = ["CELL_KEYS", "COLUMNS", "Comparison", "compare_records", "config_differences", "flatten_config",
           "setting_differences"]

CELL_KEYS = ("backbone", "source", "target", "ft_fraction", "transfer", "train_mode", "seed")
"""The axes two records are paired on (their cell ids may differ)."""

COLUMNS = [*CELL_KEYS, "cell_id_a", "cell_id_b", "n_eval_a", "n_eval_b", "auc_a", "auc_b", "difference", "z",
           "p_value", "p_holm", "test", "note", "settings"]
"""The columns of :attr:`Comparison.table`."""

PAIRED, UNPAIRED, UNTESTED = "paired DeLong", "unpaired DeLong", "not tested"
"""The values of the ``test`` column."""

MISSING = "(not set)"
"""How a setting present in one config only shows on the other side."""


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_records` found.

    Attributes:
        table: one row per shared cell, in the order of run A (see :data:`COLUMNS`): the axes, both cell ids and
            evaluation sizes, ``auc_a``, ``auc_b``, ``difference`` (B - A), ``z``, ``p_value``, ``p_holm``,
            ``test`` (:data:`PAIRED`, :data:`UNPAIRED` or :data:`UNTESTED`), ``note`` (why unpaired or untested)
            and ``settings`` (the dotted keys whose values differ in this cell's two configs, comma-joined).
        settings: :func:`setting_differences` over the shared cells.
        only_a, only_b: axes (tuples in :data:`CELL_KEYS` order) of the ok cells found in one run only.
        not_ok_a, not_ok_b: how many cells of each run were left out because their newest record is not ok, by
            status (``{"failed": 2, "na": 4}``).
        older_a, older_b: how many older records with the same axes as a newer one were left out.
    """

    table: pd.DataFrame
    settings: pd.DataFrame
    only_a: list[tuple] = field(default_factory=list)
    only_b: list[tuple] = field(default_factory=list)
    not_ok_a: dict[str, int] = field(default_factory=dict)
    not_ok_b: dict[str, int] = field(default_factory=dict)
    older_a: int = 0
    older_b: int = 0

    @property
    def n_shared(self) -> int:
        return len(self.table)


def cell_key(record: dict) -> tuple:
    """A record's axes in :data:`CELL_KEYS` order (``ft_fraction`` as float, missing train mode as "default")."""
    key = [axis_value(record, k) for k in CELL_KEYS]
    i = CELL_KEYS.index("ft_fraction")
    try:
        key[i] = float(key[i])
    except (TypeError, ValueError):
        pass
    return tuple(key)


def _ok_cells(records: Iterable[dict]) -> tuple[dict[tuple, dict], dict[str, int], int]:
    """The newest ok record per cell, the statuses of the cells left out, and how many older records were dropped."""
    newest, older = latest_per_cell(list(records))
    ok, not_ok = {}, Counter()
    for r in newest:
        if r.get("status") == "ok" and r.get("predictions"):
            ok[cell_key(r)] = r
        else:
            not_ok[str(r.get("status"))] += 1
    return ok, dict(not_ok), older


# --------------------------------------------------------------------------------------------------- settings

def flatten_config(config: dict, prefix: str = "") -> dict[str, object]:
    """A nested config as one flat dict with dotted keys.

    Lists of dicts (a fine-tuning ``schedule``) are flattened with the index, ``finetune.schedule[0].lr``; other
    lists are values.

    Examples
    --------
    >>> flatten_config({"finetune": {"lr": 0.001, "schedule": [{"epochs": 2}]}, "seed": 0})
    {'finetune.lr': 0.001, 'finetune.schedule[0].epochs': 2, 'seed': 0}
    """
    out: dict[str, object] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_config(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update(flatten_config(item, f"{name}[{i}]."))
        else:
            out[name] = value
    return out


def _same(a, b) -> bool:
    """Equal settings: 8 and 8.0 are, True and 1 are not, NaN equals NaN."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def config_differences(config_a: dict, config_b: dict) -> list[tuple[str, object, object]]:
    """The settings whose values differ between two configs: ``(dotted key, value A, value B)``, sorted by key; a
    key present on one side only has :data:`MISSING` on the other.

    Examples
    --------
    >>> config_differences({"finetune": {"lr": 0.001, "epochs": 8}}, {"finetune": {"lr": 0.01, "epochs": 8}})
    [('finetune.lr', 0.001, 0.01)]
    """
    a, b = flatten_config(config_a), flatten_config(config_b)
    return [(k, a.get(k, MISSING), b.get(k, MISSING)) for k in sorted(set(a) | set(b))
            if k not in a or k not in b or not _same(a[k], b[k])]


def format_setting(value) -> str:
    """A setting's value as text: strings as they are, everything else as JSON (``0.001``, ``true``, ``null``)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def setting_differences(pairs: Iterable[tuple[dict, dict]]) -> pd.DataFrame:
    """The settings that differ between the two runs, summarised over pairs of records of the same cell.

    Args:
        pairs: ``(record A, record B)`` of each shared cell.

    Returns:
        One row per (key, value A, value B), sorted by key: columns ``key, value_a, value_b`` (text, as
        :func:`format_setting`), ``n_cells`` (shared cells where the key differs so) and ``n_shared`` (all shared
        cells). A key that differs in only some cells (``finetune.lr`` is not in a No FT cell's config) has
        ``n_cells < n_shared``.
    """
    pairs = list(pairs)
    counts: Counter = Counter()
    for ra, rb in pairs:
        for key, va, vb in config_differences(ra.get("config") or {}, rb.get("config") or {}):
            counts[(key, format_setting(va), format_setting(vb))] += 1
    rows = [{"key": k, "value_a": va, "value_b": vb, "n_cells": n, "n_shared": len(pairs)}
            for (k, va, vb), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1]))]
    return pd.DataFrame(rows, columns=["key", "value_a", "value_b", "n_cells", "n_shared"])


# --------------------------------------------------------------------------------------------------- tests

def _labels_scores(record: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """A record's evaluation labels and finite scores, or None when a score is missing or not finite."""
    p = record["predictions"]
    scores = np.array([math.nan if s is None else s for s in p["score"]], dtype=float)
    if not len(scores) or not np.all(np.isfinite(scores)):
        return None
    return np.asarray(p["label"], dtype=np.int64), scores


def _frame(record: dict) -> pd.DataFrame:
    p = record["predictions"]
    return pd.DataFrame({"image_id": [str(i) for i in p["image_id"]], "label": p["label"],
                         "score": [math.nan if s is None else s for s in p["score"]]})


def _auc_var(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """AUC and DeLong variance of one record (NaN when a class is missing or has fewer than 2 images)."""
    ci = delong_auc_ci(labels, scores)
    return ci["auc"], ci["se"] ** 2


def _z_p(difference: float, se: float) -> tuple[float, float]:
    """z and two-sided p of a difference and its standard error; a zero standard error gives z 0 and p 1 for no
    difference, z +-inf and p 0 otherwise (as :func:`bench.analysis.stats.delong_test`)."""
    if not (math.isfinite(difference) and math.isfinite(se)):
        return math.nan, math.nan
    if se <= 1e-12 * max(1.0, abs(difference)):
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    else:
        z = difference / se
    return float(z), float(2 * sps.norm.sf(abs(z)))


def compare_pair(record_a: dict, record_b: dict) -> dict:
    """The two AUCs of one cell, their difference (B - A) and its test (see the module docstring).

    Returns:
        ``auc_a, auc_b, difference, z, p_value, test, note``; predictions that cannot be scored (labels other than
        0/1) give an untested row whose note says why.
    """
    out = {"auc_a": math.nan, "auc_b": math.nan, "difference": math.nan, "z": math.nan, "p_value": math.nan,
           "test": UNTESTED, "note": ""}
    try:
        return _compare_pair(record_a, record_b, out)
    except ValueError as exc:  # bench.analysis.metrics.check_binary: labels not 0/1, ...
        return {**out, "note": str(exc)}


def _compare_pair(record_a: dict, record_b: dict, out: dict) -> dict:
    out = dict(out)
    a, b = _labels_scores(record_a), _labels_scores(record_b)
    if a is None or b is None:
        out["note"] = f"run {'A' if a is None else 'B'} has missing or non-finite scores"
        return out
    frame_a, frame_b = _frame(record_a), _frame(record_b)
    aligned = align_predictions(frame_a, frame_b)
    if aligned is not None:
        labels, sa, sb = aligned
        t = delong_test(labels, sb, sa)  # difference = AUC_B - AUC_A
        out.update(auc_a=t["auc_b"], auc_b=t["auc_a"], difference=t["difference"])
        if math.isnan(t["p_value"]):
            out["note"] = "fewer than 2 images of a class"
            return out
        out.update(z=t["z"], p_value=t["p_value"], test=PAIRED)
        return out
    (auc_a, var_a), (auc_b, var_b) = _auc_var(*a), _auc_var(*b)
    diff = auc_b - auc_a
    same_ids = set(frame_a["image_id"]) == set(frame_b["image_id"])
    out.update(auc_a=auc_a, auc_b=auc_b, difference=diff,
               note="same image ids, but repeated or with other labels" if same_ids else
               f"evaluated on different images, {len(set(frame_a['image_id']) & set(frame_b['image_id']))} in common")
    z, p = _z_p(diff, math.sqrt(var_a + var_b))  # NaN when a variance is
    if math.isnan(p):
        out["note"] += "; fewer than 2 images of a class"
        return out
    out.update(z=z, p_value=p, test=UNPAIRED)
    return out


def compare_records(records_a: Iterable[dict], records_b: Iterable[dict]) -> Comparison:
    """Pair the cells of two runs by their axes and compare each shared cell's AUC.

    Args:
        records_a, records_b: the record dicts of each run (a results folder's records; see :mod:`bench.records`).

    Returns:
        A :class:`Comparison`: the table (one row per shared ok cell, Holm over all its p-values), the settings
        that differ, the cells found in one run only and the counts of records left out.

    Examples
    --------
    >>> import numpy as np
    >>> def rec(lr, scores):
    ...     cell = dict(backbone="toy_cnn", source="random", target="t", ft_fraction=0.5, transfer="full", seed=0)
    ...     return {"cell_id": str(lr), "status": "ok", "cell": cell, "config": {"finetune": {"lr": lr}},
    ...             "predictions": {"image_id": ["a", "b", "c", "d"], "label": [0, 0, 1, 1], "score": scores}}
    >>> c = compare_records([rec(0.001, [0.1, 0.2, 0.3, 0.4])], [rec(0.01, [0.1, 0.4, 0.3, 0.2])])
    >>> c.table[["auc_a", "auc_b", "difference", "test"]].values.tolist()
    [[1.0, 0.5, -0.5, 'paired DeLong']]
    >>> c.settings[["key", "value_a", "value_b"]].values.tolist()
    [['finetune.lr', '0.001', '0.01']]
    """
    ok_a, not_ok_a, older_a = _ok_cells(records_a)
    ok_b, not_ok_b, older_b = _ok_cells(records_b)
    shared = [k for k in ok_a if k in ok_b]
    rows = []
    for key in shared:
        ra, rb = ok_a[key], ok_b[key]
        diffs = config_differences(ra.get("config") or {}, rb.get("config") or {})
        rows.append({**dict(zip(CELL_KEYS, key)), "cell_id_a": ra.get("cell_id"), "cell_id_b": rb.get("cell_id"),
                     "n_eval_a": len(ra["predictions"]["label"]), "n_eval_b": len(rb["predictions"]["label"]),
                     **compare_pair(ra, rb), "settings": ", ".join(k for k, _, _ in diffs)})
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "p_holm"])
    table.insert(COLUMNS.index("p_holm"), "p_holm", holm(table["p_value"].to_numpy(dtype=float)) if len(table)
                 else np.zeros(0))
    return Comparison(table=table, settings=setting_differences((ok_a[k], ok_b[k]) for k in shared),
                      only_a=[k for k in ok_a if k not in ok_b], only_b=[k for k in ok_b if k not in ok_a],
                      not_ok_a=not_ok_a, not_ok_b=not_ok_b, older_a=older_a, older_b=older_b)
