"""The full-vs-hybrid table: the paper's Table 4 (rows target x source, cells "<full> vs <hybrid>" per fine-tune
fraction), † where the hybrid side differs from its full side."""
from __future__ import annotations

import pandas as pd

from bench.analysis.intervals import CELL_KEYS
from bench.analysis.paired import paired_tests
from bench.report.blocks import Block, Paragraph, Table
from bench.report.cells import cell_text, fractions, interval_lookup, significance_marks
from bench.report.checks import marks_note
from bench.report.frames import ReportData, check_metric
from bench.report.notes import disagreement_notes, few_seeds_notes, interval_rule, significance_note, tested_pairs
from bench.report.render_md import markdown_table
from bench.report.table import ALPHA, fraction_label, metric_caption, source_label, source_order, unique

__all__ = ["hybrid_blocks", "hybrid_table", "table_all_vs_hybrid"]


def hybrid_table(df: pd.DataFrame, metric: str, *, intervals: pd.DataFrame | None = None,
                 tests: pd.DataFrame | None = None, marks: dict | None = None) -> Table:
    """The block behind :func:`table_all_vs_hybrid` (same arguments), without notes; ``marks``
    (:func:`bench.report.checks.table_marks`) add each side's check marks."""
    check_metric(df, metric)
    modes = set(df["transfer"].dropna())
    if not {"full", "hybrid"} <= modes:
        raise ValueError(f"table_all_vs_hybrid needs records of both transfer modes 'full' and 'hybrid'; "
                         f"got {sorted(modes)}. Add 'hybrid' to the suite's axes.transfer.")
    lookup, significant, marks = interval_lookup(intervals), significance_marks(tests), marks or {}
    full, hybrid = df[df["transfer"] == "full"], df[df["transfer"] == "hybrid"]
    columns = fractions(df[df["transfer"].isin(["full", "hybrid"])], positive_only=True)
    backbones = unique(hybrid["backbone"])
    by_backbone = len(backbones) > 1
    sources = source_order(df["source"])
    rows = []
    for target in unique(hybrid["target"]):
        first_of_target = True
        for backbone in backbones:
            block = hybrid[(hybrid["target"] == target) & (hybrid["backbone"] == backbone)]
            for j, source in enumerate(s for s in sources if s in set(block["source"])):
                hyb = block[block["source"] == source]
                ful = full[(full["target"] == target) & (full["backbone"] == backbone) & (full["source"] == source)]
                cells = []
                for f in columns:
                    kf, kh = (backbone, source, f, target, "full"), (backbone, source, f, target, "hybrid")
                    full_text = cell_text(ful[ful["ft_fraction"] == f], metric, interval=lookup.get(kf),
                                          mark=marks.get(kf, ""))
                    hybrid_text = cell_text(hyb[hyb["ft_fraction"] == f], metric, interval=lookup.get(kh),
                                            mark=significant.get(kh, "") + marks.get(kh, ""))
                    cells.append(f"{full_text} vs {hybrid_text}")
                rows.append([target if first_of_target else "", *([backbone if j == 0 else ""] if by_backbone else []),
                             source_label(source), *cells])
                first_of_target = False
    headers = ["Target", *(["Backbone"] if by_backbone else []), "Pre-training", *map(fraction_label, columns)]
    return Table(headers, rows)


def table_all_vs_hybrid(df: pd.DataFrame, *, metric: str = "auc", intervals: pd.DataFrame | None = None,
                        tests: pd.DataFrame | None = None) -> str:
    """The paper's Table 4 layout: rows target x source, cells "<full> vs <hybrid>" per ft_fraction > 0.

    Each side is formatted like a :func:`bench.report.auc.table_transfer` cell, and compares records that agree on
    every axis but ``transfer``. Rows are the (target, backbone, source) combinations that have hybrid
    records. The paper compares one backbone; when the hybrid records span several, a "Backbone"
    column is added so that backbones are never averaged together.

    Args:
        df: output of :func:`bench.report.frames.records_frame`, with records of both transfer modes.
        metric: a metric column of ``df``.
        intervals: as in :func:`bench.report.auc.table_transfer`.
        tests: :func:`bench.analysis.paired.paired_tests` along ``transfer`` against ``"full"``; a hybrid side
            that differs significantly from its full side gets "†".

    Returns:
        A GitHub-flavoured Markdown table.

    Raises:
        ValueError: if ``metric`` is unknown, or ``df`` lacks "full" or "hybrid" records.
    """
    return markdown_table(hybrid_table(df, metric, intervals=intervals, tests=tests))


def _hybrid_note(records: list[dict], df: pd.DataFrame, target: str) -> str:
    """Which stage hybrid transfer reuses weights up to, and for which backbone, from the records."""
    stages = sorted({str((rec.get("config") or {}).get("hybrid_stage")) for rec in records
                     if (rec.get("cell") or {}).get("transfer") == "hybrid"
                     and (rec.get("config") or {}).get("hybrid_stage")})
    backbones = unique(df[(df["transfer"] == "hybrid") & (df["target"] == target)]["backbone"])
    note = "hybrid reuses pretrained weights up to " + (", ".join(stages) if stages else "a named stage")
    note += " and re-initialises the rest"
    return note + (f"; backbone {backbones[0]}" if len(backbones) == 1 else "")


def _hybrid_cells(intervals: pd.DataFrame, both: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``intervals`` that the full-vs-hybrid table of one target (records ``both``) shows."""
    hybrid = both[both["transfer"] == "hybrid"]
    rows = set(zip(hybrid["target"], hybrid["backbone"], hybrid["source"]))
    iv = intervals[intervals["transfer"].isin(["full", "hybrid"]) & (intervals["ft_fraction"] > 0)]
    return iv[[key in rows for key in zip(iv["target"], iv["backbone"], iv["source"])]]


def hybrid_blocks(data: ReportData, target: str) -> list[Block]:
    """The full-vs-hybrid AUC table of ``target`` with its title and notes; empty unless the target has records of
    both transfer modes."""
    df = data.df
    if not {"full", "hybrid"} <= set(df.loc[df["target"] == target, "transfer"].dropna()):
        return []
    both = df[df["target"] == target]
    tests = paired_tests(both, data.predictions, axis="transfer", reference="full", keys=list(CELL_KEYS[:4]),
                         alpha=ALPHA)
    table = hybrid_table(both, "auc", intervals=data.auc_intervals, tests=tests, marks=data.marks)
    shown = _hybrid_cells(data.auc_intervals, both)
    notes = [interval_rule(shown, "auc"), *few_seeds_notes(shown, data.auc_bootstraps, with_transfer=True),
             *significance_note(tests, "full-transfer side", "of the same cell"),
             *disagreement_notes(tested_pairs(tests, "transfer", "full"), shown, "full-transfer side", len(tests)),
             marks_note(both[both["ft_fraction"] > 0])]
    title = (f"**{metric_caption('auc')}: all weights vs hybrid** (full vs hybrid; "
             f"{_hybrid_note(data.records, df, target)})")
    return [Paragraph(title), table.with_notes(notes)]
