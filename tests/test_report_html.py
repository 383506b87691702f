"""bench.report's HTML page: one self-contained page with the report's tables and figures, from records alone
(fabricated records with stored predictions; nothing is trained). tests/test_report_browser.py opens it."""
from __future__ import annotations

import base64
import re
import zlib
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from bench.records import SCHEMA
from bench.report import render_report, render_report_html, write_report
from bench.report.blocks import Figure, Heading, Note, Paragraph, Table
from bench.report.figures_html import paper_figure
from bench.report.render_html import html_inline, html_page, plain_text

BACKBONES = ("toy_cnn", "toy_wide")
SOURCES = ("random", "imagenet", "synth-ddsm")
FRACTIONS = (0.0, 0.1, 0.2)
TARGETS = ("synth-inbreast", "synth-mias")
SEEDS = (0, 1, 2)
N_IMAGES = 40
SIGNAL = {"random": 0.3, "imagenet": 0.9, "synth-ddsm": 1.5}
NA_REASON = "not applicable: an ImageNet network has a <1000-class> head & no \"benign\" output"


def _record(backbone, source, ft, target, seed, *, transfer="full", status="ok", reason=None) -> dict:
    """A record as the runner writes it, with predictions from which its AUC is recomputed."""
    axes = {"backbone": backbone, "source": source, "ft_fraction": ft, "target": target, "transfer": transfer,
            "train_mode": "default", "seed": seed}
    rec = {"schema": SCHEMA, "suite": "tiny", "cell_id": "-".join(map(str, axes.values())), "status": status,
           "reason": reason, "cell": axes, "config": {**axes}, "metrics": None,
           "predictions": {"image_id": [], "patient_id": [], "label": [], "score": []}, "history": [],
           "timing": {}, "provenance": {"torch": "2.0", "python": "3.11", "device": "cpu", "cpu": "x86",
                                        "torch_threads": 2, "hostname": "ci<box>", "commit": "abc123",
                                        "date": f"2026-01-0{seed + 1}T10:00:00+00:00"}}
    if status != "ok":
        return rec
    rng = np.random.default_rng(zlib.crc32(repr((backbone, source, ft, target, seed, transfer)).encode()))
    labels = np.tile([0, 1], N_IMAGES // 2)
    signal = SIGNAL[source] * (1 + 2 * ft) * (0.8 if transfer == "hybrid" else 1.0)
    scores = signal * labels + rng.normal(size=N_IMAGES)
    from sklearn.metrics import roc_auc_score

    train_acc = None if ft == 0 else 0.95 if source == "synth-ddsm" else 0.8
    val_acc = 0.75
    rec["metrics"] = {"auc": float(roc_auc_score(labels, scores)), "accuracy": val_acc, "f1": 0.6,
                      "sensitivity": 0.6, "specificity": 0.7, "train_acc": train_acc, "val_acc": val_acc,
                      "beta": None if train_acc is None else train_acc / val_acc,
                      "n_finetune": int(ft * 120), "n_eval": N_IMAGES}
    rec["predictions"] = {"image_id": [f"{target}/{i:03d}" for i in range(N_IMAGES)],
                          "patient_id": [f"P{i // 2:03d}" for i in range(N_IMAGES)],
                          "label": labels.tolist(), "score": scores.tolist()}
    return rec


def suite_records() -> list[dict]:
    """A tiny finished suite: 2 backbones x 3 sources x 3 fine-tune shares x 2 targets x 3 seeds (full transfer),
    hybrid cells for the first backbone and target, an NA cell (with "<", "&", quotes in its reason) and a failed
    one."""
    recs = [_record(b, s, f, t, seed) for t in TARGETS for b in BACKBONES for s in SOURCES for f in FRACTIONS
            for seed in SEEDS if not (s == "imagenet" and f == 0.0 and t == "synth-mias")]
    recs += [_record(BACKBONES[0], s, f, TARGETS[0], seed, transfer="hybrid") for s in SOURCES for f in FRACTIONS[1:]
             for seed in SEEDS]
    recs.append(_record(BACKBONES[0], "imagenet", 0.0, TARGETS[1], 0, status="na", reason=NA_REASON))
    recs.append(_record(BACKBONES[1], "imagenet", 0.0, TARGETS[1], 0, status="failed",
                        reason="Traceback (most recent call last):\nRuntimeError: out of <memory>"))
    return recs


def svcca_records() -> list[dict]:
    """SVCCA runs of the suite (two seeds per target), as :mod:`bench.runner.svcca` writes them."""
    layers = ("conv1", "block1", "block2", "block3", "block4")
    return [{"analysis_id": f"svcca-{t}-{seed}", "status": "ok", "reason": None,
             "job": {"backbone": BACKBONES[0], "source": "synth-ddsm", "target": t, "seed": seed},
             "config": {"ft_share": 0.2, "keep": 0.99, "rule": "variance", "pooling": "mean"},
             "layers": [{"layer": name, "module": name, "neurons": 16, "datapoints": 200,
                         "finetuned": {"svcca": 0.95 - 0.1 * i - 0.02 * seed - 0.05 * j},
                         "bn_only": {"svcca": 0.98 - 0.03 * i - 0.01 * seed}} for i, name in enumerate(layers)]}
            for j, t in enumerate(TARGETS) for seed in (0, 1)]


DESCRIPTION = "a tiny suite <script>alert('x')</script> & friends"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return suite_records()


@pytest.fixture(scope="module")
def page(records) -> str:
    return render_report_html(records, suite="tiny", description=DESCRIPTION)


@pytest.fixture(scope="module")
def report_md(records) -> str:
    return render_report(records, suite="tiny")


class _Page(HTMLParser):
    """The tables of ``<main>`` (rows of cell texts, header first), the images by figure, every src/href."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.figures: dict[str, str] = {}
        self.links: list[str] = []
        self._in_main = self._cell = False
        self._figure = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "main":
            self._in_main = True
        elif tag == "table" and self._in_main and "data-report-table" in a:
            self.tables.append([])
        elif tag == "tr" and self._in_main and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self._in_main and self.tables:
            self._cell = True
            self.tables[-1][-1].append("")
        elif tag == "figure":
            self._figure = a.get("data-figure")
        elif tag == "img" and self._figure:
            self.figures[self._figure] = a.get("src", "")

    def handle_endtag(self, tag):
        if tag == "main":
            self._in_main = False
        elif tag in ("td", "th"):
            self._cell = False
        elif tag == "figure":
            self._figure = None

    def handle_data(self, data):
        if self._cell:
            self.tables[-1][-1][-1] += data


def parse_page(text: str) -> _Page:
    parser = _Page()
    parser.feed(text)
    return parser


def markdown_tables(markdown: str) -> list[list[list[str]]]:
    """Every GitHub Markdown table of a report (header first, separator dropped), cells as the page shows them."""
    tables, current = [], None
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            row = [plain_text(c.strip()) for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            if current is None:
                current = []
            if not re.fullmatch(r"\|[-|: ]+\|", line.strip()):
                current.append(row)
        elif current is not None:
            tables.append(current)
            current = None
    return tables


def test_every_table_of_report_md_is_a_table_of_the_page_with_the_same_cells(records, page, report_md):
    expected = markdown_tables(report_md)
    shown = [[[c.strip() for c in row] for row in table] for table in parse_page(page).tables]
    assert len(expected) >= 10
    assert shown == expected
    assert len(shown) == report_md.count("\n|--")  # every table, none twice


def test_the_page_refers_to_nothing_outside_it(page):
    parsed = parse_page(page)
    assert not [u for u in parsed.links if not (u.startswith("data:") or u.startswith("#"))], parsed.links
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", page) and "@import" not in page and "<link" not in page
    for uri in parsed.figures.values():  # the SVGs: only internal references (#id)
        svg = base64.b64decode(uri.split(",", 1)[1]).decode()
        assert not re.search(r"""(?:xlink:)?href\s*=\s*["'](?!#)""", svg)
        assert not re.search(r"url\(\s*['\"]?(?!#)", svg)


def test_auc_against_fine_tune_share_per_target_with_a_panel_per_backbone(page):
    figures = parse_page(page).figures
    auc = [path for path in figures if path.startswith("figures/auc-share-")]
    assert len(auc) == len(TARGETS)
    for path in auc:
        assert figures[path].startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(figures[path].split(",", 1)[1]).decode()
        assert "<svg" in svg and all(f"<!-- {b} -->" in svg for b in BACKBONES)  # panel titles
        assert "<!-- Random init -->" in svg and "<!-- synth-ddsm -->" in svg  # one line per source
    for kind in ("source-gain", "beta"):
        assert sum(p.startswith(f"figures/{kind}-") for p in figures) == len(TARGETS)
    assert sum(p.startswith("figures/hybrid-") for p in figures) == 1  # hybrid cells for one target only
    assert page.index('id="figures"') < page.index(">Target <code>synth-inbreast</code></h2>")


def test_header_says_suite_description_when_where_counts_and_image_counts(records, page):
    header = page[page.index("<header"):page.index("</header>")]
    assert "<code>tiny</code>" in header and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in header
    assert "2026-01-01 10:00 to 2026-01-03 10:00" in header and "<code>ci&lt;box&gt;</code>" in header
    n_ok = sum(r["status"] == "ok" for r in records)
    assert f"{len(records)} records: {n_ok} ok, 1 NA, 1 failed; seeds 0, 1, 2." in header
    assert "Evaluation images" in header and "<td class=\"num\">40</td>" in header
    assert "Training:" not in header  # these records carry no training settings: no line rather than a guess


def test_header_gives_the_training_settings_in_brief_from_the_records():
    recs = suite_records()
    for rec in recs:
        rec["config"]["image_size"] = 64
        if rec["cell"]["ft_fraction"] > 0:  # a per-backbone rate for the second backbone
            lr = 1e-4 if rec["cell"]["backbone"] == BACKBONES[1] else 3e-4
            rec["config"]["finetune"] = {"epochs": 3, "lr": lr, "batch_size": 16, "bn_recalibrate": True}
        if rec["cell"]["source"] == "synth-ddsm":
            rec["config"]["pretrain"] = {"epochs": 5, "lr": 1e-3, "batch_size": 32, "val_fraction": 0.1,
                                         "source_data": {"n_images": 1000}}
    header = render_report_html(recs, suite="tiny")
    header = header[header.index("<header"):header.index("</header>")]
    assert ("<strong>Training:</strong> images of 64 px; fine-tuning: epochs 3, lr 0.0003 / 0.0001, batch 16, "
            "BatchNorm statistics re-estimated; source pre-training: epochs 5, lr 0.001, batch 32 on 1000 source "
            "images, 0.1 of them held out") in header


def test_escaping_keeps_the_page_whole(page):
    assert page.count("<script") == 1 and "alert('x')</script>" not in page
    assert "&lt;1000-class&gt; head &amp; no &quot;benign&quot; output" in page
    assert "out of &lt;memory&gt;" in page
    assert html_inline("a < b & `x<y>` **c** _d_ efficientnet_lite0 *e*") == (
        "a &lt; b &amp; <code>x&lt;y&gt;</code> <strong>c</strong> <em>d</em> efficientnet_lite0 <em>e</em>")


def test_figures_that_the_data_cannot_give_are_left_out():
    only_no_ft = [_record("toy_cnn", s, 0.0, "synth-inbreast", seed) for s in ("imagenet", "synth-ddsm")
                  for seed in SEEDS]
    figures = parse_page(render_report_html(only_no_ft, suite="small")).figures
    # no random init, no hybrid, no fine-tuning: no ΔAUC, no hybrid figure, no β; the ROC curves of the No FT cells
    assert list(figures) == ["figures/auc-share-0.svg", "figures/roc-0.svg"]
    no_preds = [{**r, "predictions": {"image_id": [], "patient_id": [], "label": [], "score": []}} for r in only_no_ft]
    assert "figures/roc-0.svg" not in parse_page(render_report_html(no_preds, suite="small")).figures
    failed = [_record("toy_cnn", "random", 0.1, "synth-inbreast", 0, status="failed", reason="boom")]
    text = render_report_html(failed, suite="broken")
    assert 'id="figures"' not in text and "<table" in text and text.endswith("</html>\n")
    assert "No records." in render_report_html([], suite="empty")


def test_html_page_renders_every_block_kind_and_embeds_given_figures():
    blocks = [Heading("A `b`"), Paragraph("**x** < y"), Note("nothing"), Table(["Backbone", "AUC"], [["r", "0.5"],
                                                                                                  ["", "0.6"]],
                                                                             ["a note"]),
              Figure("f.png", "caption"), Figure("g.svg", "inline"), Figure("missing.png", "not given")]
    text = html_page(blocks, title="T <1>", figures={"f.png": "data:image/png;base64,AAAA",
                                                      "g.svg": "<svg width='1' height='1'></svg>"})
    assert "<title>T &lt;1&gt;</title>" in text and '<h2 id="a-b">A <code>b</code></h2>' in text
    assert '<td class="short" data-carry="r"></td><td class="num">0.6</td>' in text
    assert '<div class="table-notes"><p>a note' in text
    assert '<img src="data:image/png;base64,AAAA" alt="caption">' in text and "<svg width='1'" in text
    assert "missing.png is not embedded" in text and 'src="missing.png"' not in text
    with pytest.raises(TypeError, match="not a report block"):
        html_page(["text"], title="t")


def test_write_report_writes_index_html_beside_an_unchanged_report_md(records, page, report_md, tmp_path):
    """report.md is render_report's, as before; index.html is the page again, byte for byte (figures included:
    fixed SVG hash salt, no date)."""
    path = write_report(records, tmp_path / "tiny", suite="tiny", description=DESCRIPTION)
    assert path.read_text() == report_md
    assert (tmp_path / "tiny" / "index.html").read_text(encoding="utf-8") == page


def test_the_svcca_figure_is_embedded_where_report_md_links_it(tmp_path):
    recs = suite_records()[:27]
    write_report(recs, tmp_path, suite="tiny", svcca_records=svcca_records())
    assert "![Per-layer SVCCA similarity, one line per target](svcca.png)" in (tmp_path / "report.md").read_text()
    png = (tmp_path / "svcca.png").read_bytes()
    figures = parse_page((tmp_path / "index.html").read_text(encoding="utf-8")).figures
    assert figures["svcca.png"] == "data:image/png;base64," + base64.b64encode(png).decode()


def test_paper_vs_ours_on_the_diagonal_skips_values_without_a_number():
    frame = pd.DataFrame({"ours_metric": ["auc", "auc", "accuracy"], "paper": [0.8, np.nan, 0.7],
                          "ours": [0.75, 0.6, np.nan], "low": [0.7, 0.5, np.nan], "high": [0.8, 0.7, np.nan]})
    svg = base64.b64decode(paper_figure(frame).split(",", 1)[1]).decode()
    assert "<!-- Paper vs ours -->" in svg and "<!-- auc -->" in svg and "<!-- accuracy -->" not in svg
    assert paper_figure(frame.iloc[1:]) is None and paper_figure(frame.iloc[:0]) is None


def test_a_suite_with_a_reference_gets_paper_vs_ours():
    recs = [_record("vgg16", s, f, "inbreast", seed) for s in ("random", "imagenet") for f in FRACTIONS
            for seed in SEEDS]
    text = render_report_html(recs, suite="paper", reference="bulathsinghalage-liu")
    header = text[text.index("<header"):text.index("</header>")]
    summary = re.search(r"<strong>Paper vs ours \(every published metric; tables below\):</strong> (\d+) of (\d+) cells "
                        r"agree within our 95 % interval", header)
    assert summary and 0 < int(summary.group(2)) and int(summary.group(1)) <= int(summary.group(2)), header
    assert "Paper vs ours" not in render_report_html(recs, suite="paper").split("</header>")[0]
    figures = parse_page(text).figures
    assert "figures/paper-vs-ours.svg" in figures and "figures/auc-share-0.svg" in figures
    assert [len(t) for t in parse_page(text).tables] == [len(t) for t in
                                                         markdown_tables(render_report(recs, suite="paper",
                                                                                       reference="bulathsinghalage-liu"))]


def test_figures_do_not_depend_on_styles_set_elsewhere_in_the_process():
    """seaborn's theme (set by the SVCCA figure) changes global settings: the page's figures ignore them."""
    import matplotlib
    import seaborn as sns

    from bench.report.figures_html import auc_share_figure
    from bench.report.frames import ReportData

    data = ReportData.from_records([_record("toy_cnn", s, f, "synth-inbreast", seed) for s in ("random", "imagenet")
                                    for f in FRACTIONS for seed in SEEDS])
    before = auc_share_figure(data, "synth-inbreast")
    try:
        sns.set_theme(style="darkgrid", font_scale=1.7)
        assert auc_share_figure(data, "synth-inbreast") == before
    finally:
        matplotlib.rcdefaults()


def test_roc_curves_of_the_largest_share_one_panel_per_source_each_seed_a_curve(records, page):
    figures = parse_page(page).figures
    assert sorted(p for p in figures if p.startswith("figures/roc-")) == [f"figures/roc-{i}.svg" for i in range(len(TARGETS))]
    svg = base64.b64decode(figures["figures/roc-0.svg"].split(",", 1)[1]).decode()
    assert f"{TARGETS[0]}: {BACKBONES[0]}, FT {max(FRACTIONS):g}, full transfer" in svg.replace("&#8203;", "")
    assert all(f"<!-- {label} -->" in svg for label in ("Random init", "ImageNet", "synth-ddsm"))
    for seed in SEEDS:  # each seed's curve, labelled with the AUC the record's predictions give
        rec = next(r for r in records if r["cell"] == {"backbone": BACKBONES[0], "source": "synth-ddsm",
                                                        "ft_fraction": max(FRACTIONS), "target": TARGETS[0],
                                                        "transfer": "full", "train_mode": "default", "seed": seed})
        assert f"<!-- seed {seed}: AUC {rec['metrics']['auc']:.3f} -->" in svg


def test_roc_with_many_seeds_draws_ten_curves_and_gives_the_auc_range_in_one_entry():
    seeds = range(12)
    recs = [_record("toy_cnn", s, 0.2, "synth-inbreast", seed) for s in ("random", "synth-ddsm") for seed in seeds]
    svg = base64.b64decode(parse_page(render_report_html(recs, suite="many")).figures["figures/roc-0.svg"]
                           .split(",", 1)[1]).decode()
    aucs = [r["metrics"]["auc"] for r in recs if r["cell"]["source"] == "synth-ddsm"]
    assert f"<!-- 12 seeds, 10 drawn: AUC {min(aucs):.3f}–{max(aucs):.3f} -->" in svg
    assert "<!-- seed 0: AUC" not in svg  # no entry per seed
