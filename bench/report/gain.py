"""The report's "fine-tuning gain" table: per target, each FT cell against its own No-FT network rescored on the
same evaluation images (:mod:`bench.analysis.finetune_gain`). Frames in, report blocks out; no I/O."""
from __future__ import annotations

import pandas as pd

from bench.analysis.finetune_gain import finetune_gain_tests
from bench.report.blocks import Block, Paragraph, Table
from bench.report.table import NO_RECORD, SIGNIFICANT, fraction_label, source_label, source_order, unique

__all__ = ["gain_blocks"]


def gain_blocks(df: pd.DataFrame, predictions: pd.DataFrame, target: str, *, alpha: float = 0.05) -> list[Block]:
    """Report blocks for ``target`` (empty when no FT cell has a No-FT network of the same row)."""
    sub = df[df["target"] == target]
    tests = finetune_gain_tests(sub, predictions, alpha=alpha)
    if tests.empty:
        return []
    columns = sorted(set(tests["ft_fraction"]))
    rows = []
    for backbone in unique(tests["backbone"]):
        block = tests[tests["backbone"] == backbone]
        for i, source in enumerate(s for s in source_order(sub["source"]) if s in set(block["source"])):
            texts = []
            for f in columns:
                hit = block[(block["source"] == source) & (block["ft_fraction"] == f)]
                if hit.empty or not hit.iloc[0]["n_seeds"]:
                    texts.append(NO_RECORD)
                    continue
                t = hit.iloc[0]
                texts.append(f"{t['auc_reference']:.3f} → {t['auc']:.3f} ({t['difference']:+.3f})"
                             + (f" {SIGNIFICANT}" if t["significant"] else ""))
            rows.append([backbone if i == 0 else "", source_label(source), *texts])
    n, n_sig = len(tests), int(tests["significant"].sum())
    notes = [("No FT → FT on the FT cell's own evaluation images: the No-FT network (the same network as the No FT "
              "column, which is scored on the whole target) rescored from its stored per-image scores on the images "
              "each FT column evaluates, then the fine-tuned network on them; means over seeds."),
             (f"{SIGNIFICANT} = fine-tuning changed the AUC on those images (two-sided DeLong test per seed, seeds "
              f"combined by the mean of their signed z, Holm over the {n} comparison{'s' if n != 1 else ''} of this "
              f"table, α = {alpha}); {n_sig} of {n} significant.")]
    title = (f"**Fine-tuning gain on the same images** (`{target}`, transfer = full; the question of how much of the "
             "help is only fine-tuning)")
    return [Paragraph(title), Table(["Backbone", "Pre-training", *map(fraction_label, columns)], rows, notes)]
