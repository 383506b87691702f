"""The sections after the per-target tables that list records one by one: *Flagged cells* (the degenerate seeds of
:mod:`bench.report.checks`) and *Failed cells* (with the recorded reason)."""
from __future__ import annotations

import pandas as pd

from bench.analysis.degenerate import FLAGS
from bench.report.blocks import Block, BulletList, Heading, Note, Paragraph, Table
from bench.report.checks import flagged_rows
from bench.report.table import one_line

__all__ = ["failed_blocks", "flagged_blocks"]


def flagged_blocks(df: pd.DataFrame) -> list[Block]:
    """*Flagged cells*: what the flags mean, then one row per flagged seed (or a note that none is)."""
    headers, rows = flagged_rows(df)
    intro = ("A flagged number may describe a broken network rather than an effect of pre-training; look at "
             "the seed's predictions before reading it. The flags:")
    blocks: list[Block] = [Heading("Flagged cells"), Paragraph(intro), BulletList(list(FLAGS.values()))]
    if not rows:
        return [*blocks, Note("No seed of any cell is flagged.")]
    return [*blocks, Table(headers, rows)]


def failed_blocks(df: pd.DataFrame) -> list[Block]:
    """*Failed cells*: one row per failed record with its axes and reason; empty when none failed."""
    failed = df[df["status"] == "failed"]
    if failed.empty:
        return []
    rows = [[f"`{r.cell_id}`", r.backbone, r.source, "" if pd.isna(r.ft_fraction) else f"{r.ft_fraction:g}",
             r.target, r.transfer, r.seed, one_line(r.reason)] for r in failed.itertuples()]
    headers = ["Cell id", "Backbone", "Pre-training", "FT fraction", "Target", "Transfer", "Seed", "Reason"]
    return [Heading("Failed cells"), Table(headers, [[str(v) for v in row] for row in rows])]
