"""The report's outputs: the block list of :func:`bench.report.document.report_blocks` rendered as Markdown, as
LaTeX and as one self-contained HTML page (header, figures, then the same blocks), and the report folder written
to disk (the package's only file I/O besides the figures)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report.blocks import Block, Heading, Paragraph, Table
from bench.report.document import report_blocks, report_paper
from bench.report.figures import svcca_figure
from bench.report.figures_html import data_uri, figure_blocks
from bench.report.frames import ReportData, predictions_frame, records_frame, svcca_frame
from bench.report.paper import agreement, paper_vs_ours
from bench.report.render_html import html_page
from bench.report.render_md import markdown
from bench.report.render_tex import latex
from bench.report.table import fraction_label, unique

__all__ = ["header_blocks", "render_report", "render_report_html", "render_report_latex", "write_report"]


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


def _span(values: pd.Series) -> str:
    """Distinct finite counts as text: "48", "24–36", "—" when none."""
    v = sorted({int(x) for x in values.dropna()})
    return "—" if not v else f"{v[0]}" if len(v) == 1 else f"{v[0]}–{v[-1]}"


def _ran_line(records: list[dict]) -> str | None:
    """When, where and from which commit the records were computed (their provenance); None when none says."""
    prov = [r.get("provenance") or {} for r in records if r.get("status") == "ok"]
    dates = sorted(str(p["date"]) for p in prov if p.get("date"))
    if not dates:
        return None
    hosts = ", ".join(f"`{h}`" for h in dict.fromkeys(str(p.get("hostname")) for p in prov if p.get("hostname")))
    devices = ", ".join(dict.fromkeys(str(p.get("device")) for p in prov if p.get("device")))
    commits = ", ".join(f"`{str(p['commit'])[:10]}`" + (" (uncommitted changes)" if p.get("dirty") else "")
                        for p in {str(p.get("commit")): p for p in prov if p.get("commit")}.values())
    when = dates[0][:16].replace("T", " ") + ("" if dates[0][:16] == dates[-1][:16]
                                              else " to " + dates[-1][:16].replace("T", " "))
    return (f"**Ran:** {when} (UTC)" + (f" on {hosts}" if hosts else "") + (f" ({devices})" if devices else "")
            + (f"; bench commit {commits}" if commits else "") + ".")


def _values(items, key: str) -> str:
    """The distinct values of ``key`` over the dicts ``items``, in first-seen order, joined by " / " (several where
    ``per_backbone`` settings differ)."""
    seen = dict.fromkeys(f"{v:g}" if isinstance(v, float) else str(v) for v in (i.get(key) for i in items)
                         if v is not None)
    return " / ".join(seen)


def _training_line(records: list[dict]) -> str | None:
    """The training settings in brief, from the ok records' configs: image size, fine-tuning (epochs, rate, batch;
    a schedule's name or stage count) and source pre-training (the same, and how many source images)."""
    cfgs = [r.get("config") or {} for r in records if r.get("status") == "ok"]
    if not cfgs:
        return None
    sizes = _values(cfgs, "image_size")
    parts = [f"images of {sizes} px"] if sizes else []
    fts = [c["finetune"] for c in cfgs if c.get("finetune") and (c.get("ft_fraction") or 0) > 0]
    if fts:
        schedules = [f["schedule"] for f in fts if f.get("schedule")]
        names = dict.fromkeys(s if isinstance(s, str) else f"{len(s)} stage{'s' if len(s) != 1 else ''}"
                              for s in schedules)
        plan = f"schedule {' / '.join(names)}" if schedules else f"epochs {_values(fts, 'epochs')}, lr {_values(fts, 'lr')}"
        parts.append(f"fine-tuning: {plan}, batch {_values(fts, 'batch_size')}"
                     + (", BatchNorm statistics re-estimated" if any(f.get("bn_recalibrate") for f in fts) else ""))
    pres = [c["pretrain"] for c in cfgs if c.get("pretrain")]
    if pres:
        sources = [dict(p.get("source_data") or {}) for p in pres]
        parts.append(f"source pre-training: epochs {_values(pres, 'epochs')}, lr {_values(pres, 'lr')}, batch "
                     f"{_values(pres, 'batch_size')}"
                     + (f" on {_values(sources, 'n_images')} source images" if any("n_images" in d for d in sources)
                        else "")
                     + (f", {_values(pres, 'val_fraction')} of them held out" if any(p.get("val_fraction") for p in pres)
                        else ""))
    if not parts:
        return None
    return "**Training:** " + "; ".join(parts) + " (AdamW; the suite file and each record's `config` give the rest)."


def header_blocks(records: list[dict], *, suite: str, description: str | None = None,
                  df: pd.DataFrame | None = None, paper: pd.DataFrame | None = None) -> list[Block]:
    """The HTML page's header: suite and description, when and where it ran, the training settings in brief, the
    paper-vs-ours agreement (with ``paper``, :func:`bench.report.paper.paper_vs_ours`), cells by status and seeds,
    and the evaluation and fine-tune image counts per target and fine-tune share (``n_eval``, ``n_finetune``, over
    sources, backbones and seeds)."""
    blocks: list[Block] = [Paragraph(f"**Suite:** `{suite}`" + (f": {description}" if description else ""))]
    if not records:
        return blocks
    df = records_frame(records) if df is None else df
    ran = _ran_line(records)
    counts = df["status"].value_counts()
    seeds = ", ".join(str(s) for s in sorted(unique(df["seed"]), key=str))
    training = _training_line(records)
    summary = [Paragraph(agreement(paper, "Paper vs ours (every published metric; tables below)"))] \
        if paper is not None and not paper.empty else []
    blocks += [*([Paragraph(ran)] if ran else []), *([Paragraph(training)] if training else []), *summary,
               Paragraph(f"**Cells:** {len(df)} records: {counts.get('ok', 0)} ok, {counts.get('na', 0)} NA, "
                         f"{counts.get('failed', 0)} failed; seeds {seeds}.")]
    ok = df[df["status"] == "ok"]
    if not ok.empty:
        rows = [[str(t) if i == 0 else "", fraction_label(f), _span(g["n_eval"]), _span(g["n_finetune"])]
                for t in unique(ok["target"])
                for i, (f, g) in enumerate(ok[ok["target"] == t].groupby("ft_fraction", sort=True))]
        blocks.append(Table(["Target", "Fine-tune share", "Evaluation images", "Fine-tune images"], rows,
                            ["Images per cell, from the records (a range where sources, backbones or seeds differ)."]))
    return blocks


def render_report_html(records: list[dict], *, suite: str, svcca_records: list[dict] | None = None,
                       figure: str | None = None, stale: int = 0, reference: str | None = None,
                       description: str | None = None, images: dict[str, str] | None = None) -> str:
    """The same report as :func:`render_report` as one self-contained HTML page: a header
    (:func:`header_blocks`), the figures (:func:`bench.report.figures_html.figure_blocks`, drawn from the frames
    the tables read), then the report's blocks, with every table a sortable ``<table>`` of the same cell texts.

    Args:
        description: the suite's description, shown in the header.
        images: more images by ``Figure.path`` (e.g. the SVCCA figure as a ``data:`` URI under ``figure``); a
            figure without one shows its caption only.
        The others: as for :func:`render_report`.
    """
    data = ReportData.from_records(list(records)) if records else None
    paper = report_paper(data, reference) if data is not None else None
    blocks = report_blocks(records, suite=suite, svcca_records=svcca_records, figure=figure, stale=stale,
                           reference=reference, data=data, paper=paper)
    return _html(blocks, data, paper, suite=suite, description=description, images=images)


def _html(blocks: list[Block], data: ReportData | None, paper: pd.DataFrame | None, *, suite: str,
          description: str | None, images: dict[str, str] | None) -> str:
    """The page of :func:`render_report_html` from the report's blocks and statistics (computed once for all
    renderers)."""
    title = blocks[0].text if blocks and isinstance(blocks[0], Heading) else f"Suite `{suite}`"
    body, pictures = list(blocks[1:] if blocks and isinstance(blocks[0], Heading) else blocks), dict(images or {})
    if data is not None:
        figs, drawn = figure_blocks(data, paper=paper)
        if figs:
            body = [Heading("Figures"), *figs, *body]
            pictures.update(drawn)
    records = data.records if data is not None else []
    return html_page(body, title=title, figures=pictures,
                     header=header_blocks(records, suite=suite, description=description,
                                          df=data.df if data is not None else None, paper=paper))


def write_report(records: list[dict], out: str | Path, *, suite: str, svcca_records: list[dict] | None = None,
                 stale: int = 0, reference: str | None = None, description: str | None = None) -> Path:
    """Write the report folder: ``report.md``, ``report.tex``, ``index.html`` (:func:`render_report_html`: the
    same tables, the figures inline, self-contained), ``cells.csv``; with SVCCA records also
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
    records = list(records)
    data = ReportData.from_records(records) if records else None  # once, for the three renderers and the CSVs
    paper = report_paper(data, reference) if data is not None else None
    blocks = report_blocks(records, suite=suite, svcca_records=svcca_records, figure=figure, stale=stale,
                           reference=reference, data=data, paper=paper)
    (out / "report.md").write_text(markdown(blocks))
    (out / "report.tex").write_text(latex(blocks))
    images = {figure: data_uri((out / figure).read_bytes(), "image/png")} if figure else None
    (out / "index.html").write_text(_html(blocks, data, paper, suite=suite, description=description, images=images),
                                    encoding="utf-8")
    df = data.df if data is not None else records_frame(records)
    df.to_csv(out / "cells.csv", index=False)
    if reference:
        paper_vs_ours(df, data.predictions if data is not None else predictions_frame(records),
                      reference).to_csv(out / "paper_vs_ours.csv", index=False)
    return out / "report.md"
