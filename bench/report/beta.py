"""The overfit-ratio table of one target: Falconi's β = train acc / val acc in the main table's layout
(:func:`bench.report.auc.transfer_table`), ‡ where training accuracy runs more than 10 points above evaluation
accuracy. Columns without fine-tuning (β undefined) are left out."""
from __future__ import annotations

from bench.analysis.metrics import FALCONI_GAP
from bench.report.auc import transfer_table
from bench.report.blocks import Block, Paragraph, Table
from bench.report.checks import marks_note
from bench.report.frames import ReportData
from bench.report.notes import few_seeds_notes, interval_rule
from bench.report.table import OVERFIT, metric_caption

__all__ = ["beta_blocks"]


def beta_blocks(data: ReportData, target: str) -> list[Block]:
    """The β table of ``target`` (full transfer) with its title and notes (interval rule, few seeds, ‡, marks)."""
    df, beta_iv = data.df, data.beta_intervals
    table = transfer_table(df, target, "beta", "full", intervals=beta_iv, overfit=data.overfit, marks=data.marks)
    if isinstance(table, Table):
        sub = df[(df["target"] == target) & (df["transfer"] == "full")]
        shown = beta_iv[(beta_iv["target"] == target) & (beta_iv["transfer"] == "full")]
        notes = [interval_rule(shown, "beta"), *few_seeds_notes(shown),
                 (f"{OVERFIT} = Falconi's flag: the mean training accuracy over seeds is more than "
                  f"{FALCONI_GAP * 100:.0f} points above the mean evaluation accuracy. Training accuracy is the final "
                  "network's, in eval mode, on its own fine-tune images."),
                 marks_note(sub[sub["ft_fraction"] > 0])]
        table = table.with_notes(notes)
    title = (f"**{metric_caption('beta')}** (Falconi et al., eq. 7; transfer = full; about 1 = no overfitting, above "
             "1 = overfitting; columns without fine-tuning are left out)")
    return [Paragraph(title), table]
