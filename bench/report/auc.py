"""The report's main table: the paper's Tables 1-3 for one target (rows backbone x pre-training source, columns
"No FT", "FT 0.1", "FT 0.2", ...), here for the AUC with † against random initialisation. :mod:`bench.report.beta`
reuses the layout for β."""
from __future__ import annotations

import pandas as pd

from bench.analysis.intervals import CELL_KEYS
from bench.analysis.paired import paired_tests
from bench.report.blocks import Block, Note, Paragraph, Table
from bench.report.cells import cell_text, fractions, interval_lookup, significance_marks, undefined_column
from bench.report.checks import marks_note
from bench.report.frames import ReportData, check_metric
from bench.report.notes import disagreement_notes, few_seeds_notes, interval_rule, significance_note, tested_pairs
from bench.report.render_md import table_or_note
from bench.report.table import (
    ALPHA,
    METRIC_NAMES,
    OVERFIT,
    fraction_label,
    metric_caption,
    source_label,
    source_order,
    unique,
)

__all__ = ["auc_blocks", "table_transfer", "transfer_table"]


def transfer_table(df: pd.DataFrame, target: str, metric: str, transfer: str, *,
                   intervals: pd.DataFrame | None = None, tests: pd.DataFrame | None = None,
                   overfit: set | None = None, marks: dict | None = None) -> Table | Note:
    """The block behind :func:`table_transfer` (same arguments), without notes; ``overfit`` cells get
    :data:`bench.report.table.OVERFIT` and ``marks`` (:func:`bench.report.checks.table_marks`) add each cell's
    check marks. A :class:`Note` stands in when there is nothing to show."""
    check_metric(df, metric)
    sub = df[(df["target"] == target) & (df["transfer"] == transfer)]
    if sub.empty:
        return Note(f"No records for target {target!r} with transfer {transfer!r}.")
    columns = [f for f in fractions(sub) if not undefined_column(sub[sub["ft_fraction"] == f], metric)]
    if not columns:
        return Note(f"{METRIC_NAMES.get(metric, metric)} is undefined for every finished run of {target!r}.")
    lookup, significant = interval_lookup(intervals), significance_marks(tests)
    overfit, marks = overfit or set(), marks or {}
    sources = source_order(df["source"])
    rows = []
    for backbone in unique(sub["backbone"]):
        block = sub[sub["backbone"] == backbone]
        for i, source in enumerate(s for s in sources if s in set(block["source"])):
            cells = block[block["source"] == source]
            texts = []
            for f in columns:
                key = (backbone, source, f, target, transfer)
                mark = significant.get(key, "") + (OVERFIT if key in overfit else "") + marks.get(key, "")
                texts.append(cell_text(cells[cells["ft_fraction"] == f], metric, interval=lookup.get(key), mark=mark))
            rows.append([backbone if i == 0 else "", source_label(source), *texts])
    return Table(["Backbone", "Pre-training", *map(fraction_label, columns)], rows)


def table_transfer(df: pd.DataFrame, target: str, *, metric: str = "auc", transfer: str = "full",
                   intervals: pd.DataFrame | None = None, tests: pd.DataFrame | None = None) -> str:
    """The paper's Table 1 layout for one target: backbone x source rows, one column per ft_fraction.

    Columns are "No FT" (``ft_fraction == 0``) and "FT <fraction>" for every other fraction found for
    this target and transfer mode, in increasing order. A column where every finished run lacks the
    metric and none failed (beta without fine-tuning) is left out.

    Args:
        df: output of :func:`bench.report.frames.records_frame` (may hold several targets and transfer modes).
        target: the target dataset to tabulate.
        metric: a metric column of ``df``.
        transfer: the transfer mode to tabulate ("full" or "hybrid").
        intervals: :func:`bench.analysis.intervals.cell_intervals` of ``df``; the "±" shows its half-widths.
            Without it the t half-width over seeds is shown (nothing for one seed).
        tests: :func:`bench.analysis.paired.paired_tests` along ``source``; significant cells get "†".

    Returns:
        A GitHub-flavoured Markdown table, or a one-line note when there is nothing to show.

    Raises:
        ValueError: if ``metric`` is not a metric column of ``df``.
    """
    return table_or_note(transfer_table(df, target, metric, transfer, intervals=intervals, tests=tests))


def auc_blocks(data: ReportData, target: str) -> list[Block]:
    """The AUC table of ``target`` (full transfer) with its title and notes: interval rule, few seeds, † against
    random initialisation (and where ± and † disagree), the check marks."""
    df, auc_iv = data.df, data.auc_intervals
    sub = df[(df["target"] == target) & (df["transfer"] == "full")]
    tests = paired_tests(sub, data.predictions, axis="source", reference="random",
                         keys=list(CELL_KEYS[:1] + CELL_KEYS[2:]), alpha=ALPHA)
    table = transfer_table(df, target, "auc", "full", intervals=auc_iv, tests=tests, marks=data.marks)
    if isinstance(table, Table):
        shown = auc_iv[(auc_iv["target"] == target) & (auc_iv["transfer"] == "full")]
        notes = [interval_rule(shown, "auc"), *few_seeds_notes(shown, data.auc_bootstraps),
                 *significance_note(tests, "Random init", "row of the same column"),
                 *disagreement_notes(tested_pairs(tests, "source", "random"), shown, "Random init row", len(tests)),
                 marks_note(sub)]
        if (sub["ft_fraction"] == 0).any() and (sub["ft_fraction"] > 0).any():
            notes.append("No FT is the source network on the whole target; the FT columns evaluate what remains "
                         "after their fine-tune share. *Fine-tuning gain* below rescores the No-FT network on each "
                         "FT column's own images.")
        table = table.with_notes(notes)
    title = (f"**{metric_caption('auc')}** (transfer = full; rows: backbone × pre-training source, columns: share of "
             "the target used for fine-tuning)")
    return [Paragraph(title), table]
