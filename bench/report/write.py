"""The report's outputs: the block list of :func:`bench.report.document.report_blocks` rendered as Markdown and as
LaTeX, and the report folder written to disk (the package's only file I/O besides the figures)."""
from __future__ import annotations

from pathlib import Path

from bench.report.document import report_blocks
from bench.report.figures import svcca_figure
from bench.report.frames import predictions_frame, records_frame, svcca_frame
from bench.report.paper import paper_vs_ours
from bench.report.render_md import markdown
from bench.report.render_tex import latex

__all__ = ["render_report", "render_report_latex", "write_report"]


def render_report(records: list[dict], *, suite: str, svcca_records: list[dict] | None = None,
                  figure: str | None = None, stale: int = 0, reference: str | None = None) -> str:
    """The suite's Markdown report: per target, Table-1-style AUC, full-vs-hybrid, beta; then SVCCA.

    Args:
        records: the suite's cell records (see :mod:`bench.records`); their order sets backbone and target order.
        suite: suite name, used in the title.
        svcca_records: the suite's SVCCA records (:mod:`bench.runner.svcca`), if any.
        figure: path of the SVCCA figure relative to the report, to link (see
            :func:`bench.report.figures.svcca_figure`).
        stale: how many records of the results folder were left out as stale (said in the report).
        reference: the study the suite reproduces (its ``reference:``, :mod:`bench.references`): adds the
            paper-vs-ours tables (:mod:`bench.report.paper`).

    Returns:
        A Markdown document ending with a newline.
    """
    return markdown(report_blocks(records, suite=suite, svcca_records=svcca_records, figure=figure, stale=stale,
                                  reference=reference))


def render_report_latex(records: list[dict], *, suite: str, svcca_records: list[dict] | None = None,
                        figure: str | None = None, stale: int = 0, reference: str | None = None) -> str:
    """The same report as :func:`render_report` as a standalone LaTeX document (booktabs tables).

    Both render the same blocks, so both show the same numbers; "±", "†" and "‡" become ``$\\pm$``,
    ``$^{\\dagger}$`` and ``$^{\\ddagger}$``. Compiles with pdflatex (packages booktabs, graphicx).
    """
    return latex(report_blocks(records, suite=suite, svcca_records=svcca_records, figure=figure, stale=stale,
                               reference=reference))


def write_report(records: list[dict], out: str | Path, *, suite: str, svcca_records: list[dict] | None = None,
                 stale: int = 0, reference: str | None = None) -> Path:
    """Write the report folder: ``report.md``, ``report.tex``, ``cells.csv``; with SVCCA records also
    ``svcca.png`` (the figure) and ``svcca.csv`` (one row per run x layer x network); with a ``reference`` study
    also ``paper_vs_ours.csv`` (one row per published value, :func:`bench.report.paper.paper_vs_ours`). Returns
    the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figure = None
    frame = svcca_frame(svcca_records or [])
    if not frame.empty:
        svcca_figure(frame, out / "svcca.png")
        frame.to_csv(out / "svcca.csv", index=False)
        figure = "svcca.png"
    (out / "report.md").write_text(render_report(records, suite=suite, svcca_records=svcca_records, figure=figure,
                                                 stale=stale, reference=reference))
    (out / "report.tex").write_text(render_report_latex(records, suite=suite, svcca_records=svcca_records,
                                                        figure=figure, stale=stale, reference=reference))
    df = records_frame(records)
    df.to_csv(out / "cells.csv", index=False)
    if reference:
        paper_vs_ours(df, predictions_frame(records), reference).to_csv(out / "paper_vs_ours.csv", index=False)
    return out / "report.md"
