"""The seed studies' published numbers (bench.references), `bench references`, the suites' `reference:` field and the
reports' paper-vs-ours tables (fast: nothing is trained)."""
from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.cli import main
from bench.records import MANIFEST, SCHEMA
from bench.references import COLUMNS, METRICS, OURS, load_references, studies, table_notes, twin_of
from bench.report import render_report, render_report_latex
from bench.suite import SuiteError, build_suite, load_suite

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"
TEXTS = {"bulathsinghalage-liu": "bulathsinghalage-liu-pretraining-dataset-effect.txt",
         "falconi": "falconi-tl-ft-cbis-ddsm.txt", "shen": "shen-end2end-screening-mammography.txt",
         "wei-morphhr": "wei-morphhr-function-preserving.txt"}
STUDIES = list(TEXTS)
AXES = ("backbone", "source", "ft_fraction", "target", "transfer", "train_mode")


def _rows(study: str, **match) -> list[dict]:
    return [r for r in load_references(study) if all(r[k] == v for k, v in match.items())]


def _value(study: str, **match) -> float | None:
    rows = _rows(study, **match)
    assert len(rows) == 1, (match, rows)
    return rows[0]["value"]


def _counts(study: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in load_references(study):
        out[r["table"]] = out.get(r["table"], 0) + 1
    return out


# --------------------------------------------------------------------------- the numbers

def test_the_four_studies_are_shipped_with_the_row_schema():
    assert studies() == sorted(STUDIES)
    for study in STUDIES:
        rows = load_references(study)
        assert rows and all(tuple(r) == COLUMNS for r in rows)
        assert all(r["study"] == study and r["metric"] in METRICS for r in rows)
        assert all(isinstance(r["ft_fraction"], (int, float)) for r in rows)
        keys = [(r["table"], *(r[a] for a in AXES), r["metric"]) for r in rows]
        assert len(keys) == len(set(keys)), f"{study}: a value is given twice"
    assert set(OURS) == set(METRICS)


def test_bulathsinghalage_liu_holds_all_of_tables_1_to_4():
    # Tables 1-3: 4 backbones x 3 sources x 3 columns, minus the patch-based CNN's ImageNet row the paper does not
    # print (33 each, 3 of them the paper's NA); Table 4: 3 targets x 3 sources x 2 fractions x (all, hybrid).
    assert _counts("bulathsinghalage-liu") == {"1": 33, "2": 33, "3": 33, "4": 36}
    rows = load_references("bulathsinghalage-liu")
    na = [r for r in rows if r["value"] is None]
    assert len(na) == 9 and {(r["source"], r["ft_fraction"]) for r in na} == {("imagenet", 0)}
    assert {r["backbone"] for r in na} == {"vgg16", "resnet50", "inception_v3"}
    assert {"study": "bulathsinghalage-liu", "table": "1", "backbone": "vgg16", "source": "random", "ft_fraction": 0,
            "target": "inbreast", "transfer": "full", "train_mode": "default", "metric": "auc", "value": 0.34} in rows
    b = "bulathsinghalage-liu"
    assert _value(b, table="1", backbone="resnet50", source="random", ft_fraction=0) == 0.244
    assert _value(b, table="1", backbone="patch_cnn", source="cbis-ddsm", ft_fraction=0.2) == 0.871
    assert _value(b, table="2", backbone="inception_v3", source="random", ft_fraction=0) == 0.181
    assert _value(b, table="2", backbone="patch_cnn", source="cbis-ddsm", ft_fraction=0.2) == 0.760
    assert _value(b, table="3", backbone="vgg16", source="cbis-ddsm", ft_fraction=0) == 0.405
    assert _value(b, table="3", backbone="inception_v3", source="imagenet", ft_fraction=0.1) == 0.687
    assert _value(b, table="3", backbone="inception_v3", source="imagenet", ft_fraction=0) is None
    assert _value(b, table="4", target="rodrigues-us", source="imagenet", ft_fraction=0.2, transfer="hybrid") == 0.986
    assert _value(b, table="4", target="inbreast", source="imagenet", ft_fraction=0.1, transfer="hybrid") == 0.772
    assert _value(b, table="4", target="mias", source="cbis-ddsm", ft_fraction=0.2, transfer="hybrid") == 0.892
    # Table 4 names no backbone; its "all weights" side is exactly the ResNet-50 rows of Tables 1-3
    table4 = [r for r in rows if r["table"] == "4"]
    assert {r["backbone"] for r in table4} == {"resnet50"}
    for r in table4:
        if r["transfer"] == "full":
            same = [o for o in rows if o["table"] in "123" and o["backbone"] == "resnet50"
                    and all(o[k] == r[k] for k in ("source", "ft_fraction", "target"))]
            assert [o["value"] for o in same] == [r["value"]], r
    printed = {(r["table"], r["backbone"], r["source"], r["ft_fraction"], r["target"]): r["value"]
               for r in load_references(b, printed=True) if r["transfer"] == "full"}
    assert printed[("1", "vgg16", "random", 0, "inbreast")] == "0.340"  # as printed, trailing zero kept
    assert printed[("1", "vgg16", "imagenet", 0, "inbreast")] == "NA"


def test_falconi_shen_and_wei_hold_their_tables():
    assert _counts("falconi") == {"7": 19, "8": 57, "9": 7, "10": 9}
    f = "falconi"
    assert _value(f, table="7", backbone="resnet50", metric="falconi_auc") == 0.861
    assert _value(f, table="7", backbone="timm:densenet121") == 0.79
    assert _value(f, table="7", backbone="timm:nasnetalarge") == 0.804  # printed "nasnet-1-TL"
    assert _value(f, table="8", backbone="inception_v3", metric="beta") == 1.27
    assert _value(f, table="8", backbone="timm:inception_resnet_v2", metric="train_acc") == 0.90
    assert _value(f, table="8", backbone="timm:vgg19_bn", metric="test_acc") == 0.63
    assert _value(f, table="9", backbone="vgg16", train_mode="ft-block2-fc") == 0.844  # VGG16-8-FT
    assert _value(f, table="9", backbone="vgg16", train_mode="ft") == 0.816  # VGG16-10-FT
    assert _value(f, table="9", backbone="timm:legacy_xception", train_mode="ft-block4") == 0.571  # best gamma
    assert _value(f, table="10", backbone="vgg16", train_mode="ft", metric="train_acc") == 0.87
    assert _value(f, table="10", backbone="vgg16", train_mode="ft-block2-fc", metric="beta") == 1.09
    assert _value(f, table="10", backbone="timm:vgg19_bn", train_mode="ft-block4", metric="test_acc") == 0.77
    assert {r["metric"] for r in _rows(f, table="7")} == {"falconi_auc"}  # their eq. 13, never "auc"
    assert {r["train_mode"] for r in _rows(f, table="8")} == {"tl"}
    shen = {r["ft_fraction"]: r["value"] for r in load_references("shen")}
    assert shen == {20: 0.88, 30: 0.94, 40: 0.95, 50: 0.95, 60: 0.95, 0.7: 0.95}  # Table 4, Resnet-VGG column
    assert {(r["table"], r["metric"], r["backbone"]) for r in load_references("shen")} == {("4", "auc", "patch_cnn")}
    wei = {r["backbone"]: r["value"] for r in load_references("wei-morphhr")}
    assert wei == {"resnet18": 0.7815, "morphhr": 0.825}  # Table I, S224 rows, Val (1-crop), per cent -> fraction


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed texts are not next to this checkout")
@pytest.mark.parametrize("study", STUDIES)
def test_every_value_is_printed_in_the_paper(study):
    """Each stored value, as printed, occurs in its paper's text (Wei: in per cent), and every table is located."""
    text = (SEEDS / TEXTS[study]).read_text()
    tokens = set(re.findall(r"\d+\.\d+|NA", text))
    for r in load_references(study, printed=True):
        value = r["value"]
        if study == "wei-morphhr":
            value = f"{value[2:4]}.{value[4:]}"  # 0.7815 -> 78.15
        assert value in tokens, r
    notes = table_notes(study)
    assert set(notes) == {r["table"] for r in load_references(study)} and all(notes.values())


@pytest.mark.parametrize("study", STUDIES)
def test_every_reference_row_is_a_cell_of_its_suite(study):
    suite = load_suite(study)
    cells = {}
    for c in suite.cells:
        cells[(c.backbone, c.source, c.ft_fraction, c.target, c.transfer, c.train_mode)] = c
    for r in load_references(study):
        key = (r["backbone"], r["source"], float(r["ft_fraction"]), r["target"], r["transfer"], r["train_mode"])
        assert key in cells, f"{study}: {r} is no cell of suites/{study}.yaml"
        if r["value"] is not None:  # a published number maps on a cell that runs; the paper's NA may be NA here
            assert cells[key].na_reason is None, (r, cells[key].na_reason)


def test_pyproject_ships_the_csv_files_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.csv" in config["tool"]["setuptools"]["package-data"]["bench.references"]
    folder = ROOT / "bench" / "references"
    assert sorted(p.stem for p in folder.glob("*.csv")) == sorted(STUDIES)
    with open(folder / "bulathsinghalage-liu.csv", newline="") as fh:
        body = [row for row in csv.reader(line for line in fh if not line.startswith("#"))]
    assert tuple(body[0]) == COLUMNS and len(body) == 1 + 135


# --------------------------------------------------------------------------- the suite field

def test_the_real_seed_suites_name_their_paper_and_the_twins_do_not():
    for study in STUDIES:
        assert load_suite(study).config.reference == study
        assert load_suite(f"{study}-synth").config.reference is None
        assert twin_of(f"{study}-synth") == study and twin_of(study) is None
    assert twin_of("smoke") is None and twin_of("my-synth") is None


def _raw(**extra) -> dict:
    return {"axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0, 0.1],
                     "target": ["synth-inbreast"], "seeds": 2}, "image_size": 32, **extra}


def test_reference_never_enters_a_cell_id():
    plain = build_suite(_raw())
    named = build_suite(_raw(reference="falconi"))
    assert named.config.reference == "falconi" and plain.config.reference is None
    assert [c.cell_id for c in plain.cells] == [c.cell_id for c in named.cells]
    assert all("reference" not in c.config for c in named.cells)


def test_unknown_study_is_a_clear_suite_error(tmp_path, capsys):
    with pytest.raises(SuiteError) as exc:
        build_suite(_raw(reference="falconni"))
    msg = str(exc.value)
    assert "reference" in msg and "unknown study 'falconni'" in msg and "Did you mean: 'falconi'" in msg
    assert all(s in msg for s in STUDIES)
    path = tmp_path / "x.yaml"
    path.write_text("reference: shenn\naxes: {backbone: [toy_cnn], source: [random], ft_fraction: [0], "
                    "target: [synth-inbreast]}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: reference:") and "Known studies" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the command

def test_bench_references_json_is_one_list_with_exactly_the_row_keys(capsys):
    assert main(["references", "bulathsinghalage-liu", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 135
    assert all(list(r) == list(COLUMNS) for r in rows)
    assert {"study": "bulathsinghalage-liu", "table": "1", "backbone": "vgg16", "source": "random", "ft_fraction": 0,
            "target": "inbreast", "transfer": "full", "train_mode": "default", "metric": "auc", "value": 0.34} in rows
    assert sum(r["value"] is None for r in rows) == 9
    assert all(isinstance(r["ft_fraction"], (int, float)) and not isinstance(r["ft_fraction"], bool) for r in rows)
    assert main(["references", "--json"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert len(everything) == 135 + 92 + 6 + 2 and {r["study"] for r in everything} == set(STUDIES)


def test_bench_references_prints_a_readable_table(capsys):
    assert main(["references", "falconi"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == list(COLUMNS)
    assert re.search(r"falconi\s+7\s+resnet50\s+imagenet\s+0\.8\s+cbis-ddsm\s+full\s+tl\s+falconi_auc\s+0\.861", out)
    assert "falconi table 10: section 5.3" in out
    assert main(["references", "bulathsinghalage-liu"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"vgg16\s+random\s+0\s+inbreast\s+full\s+default\s+auc\s+0\.340\n", out)
    assert re.search(r"vgg16\s+imagenet\s+0\s+inbreast\s+full\s+default\s+auc\s+NA\n", out)


def test_bench_references_unknown_study_is_one_error_line(capsys):
    assert main(["references", "falconni", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown study 'falconni'"), lines
    assert "Did you mean: 'falconi'" in lines[0] and all(s in lines[0] for s in STUDIES)


# --------------------------------------------------------------------------- the report

def _records(study: str, metric_of, *, seeds: int = 3, balanced: bool = True) -> list[dict]:
    """Records for a suite's real cells: ``metric_of(cell)`` gives its per-seed base value."""
    out = []
    for c in load_suite(study).cells:
        if c.seed >= seeds:
            continue
        metrics = None
        if c.na_reason is None:
            base = metric_of(c) + 0.01 * (c.seed - 1)  # seeds base - 0.01, base, base + 0.01
            fine_tuned = c.ft_fraction > 0
            metrics = {"auc": base, "accuracy": 0.7, "f1": 0.7, "sensitivity": 0.7, "specificity": 0.7,
                       "train_acc": 0.9 if fine_tuned else None, "val_acc": 0.8, "beta": 1.125 if fine_tuned else None,
                       "n_finetune": 10 if fine_tuned else 0, "n_eval": 40}
            if balanced:
                metrics["balanced_accuracy"] = base
        out.append({"schema": SCHEMA, "suite": study, "cell_id": c.cell_id, "status": "na" if c.na_reason else "ok",
                    "reason": c.na_reason, "cell": c.axes, "config": c.config, "metrics": metrics,
                    "predictions": {"image_id": [], "patient_id": [], "label": [], "score": []},
                    "history": [], "timing": {}, "provenance": {}})
    return out


def _table_after(markdown: str, title: str) -> list[list[str]]:
    part = markdown.split(title, 1)[1]
    lines = [ln for ln in part.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return [rows[0], *rows[2:]]


def _notes_after(markdown: str, title: str) -> str:
    return markdown.split(title, 1)[1].split("\n\n", 3)[2]


def test_report_of_a_referenced_suite_puts_the_paper_beside_ours():
    # Falconi's TL cells: our balanced accuracy is 0.85 (+-0.01 over 3 seeds: t half-width 0.025) everywhere, so
    # the 0.861 of ResNet-50 lies inside our interval and VGG16's 0.644 outside.
    records = _records("falconi", lambda c: 0.85)
    md = render_report(records, suite="falconi", reference="falconi")
    assert "## Paper vs ours: falconi" in md
    table = _table_after(md, "**Paper vs ours: Table 7**")
    assert table[0] == ["Backbone", "Pre-training", "Column", "Paper", "Ours", "Ours − paper", "Mark"]
    by_backbone = {row[0]: row for row in table[1:]}
    assert by_backbone["resnet50"][2:] == ["FT 0.8 [tl]", "0.861", "0.850 ± 0.025", "-0.011", ""]
    assert by_backbone["vgg16"][2:] == ["FT 0.8 [tl]", "0.644", "0.850 ± 0.025", "+0.206", "✗"]
    paper = [float(r[3]) for r in table[1:]]
    inside = sum(0.825159 <= p <= 0.874841 for p in paper)  # 0.85 -+ t(0.975, 2) * 0.01
    assert len(paper) == 19 and 0 < inside < 19
    notes = _notes_after(md, "**Paper vs ours: Table 7**")
    mad = sum(abs(0.85 - p) for p in paper) / len(paper)
    assert f"**Agreement:** {inside} of 19 cells agree within our 95 % interval" in notes
    assert f"✗ marks the {19 - inside} that do not" in notes
    assert f"mean absolute difference |ours − paper| = {mad:.3f} over 19 cells" in notes
    assert "balanced_accuracy, never with our ROC AUC" in notes
    # Table 8: beta 1.125 on every seed (half-width 0): resnet50's 1.16 lies outside, several metrics per row block
    table8 = _table_after(md, "**Paper vs ours: Table 8**")
    assert "Metric" in table8[0]
    beta_rows = [r for r in table8[1:] if r[3].startswith("β")]
    assert len(beta_rows) == 19 and all(r[5] == "1.125 ± 0.000" for r in beta_rows)
    latex = render_report_latex(records, suite="falconi", reference="falconi")
    assert "Paper vs ours: Table 7" in latex and r"$\times$" in latex
    # the same comparison without the reference: nothing of it
    assert "Paper vs ours" not in render_report(records, suite="falconi")


def test_falconi_auc_without_balanced_accuracy_is_not_comparable():
    md = render_report(_records("falconi", lambda c: 0.85, balanced=False), suite="falconi", reference="falconi")
    table = _table_after(md, "**Paper vs ours: Table 9**")
    assert table[1:] and all(row[4] == "not comparable" and row[5] == "" for row in table[1:])
    notes = _notes_after(md, "**Paper vs ours: Table 9**")
    assert "**Agreement:** no cell could be judged" in notes and "7 not comparable" in notes
    assert "carry no balanced_accuracy" in notes


def test_bulathsinghalage_liu_report_says_random_no_ft_values_are_single_draws():
    records = _records("bulathsinghalage-liu", lambda c: 0.8, seeds=2)
    md = render_report(records, suite="bulathsinghalage-liu", reference="bulathsinghalage-liu")
    for table in ("1", "2", "3", "4"):
        assert f"**Paper vs ours: Table {table}**" in md
    table1 = _table_after(md, "**Paper vs ours: Table 1**")
    assert len(table1) == 1 + 33
    assert table1[1][:4] == ["vgg16", "Random init", "No FT", "0.340"]
    assert table1[4][1:5] == ["ImageNet", "No FT", "NA", "NA"]  # the paper's NA beside our NA cell
    notes1 = _notes_after(md, "**Paper vs ours: Table 1**")
    assert "random-init No-FT values are single draws" in notes1
    assert "of 30 cells agree within our 95 % interval" in notes1  # 33 values, 3 NA
    table4 = _table_after(md, "**Paper vs ours: Table 4**")
    assert len(table4) == 1 + 36 and {"FT 0.1, full", "FT 0.1, hybrid"} <= {r[2] for r in table4[1:]}
    assert "single draws" not in _notes_after(md, "**Paper vs ours: Table 4**")  # no No-FT column there


def test_a_synthetic_twin_report_says_it_reproduces_no_published_number():
    suite = load_suite("falconi-synth")
    records = []
    for c in suite.cells:
        fine_tuned = c.ft_fraction > 0
        records.append({"schema": SCHEMA, "suite": suite.name, "cell_id": c.cell_id, "status": "ok", "reason": None,
                        "cell": c.axes, "config": c.config, "metrics": {
                            "auc": 0.7, "balanced_accuracy": 0.7, "accuracy": 0.7, "f1": 0.7, "sensitivity": 0.7,
                            "specificity": 0.7, "train_acc": 0.9 if fine_tuned else None, "val_acc": 0.8,
                            "beta": 1.1 if fine_tuned else None, "n_finetune": 5, "n_eval": 20},
                        "predictions": {"image_id": [], "patient_id": [], "label": [], "score": []},
                        "history": [], "timing": {}, "provenance": {}})
    md = render_report(records, suite="falconi-synth", reference=suite.config.reference)
    assert "Paper vs ours" not in md
    lines = [ln for ln in md.splitlines() if "reproduces no published number" in ln]
    assert len(lines) == 1 and "synthetic twin of `falconi`" in lines[0]
    assert "reproduces no published number" not in render_report(records, suite="smoke")


def test_bench_report_reads_the_reference_from_the_manifest_writes_the_csv_and_imports_no_torch(tmp_path):
    folder = tmp_path / "results" / "shen"
    folder.mkdir(parents=True)
    records = _records("shen", lambda c: 0.9 if c.ft_fraction >= 40 else 0.7)
    for rec in records:
        (folder / f"{rec['cell_id']}.json").write_text(json.dumps(rec))
    suite = load_suite("shen")
    (folder / MANIFEST).write_text(json.dumps({"suite": "shen", "config": suite.config.model_dump(mode="json"),
                                               "cells": {c.cell_id: c.axes for c in suite.cells}}))
    code = ("import sys; from bench.cli import main; "
            f"rc = main(['report', {str(folder)!r}, '--reports', {str(tmp_path / 'rep')!r}]); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
    md = (tmp_path / "rep" / "shen" / "report.md").read_text()
    table = _table_after(md, "**Paper vs ours: Table 4**")
    assert [r[2] for r in table[1:]] == ["FT 20 patients", "FT 30 patients", "FT 40 patients", "FT 50 patients",
                                         "FT 60 patients", "FT 0.7"]
    assert table[1][3:] == ["0.88", "0.700 ± 0.025", "-0.180", "✗"]
    assert table[3][3:] == ["0.95", "0.900 ± 0.025", "-0.050", "✗"]
    assert "tta: flips" in _notes_after(md, "**Paper vs ours: Table 4**")  # our AUC is flip-averaged, theirs not
    with open(tmp_path / "rep" / "shen" / "paper_vs_ours.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and {"paper", "ours", "low", "high", "difference", "within_interval"} <= set(rows[0])
    first = rows[0]
    assert (float(first["ft_fraction"]), float(first["paper"]), first["within_interval"]) == (20, 0.88, "False")
    assert math.isclose(float(first["ours"]), 0.7) and math.isclose(float(first["difference"]), -0.18)


def test_shen_table_4_is_compared_with_the_plain_auc_when_records_keep_both_scores():
    """Shen's Table 4 is per-image AUC without augmented prediction; with tta on, records keep auc_plain too."""
    records = _records("shen", lambda c: 0.9)
    for r in records:
        if r["metrics"]:
            r["metrics"].update(auc_tta=r["metrics"]["auc"], auc_plain=0.6)
    md = render_report(records, suite="shen", reference="shen")
    table = _table_after(md, "**Paper vs ours: Table 4**")
    assert table[1:] and all(row[4].startswith("0.600") for row in table[1:])
    assert "(auc_plain) are compared with the paper's per-image AUC" in _notes_after(md, "**Paper vs ours: Table 4**")
