"""bench.report: tables rendered from synthetic records (no training), in the paper's layouts."""
from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from bench.records import SCHEMA
from bench.report import (
    HIGHER_IS_BETTER,
    records_frame,
    render_report,
    table_all_vs_hybrid,
    table_transfer,
)

IMAGENET_NA = "not applicable: an ImageNet network has a 1000-class head"


def make_record(backbone: str = "resnet18", source: str = "random", ft_fraction: float = 0.1,
                target: str = "synth-inbreast", seed: int = 0, *, transfer: str = "full", status: str = "ok",
                auc: float | None = 0.8, beta: float | None = 1.1, reason: str | None = None,
                **extra_metrics) -> dict:
    """A record as the runner writes it (schema of bench.records); only what a report reads varies."""
    axes = {"backbone": backbone, "source": source, "ft_fraction": ft_fraction, "target": target,
            "transfer": transfer, "seed": seed}
    cell_id = "-".join(str(v) for v in axes.values())
    metrics = None
    if status == "ok":
        fine_tuned = ft_fraction > 0
        metrics = {"auc": auc, "accuracy": 0.75, "f1": 0.7, "sensitivity": 0.7, "specificity": 0.8,
                   "train_acc": 0.9 if fine_tuned else None, "val_acc": 0.75,
                   "beta": beta if fine_tuned else None, "n_finetune": 12 if fine_tuned else 0, "n_eval": 48,
                   **extra_metrics}
    config = {"protocol": 1, **axes, **({"hybrid_stage": "block2"} if transfer == "hybrid" else {})}
    return {"schema": SCHEMA, "suite": "test", "cell_id": cell_id, "status": status, "reason": reason,
            "cell": axes, "config": config, "metrics": metrics,
            "predictions": {"image_id": [], "patient_id": [], "label": [], "score": []},
            "history": [], "timing": {}, "provenance": {}}


def parse_table(markdown: str) -> list[list[str]]:
    """Rows of a GitHub Markdown table (header first, separator dropped), cells stripped."""
    lines = [ln for ln in markdown.strip().splitlines() if ln.startswith("|")]
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return [rows[0], *rows[2:]]


def cell(table: list[list[str]], row_label: tuple[str, str], column: str) -> str:
    """The cell at (block label, source label) x column, following blank block labels down the table."""
    header, block = table[0], ""
    for row in table[1:]:
        block = row[0] or block
        if (block, row[1]) == row_label:
            return row[header.index(column)]
    raise KeyError(row_label)


# --------------------------------------------------------------------------- records_frame

def test_records_frame_one_row_per_record_with_axes_and_metrics():
    recs = [make_record(seed=0, auc=0.7), make_record(seed=1, status="failed", reason="boom"),
            make_record(source="imagenet", ft_fraction=0.0, status="na", reason=IMAGENET_NA),
            make_record(seed=2, ece=0.05)]
    df = records_frame(recs)
    assert len(df) == 4
    assert list(df.columns[:10]) == ["cell_id", "status", "reason", "backbone", "source", "ft_fraction", "target",
                                     "transfer", "train_mode", "seed"]
    assert set(df["train_mode"]) == {"default"}  # records without the axis: the default mode, backbone kept
    assert {"auc", "beta", "train_acc", "n_eval", "ece"} <= set(df.columns)
    assert df.loc[0, "auc"] == 0.7
    assert math.isnan(df.loc[1, "auc"]) and df.loc[1, "reason"] == "boom"  # failed: no metrics
    assert math.isnan(df.loc[2, "beta"])  # None in the record
    assert math.isnan(df.loc[0, "ece"]) and df.loc[3, "ece"] == 0.05  # metric only some records have
    assert records_frame([]).empty


# --------------------------------------------------------------------------- table_transfer

def test_mean_and_sample_std_over_three_seeds_single_seed_has_no_std():
    recs = [make_record(ft_fraction=0.1, seed=s, auc=a) for s, a in enumerate((0.7, 0.8, 0.9))]
    recs.append(make_record(ft_fraction=0.2, seed=0, auc=0.8124))
    table = parse_table(table_transfer(records_frame(recs), "synth-inbreast"))
    half_width = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)  # t interval of the mean, sample std (ddof=1) 0.1
    assert cell(table, ("resnet18", "Random init"), "FT 0.1") == f"0.800 ({0.8 - half_width:.3f}–1.000)"  # 0.8 + hw > 1: bounds cut at 1
    assert cell(table, ("resnet18", "Random init"), "FT 0.2") == "0.812"  # trailing digits kept, no "±"


def test_na_failed_partial_failure_and_missing_cells():
    recs = [make_record(source="imagenet", ft_fraction=0.0, seed=s, status="na", reason=IMAGENET_NA)
            for s in range(2)]
    recs += [make_record(source="imagenet", ft_fraction=0.1, seed=s, status="failed", reason="oom") for s in range(2)]
    recs += [make_record(source="random", ft_fraction=0.1, seed=0, auc=0.6),
             make_record(source="random", ft_fraction=0.1, seed=1, status="failed", reason="oom"),
             make_record(source="random", ft_fraction=0.0, seed=0, auc=0.5)]
    table = parse_table(table_transfer(records_frame(recs), "synth-inbreast"))
    assert cell(table, ("resnet18", "ImageNet"), "No FT") == "NA"
    assert cell(table, ("resnet18", "ImageNet"), "FT 0.1") == "failed"
    assert cell(table, ("resnet18", "Random init"), "FT 0.1") == "0.600 (1 failed)"
    assert cell(table, ("resnet18", "Random init"), "No FT") == "0.500"
    assert table[0] == ["Backbone", "Pre-training", "No FT", "FT 0.1"]


def test_missing_record_in_an_existing_row_is_a_dash():
    recs = [make_record(source="random", ft_fraction=0.0), make_record(source="random", ft_fraction=0.2),
            make_record(source="synth-ddsm", ft_fraction=0.2)]
    table = parse_table(table_transfer(records_frame(recs), "synth-inbreast"))
    assert cell(table, ("resnet18", "synth-ddsm"), "No FT") == "—"


def test_column_order_source_order_and_backbone_blocks():
    recs = [make_record(backbone=b, source=s, ft_fraction=f, auc=0.5)
            for b in ("vgg16", "resnet50") for s in ("synth-ddsm", "imagenet", "synth-mias", "random")
            for f in (0.2, 0.0, 0.1)]
    random.Random(0).shuffle(recs[3:])  # keep vgg16 / synth-ddsm first, shuffle the rest
    table = parse_table(table_transfer(records_frame(recs), "synth-inbreast"))
    assert table[0] == ["Backbone", "Pre-training", "No FT", "FT 0.1", "FT 0.2"]
    assert [row[1] for row in table[1:5]] == ["Random init", "ImageNet", "synth-ddsm", "synth-mias"]
    assert [row[0] for row in table[1:]] == ["vgg16", "", "", "", "resnet50", "", "", ""]


def test_only_the_requested_target_and_transfer_are_tabulated():
    recs = [make_record(auc=0.8), make_record(auc=0.2, transfer="hybrid"),
            make_record(auc=0.3, target="synth-ultrasound")]
    table = parse_table(table_transfer(records_frame(recs), "synth-inbreast"))
    assert cell(table, ("resnet18", "Random init"), "FT 0.1") == "0.800"
    hybrid = parse_table(table_transfer(records_frame(recs), "synth-inbreast", transfer="hybrid"))
    assert cell(hybrid, ("resnet18", "Random init"), "FT 0.1") == "0.200"


def test_beta_table_drops_the_no_ft_column_where_beta_is_undefined():
    recs = [make_record(ft_fraction=f, seed=s, beta=1.2 + 0.1 * s) for f in (0.0, 0.1) for s in range(2)]
    table = parse_table(table_transfer(records_frame(recs), "synth-inbreast", metric="beta"))
    assert table[0] == ["Backbone", "Pre-training", "FT 0.1"]
    half_width = stats.t.ppf(0.975, 1) * math.sqrt(0.005) / math.sqrt(2)  # two seeds, 1.2 and 1.3
    assert cell(table, ("resnet18", "Random init"), "FT 0.1") == f"1.250 ± {half_width:.3f}"


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown metric 'acu'. Did you mean: 'auc'"):
        table_transfer(records_frame([make_record()]), "synth-inbreast", metric="acu")


# --------------------------------------------------------------------------- table_all_vs_hybrid

def _full_and_hybrid() -> list[dict]:
    recs = []
    for target in ("synth-mias", "synth-inbreast"):
        for source in ("synth-ddsm", "random"):
            recs.append(make_record(source=source, ft_fraction=0.0, target=target, auc=0.5))
            recs.append(make_record(source=source, ft_fraction=0.0, target=target, transfer="hybrid", status="na",
                                    reason="not applicable: hybrid without fine-tuning"))
            for f in (0.1, 0.2):
                recs.append(make_record(source=source, ft_fraction=f, target=target, auc=0.85))
                for s, a in enumerate((0.80, 0.84)):
                    recs.append(make_record(source=source, ft_fraction=f, target=target, seed=s, auc=a,
                                            transfer="hybrid"))
    return recs


def test_all_vs_hybrid_layout():
    table = parse_table(table_all_vs_hybrid(records_frame(_full_and_hybrid())))
    assert table[0] == ["Target", "Pre-training", "FT 0.1", "FT 0.2"]  # No FT is never compared
    assert [row[:2] for row in table[1:]] == [["synth-mias", "Random init"], ["", "synth-ddsm"],
                                              ["synth-inbreast", "Random init"], ["", "synth-ddsm"]]
    half_width = stats.t.ppf(0.975, 1) * math.sqrt(0.0008) / math.sqrt(2)  # hybrid seeds 0.80 and 0.84
    assert cell(table, ("synth-inbreast", "synth-ddsm"), "FT 0.2") == f"0.850 vs 0.820 ({0.82 - half_width:.3f}–1.000)"


def test_all_vs_hybrid_keeps_backbones_apart():
    recs = _full_and_hybrid() + [make_record(backbone="vgg16", auc=0.6), make_record(backbone="vgg16", auc=0.7,
                                                                                    transfer="hybrid")]
    table = parse_table(table_all_vs_hybrid(records_frame(recs)))
    assert table[0][:3] == ["Target", "Backbone", "Pre-training"]
    vgg = [row for row in table[1:] if row[1] == "vgg16"]
    assert vgg[0][table[0].index("FT 0.1")] == "0.600 vs 0.700"


def test_all_vs_hybrid_needs_both_modes():
    with pytest.raises(ValueError, match="both transfer modes"):
        table_all_vs_hybrid(records_frame([make_record()]))


# --------------------------------------------------------------------------- render_report

def test_render_report_sections_counts_reasons_and_failures():
    recs = _full_and_hybrid() + [
        make_record(source="imagenet", ft_fraction=0.0, target="synth-mias", status="na", reason=IMAGENET_NA),
        make_record(source="imagenet", ft_fraction=0.1, target="synth-mias", status="failed",
                    reason="Traceback (most recent call last):\n  File x\nRuntimeError: CUDA out of memory"),
    ]
    text = render_report(recs, suite="paper-twin")
    assert text.splitlines()[0].startswith("# ") and "paper-twin" in text.splitlines()[0]
    assert "logit margins" in text and "half-width of its 95 % interval" in text
    n_na, n_failed = sum(r["status"] == "na" for r in recs), 1
    assert f"({len(recs) - n_na - n_failed} ok, {n_na} NA, {n_failed} failed)" in text
    assert IMAGENET_NA in text and "not applicable: hybrid without fine-tuning" in text
    assert text.index("## Target `synth-mias`") < text.index("## Target `synth-inbreast`")
    assert "AUC ↑" in text and "β = train acc / val acc ↓" in text
    assert text.count("all weights vs hybrid") == 2 and "block2" in text
    failed = text[text.index("## Failed cells"):]
    assert "imagenet-0.1-synth-mias-full-0" in failed and "RuntimeError: CUDA out of memory" in failed
    assert "Traceback" not in failed


def test_render_report_without_hybrid_or_failures():
    recs = [make_record(seed=s, auc=0.7 + 0.1 * s) for s in range(3)]
    text = render_report(recs, suite="smoke")
    assert "all weights vs hybrid" not in text and " vs " not in text  # no Table 4 comparison
    assert "## Failed cells" not in text
    assert f"0.800 ({0.8 - stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3):.3f}–1.000)" in text
    assert "t interval of the mean over seeds" in text  # the interval rule, under the table
    assert render_report([], suite="empty").startswith("# Suite `empty`")


def test_metric_direction_registry():
    assert HIGHER_IS_BETTER["auc"] is True and HIGHER_IS_BETTER["beta"] is False
