"""The train-modes table of one target (e.g. Falconi's TL vs FT): the fine-tuned full-transfer cells, one row per
backbone x source x train mode, † where a mode differs from the suite's first listed mode."""
from __future__ import annotations

import pandas as pd

from bench.analysis.intervals import CELL_KEYS
from bench.analysis.paired import paired_tests
from bench.report.blocks import Block, Note, Paragraph, Table
from bench.report.cells import cell_text, fractions, interval_lookup
from bench.report.frames import ReportData, check_metric
from bench.report.notes import (
    disagreement_notes,
    few_seeds_notes,
    interval_rule,
    significance_note,
    tested_pairs,
)
from bench.report.render_md import table_or_note
from bench.report.table import (
    ALPHA,
    SIGNIFICANT,
    bare_backbones,
    fraction_label,
    metric_caption,
    source_label,
    source_order,
    unique,
)

__all__ = ["MODE_KEYS", "mode_tests", "modes_table", "table_train_modes", "train_mode_blocks"]

MODE_KEYS = list(CELL_KEYS)


def _fine_tuned_modes(df: pd.DataFrame, target: str) -> tuple[pd.DataFrame, list]:
    """Fine-tuned full-transfer rows of ``target`` with bare backbone names, and their train modes in order."""
    sub = bare_backbones(df[(df["target"] == target) & (df["transfer"] == "full") & (df["ft_fraction"] > 0)])
    return sub, unique(sub["train_mode"])


def mode_tests(df: pd.DataFrame, predictions: pd.DataFrame, target: str, *, alpha: float = 0.05) -> pd.DataFrame:
    """Paired tests of every train mode against the suite's first listed mode, fine-tuned full-transfer cells
    of ``target`` (same backbone, source, fraction and seed: the same evaluation images)."""
    sub, modes = _fine_tuned_modes(df, target)
    if len(modes) < 2:
        return pd.DataFrame()
    return paired_tests(sub, predictions, axis="train_mode", reference=modes[0], keys=MODE_KEYS, alpha=alpha)


def modes_table(df: pd.DataFrame, target: str, metric: str, *, intervals: pd.DataFrame | None = None,
                tests: pd.DataFrame | None = None) -> Table | Note:
    """The block behind :func:`table_train_modes` (same arguments), without notes."""
    check_metric(df, metric)
    sub, modes = _fine_tuned_modes(df, target)
    if len(modes) < 2:
        return Note(f"One train mode for target {target!r}: nothing to compare.")
    lookup = interval_lookup(intervals)
    significant = {}
    if tests is not None and not tests.empty:
        significant = {(*(getattr(r, k) for k in MODE_KEYS), r.train_mode): SIGNIFICANT
                       for r in tests[tests["significant"]].itertuples()}
    columns = fractions(sub, positive_only=True)
    rows = []
    for backbone in unique(sub["backbone"]):
        block = sub[sub["backbone"] == backbone]
        for i, source in enumerate(s for s in source_order(df["source"]) if s in set(block["source"])):
            here = block[block["source"] == source]
            for j, mode in enumerate(m for m in modes if m in set(here["train_mode"])):
                cells = here[here["train_mode"] == mode]
                texts = [cell_text(cells[cells["ft_fraction"] == f], metric,
                                   interval=lookup.get((f"{backbone} [{mode}]", source, f, target, "full")),
                                   mark=significant.get((backbone, source, f, target, "full", mode), ""))
                         for f in columns]
                rows.append([backbone if i == 0 and j == 0 else "", source_label(source) if j == 0 else "",
                             mode, *texts])
    return Table(["Backbone", "Pre-training", "Train mode", *map(fraction_label, columns)], rows)


def table_train_modes(df: pd.DataFrame, target: str, *, metric: str = "auc", intervals: pd.DataFrame | None = None,
                      tests: pd.DataFrame | None = None) -> str:
    """Train modes side by side for one target (e.g. Falconi's TL vs FT): rows backbone x source x mode,
    one column per fine-tune fraction > 0, full transfer. A mode's cell gets "†" when :func:`mode_tests`
    finds it differs from the first listed mode's cell in the same row block and column.

    Returns:
        A GitHub-flavoured Markdown table, or a one-line note when the records hold one train mode only.
    """
    return table_or_note(modes_table(df, target, metric, intervals=intervals, tests=tests))


def train_mode_blocks(data: ReportData, target: str) -> list[Block]:
    """The train-modes AUC table of ``target`` with its title and notes; empty when the target has one mode."""
    df, auc_iv = data.df, data.auc_intervals
    tests = mode_tests(df, data.predictions, target, alpha=ALPHA)
    table = modes_table(df, target, "auc", intervals=auc_iv, tests=tests)
    if not isinstance(table, Table):
        return []
    first = _fine_tuned_modes(df, target)[1][0]
    shown = auc_iv[(auc_iv["target"] == target) & (auc_iv["transfer"] == "full") & (auc_iv["ft_fraction"] > 0)]
    notes = [interval_rule(shown, "auc"), *few_seeds_notes(shown, data.auc_bootstraps),
             *significance_note(tests, f"train mode `{first}`", "cell of the same backbone, source and column"),
             *disagreement_notes(tested_pairs(tests, "train_mode", first, backbone_of=lambda b, m: f"{b} [{m}]"),
                                 shown, f"train mode `{first}` cell", len(tests))]
    title = (f"**{metric_caption('auc')}: train modes compared** (transfer = full; the same cells as above, one row "
             "per train mode; fine-tuned columns only)")
    return [Paragraph(title), table.with_notes(notes)]
