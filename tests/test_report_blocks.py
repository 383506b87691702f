"""bench.report as a document: typed blocks, one block list, two renderers (Markdown and LaTeX)."""
from __future__ import annotations

import pytest

from bench.analysis.intervals import METRIC_DIRECTION, METRIC_RANGES
from bench.report import HIGHER_IS_BETTER, metric_caption, render_report, render_report_latex
from bench.report.blocks import BulletList, Figure, Heading, Note, Paragraph, Table
from bench.report.document import report_blocks
from bench.report.render_md import markdown, table_or_note
from bench.report.render_tex import latex
from test_report import make_record

BLOCKS = [Heading("Suite `x`", level=1), Heading("Target `t`"), Paragraph("**AUC ↑** (a_b)"),
          BulletList(["one", "two"]),
          Table(["Backbone", "FT 0.1"], [["resnet18", "0.800 ± 0.010 †"]], ["note one", "note two"]),
          Note("No records."), Figure("svcca.png", "Per-layer SVCCA")]


def test_markdown_renders_every_block_kind():
    text = markdown(BLOCKS)
    assert text.startswith("# Suite `x`\n\n## Target `t`\n\n**AUC ↑** (a_b)\n\n- one\n- two\n\n| Backbone ")
    assert "| resnet18   | 0.800 ± 0.010 † |" in text
    assert "note one  \nnote two\n\n_No records._\n\n![Per-layer SVCCA](svcca.png)\n" in text
    assert text.endswith(")\n") and not text.endswith("\n\n")


def test_latex_renders_the_same_blocks():
    text = latex(BLOCKS)
    assert text.startswith(r"\documentclass{article}") and text.endswith("\\end{document}\n")
    assert r"\section*{Suite \texttt{x}}" in text and r"\subsection*{Target \texttt{t}}" in text
    assert r"\textbf{AUC $\uparrow$} (a\_b)" in text
    assert "\\begin{itemize}\n\\item one\n\\item two\n\\end{itemize}" in text
    assert r"0.800 $\pm$ 0.010 $^{\dagger}$" in text and r"\begin{tabular}{lr}" in text
    assert r"{\footnotesize note one\par}" in text and r"\emph{No records.}" in text
    assert r"\includegraphics[width=0.9\linewidth]{svcca.png}" in text


def test_a_note_is_emphasis_in_both_renderers_like_an_emphasised_paragraph():
    note, para = Note("No records for target 'a_b'."), Paragraph("_No records for target 'a_b'._")
    assert markdown([note]) == markdown([para])
    assert latex([note]) == latex([para])
    assert table_or_note(note) == "_No records for target 'a_b'._"


def test_tables_are_immutable_and_take_notes_by_copy():
    table = Table(["A"], [["1"]])
    noted = table.with_notes(["under"])
    assert table.notes == [] and noted.notes == ["under"] and noted.rows is table.rows
    with pytest.raises(AttributeError):
        table.notes = ["x"]


def test_renderers_refuse_what_is_not_a_block():
    with pytest.raises(TypeError, match="not a report block"):
        markdown([("p", "a tuple-tagged block of before")])
    with pytest.raises(TypeError, match="not a report block"):
        latex(["text"])


def test_both_reports_render_one_block_list():
    recs = [make_record(source=s, ft_fraction=f, seed=seed, auc=0.7 + 0.05 * seed)
            for s in ("random", "imagenet") for f in (0.0, 0.1) for seed in range(3)]
    blocks = report_blocks(recs, suite="t")
    assert blocks[0] == Heading("Suite `t`: transfer-learning report", level=1)
    assert render_report(recs, suite="t") == markdown(blocks)
    assert render_report_latex(recs, suite="t") == latex(blocks)
    headings = [b.text for b in blocks if isinstance(b, Heading)]
    assert headings[:2] == ["Suite `t`: transfer-learning report", "Target `synth-inbreast`"]
    assert "Flagged cells" in headings
    assert report_blocks([], suite="e") == [Heading("Suite `e`: transfer-learning report", level=1),
                                            Note("No records.")]


def test_metric_direction_is_declared_once_beside_the_ranges():
    assert set(METRIC_DIRECTION.values()) <= {"higher", "lower"}
    assert set(METRIC_DIRECTION) <= set(METRIC_RANGES)  # every metric with a direction has a known range
    assert HIGHER_IS_BETTER == {m: d == "higher" for m, d in METRIC_DIRECTION.items()}
    assert metric_caption("auc") == "AUC ↑" and metric_caption("beta").endswith(" ↓")
    assert metric_caption("n_eval") == "n_eval"  # no direction, no arrow
