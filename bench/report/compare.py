"""``bench compare``'s document: a :class:`bench.analysis.compare.Comparison` as report blocks
(:mod:`bench.report.blocks`), rendered to Markdown by :func:`bench.report.render_md.markdown` or to a page by
:func:`bench.report.render_html.html_page`. Nothing is computed here but the formatting."""
from __future__ import annotations

import math

from bench.analysis.compare import CELL_KEYS, PAIRED, UNPAIRED, UNTESTED, Comparison
from bench.report.blocks import Block, BulletList, Heading, Note, Paragraph, Table
from bench.report.table import one_line

__all__ = ["HEADERS", "TITLE", "compare_blocks", "compare_markdown", "comparison_table"]

TITLE = "Comparison of two runs"

HEADERS = ["backbone", "source", "target", "share", "transfer", "mode", "seed", "AUC A", "AUC B", "Δ", "p", "p Holm",
           "test"]
"""The columns of the comparison table (``share``: the cell's ft_fraction)."""

LISTED = 20
"""Cells found in one run only are listed up to this many per run."""


def _auc(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def _delta(value: float) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:+.3f}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _share(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _cell(key: tuple) -> str:
    """A cell's axes in one line: ``toy_cnn, random, synth-inbreast, 0.25, full, default, seed 0``."""
    axes = dict(zip(CELL_KEYS, key))
    return ", ".join([*(str(axes[k]) for k in ("backbone", "source", "target")), _share(axes["ft_fraction"]),
                      str(axes["transfer"]), str(axes["train_mode"]), f"seed {axes['seed']}"])


def _left_out(counts: dict[str, int], older: int) -> str:
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    if older:
        parts.append(f"{older} older record{'s' if older != 1 else ''} of a cell")
    return ", ".join(parts) or "none"


def _settings_items(comparison: Comparison) -> list[str]:
    n_shared = comparison.n_shared
    items = []
    for row in comparison.settings.itertuples(index=False):
        where = "all shared cells" if row.n_cells == n_shared else f"{row.n_cells} of {n_shared} shared cells"
        items.append(f"`{row.key}`: {one_line(row.value_a, 80)} -> {one_line(row.value_b, 80)} ({where})")
    return items


def _only_items(keys: list[tuple]) -> list[str]:
    items = [_cell(k) for k in keys[:LISTED]]
    if len(keys) > LISTED:
        items.append(f"... and {len(keys) - LISTED} more")
    return items


def comparison_table(comparison: Comparison) -> Table:
    """The per-cell table: axes, both AUCs, Δ = B − A, raw and Holm-adjusted p, and the test used."""
    rows = []
    for r in comparison.table.itertuples(index=False):
        rows.append([str(r.backbone), str(r.source), str(r.target), _share(r.ft_fraction), str(r.transfer),
                     str(r.train_mode), str(r.seed), _auc(r.auc_a), _auc(r.auc_b), _delta(r.difference),
                     _p(r.p_value), _p(r.p_holm), r.test if not r.note else f"{r.test} ({one_line(r.note, 80)})"])
    tests = comparison.table["test"]
    n_tested = int((tests != UNTESTED).sum())
    rule = (f"Δ = AUC B − AUC A, both recomputed from the stored predictions. p: two-sided; {PAIRED}: DeLong's test "
            "of two correlated AUCs on the same evaluation images (same image ids and labels); "
            f"{UNPAIRED}: the two AUCs as independent, z = Δ / √(var A + var B) with DeLong variances (the runs were "
            f"evaluated on different images). p Holm: Holm-adjusted over the {n_tested} tested "
            f"cell{'s' if n_tested != 1 else ''} of this table.")
    counts = (f"Tests: {int((tests == PAIRED).sum())} paired, {int((tests == UNPAIRED).sum())} unpaired, "
              f"{int((tests == UNTESTED).sum())} not tested.")
    notes = [rule, counts]
    return Table(headers=list(HEADERS), rows=rows, notes=notes)


def compare_blocks(comparison: Comparison, *, name_a: str, name_b: str, heading: bool = True) -> list[Block]:
    """The comparison of two runs as report blocks.

    Args:
        comparison: :func:`bench.analysis.compare.compare_records` of the two runs.
        name_a, name_b: how to name the runs (their results folders).
        heading: start with the level-1 heading :data:`TITLE` (an HTML page has it as its title instead).

    Returns:
        The heading, the line naming both runs with the counts of cells shared / only in one run / left out,
        "Settings that differ:" and its list, the per-cell table (:func:`comparison_table`), then the cells
        found in one run only.
    """
    c = comparison
    blocks: list[Block] = [Heading(TITLE, 1)] if heading else []
    blocks += [
        Paragraph(f"A: `{name_a}`, B: `{name_b}`: {c.n_shared} shared cell{'s' if c.n_shared != 1 else ''}, "
                  f"{len(c.only_a)} only in A, {len(c.only_b)} only in B. Left out (not ok): "
                  f"A {_left_out(c.not_ok_a, c.older_a)}; B {_left_out(c.not_ok_b, c.older_b)}."),
        Paragraph("Settings that differ:"),
    ]
    items = _settings_items(c)
    blocks.append(BulletList(items) if items else
                  Note("none: the shared cells of the two runs have the same resolved settings"))
    blocks.append(comparison_table(c) if c.n_shared else Note("No shared cells."))
    for label, keys in (("A", c.only_a), ("B", c.only_b)):
        if keys:
            blocks += [Paragraph(f"Only in {label} ({len(keys)}):"), BulletList(_only_items(keys))]
    return blocks


def compare_markdown(comparison: Comparison, *, name_a: str, name_b: str) -> str:
    """:func:`compare_blocks` as Markdown."""
    from bench.report.render_md import markdown

    return markdown(compare_blocks(comparison, name_a=name_a, name_b=name_b))
