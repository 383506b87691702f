"""The whole report as one list of blocks (:mod:`bench.report.blocks`), in reading order: title, how to read it,
counts and environment; per target the AUC table, sensitivity / specificity, fine-tuning gain, full vs hybrid,
train modes and β; then paper vs ours, flagged and failed cells, and the SVCCA section. Both renderers
(:mod:`bench.report.render_md`, :mod:`bench.report.render_tex`) draw this same list."""
from __future__ import annotations

import pandas as pd

from bench.references import twin_of
from bench.report.auc import auc_blocks
from bench.report.beta import beta_blocks
from bench.report.blocks import Block, BulletList, Heading, Note, Paragraph
from bench.report.checks import DEGENERATE, UNCALIBRATED, environment_line, weak_source_line
from bench.report.flagged import failed_blocks, flagged_blocks
from bench.report.frames import ReportData
from bench.report.gain import gain_blocks
from bench.report.hybrid import hybrid_blocks
from bench.report.modes import train_mode_blocks
from bench.report.paper import paper_blocks, paper_vs_ours
from bench.report.sens_spec import sens_spec_blocks
from bench.report.svcca import svcca_blocks
from bench.report.table import ALPHA, one_line, unique

__all__ = ["report_blocks"]


def _how_to_read(df: pd.DataFrame) -> list[Block]:
    """The reading guide (cell text, marks) and the recorded reasons of the NA cells."""
    blocks: list[Block] = [Paragraph(
        "**How to read.** AUC is computed from per-image logit margins (logit₁ − logit₀) on each cell's evaluation "
        "images. A cell shows the mean over seeds ± the half-width of its 95 % interval (the rule is stated under "
        "each table), or the mean and the interval's bounds, as 0.507 (0.000–1.000), where the ± would reach past "
        "what the metric can take ([0, 1]; β ≥ 0); \"(k failed)\" counts seeds left out of the mean. NA = not "
        "applicable (reasons below); failed = every seed failed (see *Failed cells*); n/a = the runs finished but "
        f"the metric is undefined for them; — = no record. {DEGENERATE} = a seed of the cell is degenerate (one "
        "class at the threshold, AUC interval below 0.5, or eval-mode train accuracy far below the running one; see "
        f"*Flagged cells*); {UNCALIBRATED} = a network of the cell was scored with the BatchNorm statistics training "
        "left instead of statistics re-estimated for its final weights. Every number is recomputed from the stored "
        "records and predictions: nothing is retrained.")]
    na = df[df["status"] == "na"]
    if not na.empty:
        reasons = na["reason"].map(lambda r: one_line(r, limit=400)).value_counts(sort=False)
        blocks += [Paragraph("NA reasons, as recorded:"),
                   BulletList([f"{reason} ({n} cell{'s' if n != 1 else ''})" for reason, n in reasons.items()])]
    return blocks


def _counts_line(df: pd.DataFrame) -> str:
    """How many records, by status, over how many seeds."""
    counts = df["status"].value_counts()
    parts = [f"{counts.get('ok', 0)} ok", f"{counts.get('na', 0)} NA", f"{counts.get('failed', 0)} failed"]
    parts += [f"{n} {s}" for s, n in counts.items() if s not in ("ok", "na", "failed")]
    seeds = df["seed"].nunique()
    return f"**Cells:** {len(df)} records ({', '.join(parts)}) over {seeds} seed{'s' if seeds != 1 else ''}."


def _reference_line(suite: str, reference: str | None) -> list[Block]:
    """A synthetic twin of a seed study says, in one line, that it reproduces no published number."""
    study = None if reference else twin_of(suite)
    if study is None:
        return []
    return [Paragraph(f"**Published numbers:** none. `{suite}` is the synthetic twin of `{study}`: it reproduces no "
                      f"published number, so nothing here is compared with the paper (the real suite `{study}` is).")]


def _stale_line(stale: int) -> list[Block]:
    """How many records of the results folder were left out as stale; nothing when none was."""
    if not stale:
        return []
    return [Paragraph(f"**Stale records:** {stale} record(s) in the results folder were computed under an earlier "
                      "configuration of this suite (for instance before BatchNorm re-estimation) and are not shown; "
                      "`bench run` of the suite computes the current cells.")]


def _records_tta(records: list[dict]) -> str | None:
    """The test-time augmentation the records were scored with (``config.tta``), or None."""
    return next((str(t) for rec in records if (t := (rec.get("config") or {}).get("tta")) not in (None, "none")),
                None)


def _target_blocks(data: ReportData, target: str) -> list[Block]:
    """The section of one target: its tables, in the order of the module docstring."""
    df = data.df
    sub = df[(df["target"] == target) & (df["transfer"] == "full")]
    return [Heading(f"Target `{target}`"), *auc_blocks(data, target), *sens_spec_blocks(sub, target),
            *gain_blocks(df, data.predictions, target, alpha=ALPHA), *hybrid_blocks(data, target),
            *train_mode_blocks(data, target), *beta_blocks(data, target)]


def _cell_blocks(data: ReportData, suite: str, stale: int, reference: str | None,
                 paper: pd.DataFrame | None) -> list[Block]:
    """Everything the cell records give (non-empty records): all but the title and the SVCCA section."""
    df, records = data.df, data.records
    env = environment_line(records)
    weak = weak_source_line(records)
    blocks = [*_how_to_read(df), Paragraph(_counts_line(df)), *([Paragraph(env)] if env else []),
              *_reference_line(suite, reference), *_stale_line(stale), *([Paragraph(weak)] if weak else [])]
    for target in unique(df["target"]):
        blocks += _target_blocks(data, target)
    if reference:
        blocks += paper_blocks(paper, reference, tta=_records_tta(records))
    return [*blocks, *flagged_blocks(df), *failed_blocks(df)]


def report_paper(data: ReportData, reference: str | None) -> pd.DataFrame | None:
    """The paper-vs-ours frame of the report (with our AUC intervals), or None without a reference study."""
    if not reference:
        return None
    return paper_vs_ours(data.df, data.predictions, reference, intervals={"auc": data.auc_intervals})


def report_blocks(records: list[dict], *, suite: str, svcca_records: list[dict] | None = None,
                  figure: str | None = None, stale: int = 0, reference: str | None = None,
                  data: ReportData | None = None, paper: pd.DataFrame | None = None) -> list[Block]:
    """The suite's report as blocks; the arguments are those of :func:`bench.report.render_report`, plus what a
    caller that renders several outputs computes once: ``data`` (:meth:`ReportData.from_records` of ``records``)
    and ``paper`` (:func:`report_paper` of it).

    Returns:
        The blocks in reading order, beginning with the level-1 heading; a :class:`Note` "No records." follows it
        when there are neither cell nor SVCCA records.
    """
    records = list(records)
    blocks: list[Block] = [Heading(f"Suite `{suite}`: transfer-learning report", level=1)]
    if not records and not svcca_records:
        return [*blocks, Note("No records.")]
    if records:
        data = data if data is not None else ReportData.from_records(records)
        paper = paper if paper is not None or not reference else report_paper(data, reference)
        blocks += _cell_blocks(data, suite, stale, reference, paper)
    if svcca_records:
        blocks += svcca_blocks(svcca_records, figure)
    return blocks
