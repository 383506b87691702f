"""The lines under a table that say how to read its numbers: the interval rule, the few-seeds warning, what †
means in this table, and where ± and † disagree. Frames in, sentences out."""
from __future__ import annotations

import math

import pandas as pd
from scipy import stats as sps

from bench.analysis.intervals import CELL_KEYS, FEW_SEEDS, metric_range
from bench.report.cells import interval_lookup
from bench.report.table import (
    ALPHA,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    N_RESAMPLES,
    SIGNIFICANT,
    fraction_label,
    leaves_range,
    range_text,
    source_label,
)

__all__ = ["disagreement_notes", "few_seeds_notes", "interval_rule", "range_note", "significance_note",
           "tested_pairs"]


def range_note(metric: str) -> str:
    """The sentence for tables where a cell shows an interval's bounds instead of "±" (see :mod:`bench.report`)."""
    return (f" Where mean ± half-width would reach past {range_text(metric)}, the cell shows the interval's "
            "bounds instead, cut at that range: mean (low–high).")


def interval_rule(intervals: pd.DataFrame, metric: str) -> str:
    """The interval rule under a table, naming only the methods its cells use (``intervals``: their rows of
    :func:`bench.analysis.intervals.cell_intervals`)."""
    methods = set(intervals["method"]) if not intervals.empty else set()
    parts = []
    if "t" in methods:
        parts.append("with ≥ 2 seeds, the t interval of the mean over seeds (t(0.975, n − 1) · s / √n)")
    if "bootstrap" in methods:
        parts.append(f"with 1 seed, the percentile interval of {N_RESAMPLES:,} bootstrap resamples of the cell's "
                     f"evaluation patients (not images; seed {BOOTSTRAP_SEED}), shown as (high − low) / 2")
    if "single" in methods:
        parts.append(f"no interval for a single seed{' without stored predictions' if metric == 'auc' else ''}")
    text = "Interval: ± = half-width of the 95 % interval; " + ("; ".join(parts) if parts else "none") + "."
    value_range = metric_range(metric)
    if any(leaves_range(r.mean, r.half_width, value_range) for r in intervals.itertuples()):
        text += range_note(metric)
    return text


def _cell_label(key: tuple, with_transfer: bool = False) -> str:
    """A table cell in words: backbone, source, column (and transfer mode), from its :data:`CELL_KEYS` values."""
    cell = dict(zip(CELL_KEYS, key))
    return (f"{cell['backbone']}, {source_label(cell['source'])}, {fraction_label(cell['ft_fraction'])}"
            + (f", {cell['transfer']}" if with_transfer else ""))


def few_seeds_notes(intervals: pd.DataFrame, bootstraps: pd.DataFrame | None = None, *,
                    with_transfer: bool = False) -> list[str]:
    """Under a table whose t intervals rest on fewer than :data:`FEW_SEEDS` seeds: say so, and with ``bootstraps``
    (:func:`bench.analysis.intervals.seed_bootstraps`, AUC only) list each of those cells' seeds with its own
    patient-bootstrap interval."""
    if intervals.empty:
        return []
    few = intervals[(intervals["method"] == "t") & (intervals["n"] < FEW_SEEDS)]
    if few.empty:
        return []
    parts = []
    for n, count in few["n"].value_counts(sort=False).sort_index().items():
        t = float(sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
        parts.append(f"{count} cell{'s' if count != 1 else ''} of this table {'have' if count != 1 else 'has'} only "
                     f"{n} seeds, and a t interval from {n} runs is t({0.5 + CONFIDENCE / 2:g}, {n - 1}) · s / √{n} = "
                     f"{t:.1f} · s / √{n} on each side of the mean: it says little")
    lines = ["Few seeds: " + "; ".join(parts) + "."]
    if bootstraps is None or bootstraps.empty:
        return lines
    shown = {tuple(r[k] for k in CELL_KEYS) for _, r in few.iterrows()}
    per_cell: dict[tuple, list[str]] = {}
    for _, r in bootstraps.iterrows():
        key = tuple(r[k] for k in CELL_KEYS)
        if key in shown:
            per_cell.setdefault(key, []).append(f"seed {r['seed']}: {r['auc']:.3f} ({r['low']:.3f}–{r['high']:.3f})")
    if not per_cell:
        return lines
    lines[0] += (f" Beside the t interval, each training seed's own AUC with its {CONFIDENCE * 100:g} % interval from "
                 f"{N_RESAMPLES:,} bootstrap resamples of its evaluation patients (resampling seed {BOOTSTRAP_SEED}), "
                 "which measures the evaluation sample only, not how much a result moves between runs:")
    lines += [f"{_cell_label(key, with_transfer)}: {'; '.join(texts)}." for key, texts in per_cell.items()]
    return lines


def tested_pairs(tests: pd.DataFrame | None, axis: str, reference, backbone_of=None) -> list[tuple[tuple, tuple, bool]]:
    """(cell keys, reference cell keys, significant) of every tested comparison of a
    :func:`bench.analysis.paired.paired_tests` result.

    ``axis`` is a :data:`CELL_KEYS` axis, or ``"train_mode"`` with ``backbone_of(backbone, mode)`` giving the
    backbone name the intervals use.
    """
    if tests is None or tests.empty:
        return []
    pairs = []
    for _, r in tests[tests["n_seeds"] > 0].iterrows():
        cell = {k: r[k] for k in CELL_KEYS if k != axis}
        if axis in CELL_KEYS:
            key = tuple({**cell, axis: r[axis]}[k] for k in CELL_KEYS)
            ref = tuple({**cell, axis: reference}[k] for k in CELL_KEYS)
        else:
            key = tuple({**cell, "backbone": backbone_of(r["backbone"], r[axis])}[k] for k in CELL_KEYS)
            ref = tuple({**cell, "backbone": backbone_of(r["backbone"], reference)}[k] for k in CELL_KEYS)
        pairs.append((key, ref, bool(r["significant"])))
    return pairs


def disagreement_notes(pairs: list[tuple[tuple, tuple, bool]], intervals: pd.DataFrame, reference_label: str,
                       n_comparisons: int) -> list[str]:
    """One sentence for each way ± and † disagree in a table, only when they do: † with overlapping intervals, or
    no † with intervals apart. The wording follows the intervals involved (t over seeds, patient bootstrap)."""
    lookup = interval_lookup(intervals)
    overlap_sig, apart_not_sig = [], []
    for key, ref, significant in pairs:
        a, b = lookup.get(key), lookup.get(ref)
        if a is None or b is None or not all(map(math.isfinite, (a["low"], a["high"], b["low"], b["high"]))):
            continue
        overlap = a["low"] <= b["high"] and b["low"] <= a["high"]
        if significant == overlap:
            (overlap_sig if significant else apart_not_sig).append({a["method"], b["method"]})
    lines = []
    if overlap_sig:
        methods = set().union(*overlap_sig)
        spread = ("the spread of each cell on its own across seeds" if methods == {"t"} else
                  "each cell's own patient-bootstrap interval" if methods == {"bootstrap"} else
                  "each cell's own interval (its spread across seeds, or with one seed its patient bootstrap)")
        k = len(overlap_sig)
        lines.append(f"± and {SIGNIFICANT} disagree for {k} cell{'s' if k != 1 else ''} here (marked {SIGNIFICANT} "
                     f"although its interval overlaps that of the {reference_label}): ± is {spread}, while "
                     f"{SIGNIFICANT} is a paired test of the difference on the same evaluation images, which cancels "
                     "what both cells share (the same patients, and the same split in each seed), so a difference that "
                     "holds image by image and seed by seed can be significant while the two intervals overlap.")
    if apart_not_sig:
        seeds = "t" in set().union(*apart_not_sig)
        k = len(apart_not_sig)
        lines.append(f"± and {SIGNIFICANT} disagree for {k} cell{'s' if k != 1 else ''} here (no {SIGNIFICANT} "
                     f"although its interval does not overlap that of the {reference_label}): {SIGNIFICANT} is a "
                     f"paired test with Holm's correction over the {n_comparisons} comparison"
                     f"{'s' if n_comparisons != 1 else ''} of this table"
                     + (", and it counts the sampling noise of the evaluation images, which a spread over seeds "
                        "scored on the same images does not show" if seeds else "")
                     + ", while two separate 95 % intervals are neither corrected nor a test of the difference.")
    return lines


def significance_note(tests: pd.DataFrame, reference_label: str, axis_word: str) -> list[str]:
    """What † means in this table (test, correction, how many are significant), and which cells were not tested."""
    if tests.empty:
        return [f"{SIGNIFICANT}: no comparison with {reference_label} was possible in this table."]
    n, n_sig = len(tests), int(tests["significant"].sum())
    seeds = sorted(set(tests["n_seeds"]))
    lines = [(f"{SIGNIFICANT} = differs from the {reference_label} {axis_word} (two-sided DeLong test for correlated "
             f"AUCs on the same evaluation images, per seed; seeds combined by the mean of their signed z; Holm "
             f"correction over the {n} comparison{'s' if n != 1 else ''} of this table, α = {ALPHA}); "
             f"{n_sig} of {n} significant; seeds per comparison: {', '.join(map(str, seeds))}.")]
    untested = tests[tests["n_untested"] > 0]
    for r in untested.itertuples():
        lines.append(f"Not tested: {r.backbone}, {r.source}, {fraction_label(r.ft_fraction)}, {r.transfer}: "
                     f"{r.note}.")
    return lines
