"""Sensitivity / specificity at the decision threshold, beside the AUC table of one target (means over seeds)."""
from __future__ import annotations

import pandas as pd

from bench.report.blocks import Block, Paragraph, Table
from bench.report.cells import fractions
from bench.report.checks import DEGENERATE
from bench.report.table import NO_RECORD, fraction_label, source_label, source_order, unique

__all__ = ["sens_spec_blocks"]


def sens_spec_blocks(sub: pd.DataFrame, target: str) -> list[Block]:
    """The table's title and table for the full-transfer records ``sub`` of ``target``; empty without an ok one."""
    ok = sub[sub["status"] == "ok"]
    if ok.empty:
        return []
    rows, columns = [], fractions(ok)
    for backbone in unique(ok["backbone"]):
        block = ok[ok["backbone"] == backbone]
        for i, source in enumerate(s for s in source_order(sub["source"]) if s in set(block["source"])):
            texts = []
            for f in columns:
                cell = block[(block["source"] == source) & (block["ft_fraction"] == f)]
                texts.append(NO_RECORD if cell.empty else
                             f"{cell['sensitivity'].mean():.2f} / {cell['specificity'].mean():.2f}")
            rows.append([backbone if i == 0 else "", source_label(source), *texts])
    table = Table(["Backbone", "Pre-training", *map(fraction_label, columns)], rows,
                  [f"Means over seeds; a 0.00 on either side means the network recognises no image of that class "
                   f"({DEGENERATE} one class)."])
    return [Paragraph(f"**Sensitivity / specificity** on `{target}` at the decision threshold (logit margin 0; "
                      "transfer = full)"), table]
