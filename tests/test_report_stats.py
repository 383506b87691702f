"""Report statistics from stored predictions: intervals, significance marks vs random init, Falconi's flag, LaTeX."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.analysis.intervals import cell_intervals
from bench.analysis.paired import combine_seed_z, paired_tests
from bench.analysis.stats import bootstrap_auc_ci, delong_test
from bench.records import SCHEMA
from bench.report import (
    predictions_frame,
    records_frame,
    render_report,
    render_report_latex,
    table_transfer,
)

N_IMAGES = 160


def _images(seed: int = 0, n: int = N_IMAGES) -> tuple[list[str], list[str], np.ndarray]:
    """Image ids, patient ids (two images per patient) and labels of a fixed evaluation set."""
    rng = np.random.default_rng(1000 + seed)
    patient_label = rng.permutation(np.repeat([0, 1], n // 4))
    labels = np.repeat(patient_label, 2)
    return [f"img{i:04d}" for i in range(n)], [f"p{i // 2:03d}" for i in range(n)], labels


def make_record(source: str, scores: np.ndarray, *, seed: int = 0, ft_fraction: float = 0.0,
                target: str = "synth-inbreast", transfer: str = "full", image_ids=None, train_acc=None,
                val_acc: float = 0.7) -> dict:
    """An ok record whose metrics are computed from its stored predictions, as the runner writes it."""
    ids, patients, labels = _images(seed)
    if image_ids is not None:
        ids = image_ids
    from sklearn.metrics import roc_auc_score

    axes = {"backbone": "toy_cnn", "source": source, "ft_fraction": ft_fraction, "target": target,
            "transfer": transfer, "seed": seed}
    auc = float(roc_auc_score(labels, scores))
    metrics = {"auc": auc, "accuracy": val_acc, "f1": 0.5, "sensitivity": 0.5, "specificity": 0.5,
               "train_acc": train_acc, "val_acc": val_acc,
               "beta": None if train_acc is None else train_acc / val_acc, "n_finetune": 0, "n_eval": len(labels)}
    return {"schema": SCHEMA, "suite": "t", "cell_id": "-".join(map(str, axes.values())), "status": "ok",
            "reason": None, "cell": axes, "config": {**axes}, "metrics": metrics,
            "predictions": {"image_id": list(ids), "patient_id": patients, "label": labels.tolist(),
                            "score": np.asarray(scores, float).tolist()},
            "history": [], "timing": {}, "provenance": {}}


def _scores(seed: int, signal: float, noise_seed: int) -> np.ndarray:
    _, _, labels = _images(seed)
    return signal * labels + np.random.default_rng(noise_seed).normal(size=len(labels))


def _three_seed_records() -> list[dict]:
    """Per seed: random (no signal), synth-ddsm (strong signal), synth-mias (a copy of random's scores)."""
    recs = []
    for seed in range(3):
        noise = _scores(seed, 0.0, 10 + seed)
        recs += [make_record("random", noise, seed=seed),
                 make_record("synth-ddsm", _scores(seed, 2.0, 20 + seed), seed=seed),
                 make_record("synth-mias", noise.copy(), seed=seed)]
    return recs


def _rows(markdown: str) -> dict[str, str]:
    """Pre-training label -> No FT cell of the first one-backbone Table-1 Markdown table in ``markdown``."""
    all_lines = markdown.splitlines()
    start = next(i for i, ln in enumerate(all_lines) if ln.startswith("|"))
    end = next((i for i in range(start, len(all_lines)) if not all_lines[i].startswith("|")), len(all_lines))
    lines = all_lines[start + 2:end]
    return {cells[1]: cells[2] for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines)}


def test_significance_mark_for_a_clearly_better_source_not_for_an_identical_one():
    recs = _three_seed_records()
    df, preds = records_frame(recs), predictions_frame(recs)
    tests = paired_tests(df, preds, axis="source", reference="random",
                         keys=["backbone", "ft_fraction", "target", "transfer"])
    by_source = tests.set_index("source")
    assert by_source.loc["synth-ddsm", "significant"] and by_source.loc["synth-ddsm", "p_holm"] < 1e-6
    assert not by_source.loc["synth-mias", "significant"] and by_source.loc["synth-mias", "z"] == 0
    assert (tests["n_seeds"] == 3).all() and (tests["n_untested"] == 0).all()
    rows = _rows(table_transfer(df, "synth-inbreast", intervals=cell_intervals(df, preds), tests=tests))
    assert rows["synth-ddsm"].endswith("†")
    assert "†" not in rows["synth-mias"] and "†" not in rows["Random init"]
    text = render_report(recs, suite="t")
    assert "Holm correction over the 2 comparisons of this table" in text and "1 of 2 significant" in text


def test_seed_combination_is_the_mean_of_the_per_seed_delong_z():
    recs = _three_seed_records()
    df, preds = records_frame(recs), predictions_frame(recs)
    tests = paired_tests(df[df["source"] != "synth-mias"], preds, axis="source", reference="random",
                         keys=["backbone", "ft_fraction", "target", "transfer"])
    z = []
    for seed in range(3):
        _, _, labels = _images(seed)
        z.append(delong_test(labels, _scores(seed, 2.0, 20 + seed), _scores(seed, 0.0, 10 + seed))["z"])
    assert tests.loc[0, "z"] == pytest.approx(np.mean(z))
    assert tests.loc[0, "p_value"] == pytest.approx(2 * stats.norm.sf(abs(np.mean(z))))
    assert tests.loc[0, "p_holm"] == pytest.approx(tests.loc[0, "p_value"])  # one comparison: Holm = raw
    assert combine_seed_z([1.0, np.nan, 3.0])[0] == 2.0


def test_cells_on_different_images_are_not_tested_and_the_report_says_so():
    other_ids = [f"other{i:04d}" for i in range(N_IMAGES)]
    recs = [make_record("random", _scores(0, 0.0, 1)),
            make_record("synth-ddsm", _scores(0, 3.0, 2), image_ids=other_ids)]
    df, preds = records_frame(recs), predictions_frame(recs)
    tests = paired_tests(df, preds, axis="source", reference="random",
                         keys=["backbone", "ft_fraction", "target", "transfer"])
    assert tests.loc[0, "n_untested"] == 1 and tests.loc[0, "n_seeds"] == 0 and not tests.loc[0, "significant"]
    assert math.isnan(tests.loc[0, "p_value"])
    text = render_report(recs, suite="t")
    assert "Not tested: toy_cnn, synth-ddsm, No FT, full" in text and "not evaluated on the same images" in text
    assert "†" not in _rows(text[text.index("| Backbone"):])["synth-ddsm"]


def test_interval_half_width_is_the_t_formula_with_seeds_and_the_patient_bootstrap_with_one():
    recs = _three_seed_records()
    df = records_frame(recs)
    aucs = df.loc[df["source"] == "synth-ddsm", "auc"].to_numpy()
    expected = stats.t.ppf(0.975, len(aucs) - 1) * aucs.std(ddof=1) / math.sqrt(len(aucs))
    iv = cell_intervals(df, predictions_frame(recs)).set_index("source")
    assert iv.loc["synth-ddsm", "half_width"] == pytest.approx(expected) and iv.loc["synth-ddsm", "method"] == "t"
    assert _rows(render_report(recs, suite="t"))["synth-ddsm"] == f"{aucs.mean():.3f} ± {expected:.3f} †"

    single = [r for r in recs if r["cell"]["seed"] == 0]
    p = single[1]["predictions"]
    ci = bootstrap_auc_ci(p["label"], p["score"], p["patient_id"], n_resamples=2000, seed=0)
    iv1 = cell_intervals(records_frame(single), predictions_frame(single)).set_index("source")
    assert iv1.loc["synth-ddsm", "method"] == "bootstrap"
    assert iv1.loc["synth-ddsm", "half_width"] == pytest.approx((ci["high"] - ci["low"]) / 2)
    text = render_report(single, suite="t")
    assert f"± {(ci['high'] - ci['low']) / 2:.3f}" in _rows(text)["synth-ddsm"]
    assert "bootstrap resamples of the cell's evaluation patients" in text


def test_falconi_flag_marks_cells_whose_train_accuracy_exceeds_validation_by_ten_points():
    recs = []
    for seed in range(2):
        recs.append(make_record("random", _scores(seed, 1.0, seed), seed=seed, ft_fraction=0.2, train_acc=0.95,
                                val_acc=0.70))
        recs.append(make_record("synth-ddsm", _scores(seed, 1.0, 50 + seed), seed=seed, ft_fraction=0.2,
                                train_acc=0.78, val_acc=0.70))
    text = render_report(recs, suite="t")
    beta = text[text.index("Overfit ratio β"):]
    rows = _rows(beta[beta.index("| Backbone"):])
    assert rows["Random init"].endswith("‡") and "‡" not in rows["synth-ddsm"]
    assert "more than 10 points above" in beta


def _table_numbers(lines: list[str]) -> list[str]:
    return sorted(n for ln in lines for n in re.findall(r"\d+\.\d{3}", ln))


def test_latex_has_tabular_and_the_same_numbers_and_marks_as_markdown():
    recs = _three_seed_records() + [make_record("random", _scores(0, 0.5, 99), ft_fraction=0.2, train_acc=0.9)]
    md = render_report(recs, suite="t_latex")
    tex = render_report_latex(recs, suite="t_latex")
    assert tex.count(r"\begin{tabular}") == md.count("| Backbone") and r"\toprule" in tex
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    md_rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    tex_rows = [ln for ln in tex.splitlines() if ln.endswith(r"\\") and " & " in ln]
    assert _table_numbers(md_rows) and _table_numbers(md_rows) == _table_numbers(tex_rows)
    assert md.count("†") == tex.count(r"$^{\dagger}$") and r"$\pm$" in tex and "±" not in tex
    assert r"t\_latex" in tex  # special characters escaped


def test_report_statistics_need_neither_torch_nor_training(tmp_path):
    """Rendering recomputes from stored predictions only: torch is never even imported."""
    import json

    (tmp_path / "records.json").write_text(json.dumps(_three_seed_records()))
    code = ("import json, sys; from bench.report import render_report, render_report_latex; "
            f"recs = json.load(open({str(tmp_path / 'records.json')!r})); "
            "render_report(recs, suite='t'); render_report_latex(recs, suite='t'); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_bench_report_command_imports_no_torch(tmp_path):
    """`bench report results/<suite>` re-renders from the folder alone, without importing torch (seconds)."""
    import json

    folder = tmp_path / "results" / "t"
    folder.mkdir(parents=True)
    for rec in _three_seed_records():
        (folder / f"{rec['cell_id']}.json").write_text(json.dumps(rec))
    code = ("import sys; from bench.cli import main; "
            f"rc = main(['report', {str(folder)!r}, '--reports', {str(tmp_path / 'rep')!r}]); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
    assert (tmp_path / "rep" / "t" / "report.md").exists()


def test_predictions_frame_uses_patients_as_bootstrap_groups():
    recs = _three_seed_records()[:1]
    frame = predictions_frame(recs)
    assert list(frame.columns) == ["cell_id", "image_id", "patient_id", "label", "score", "group"]
    assert frame["group"].nunique() == N_IMAGES // 2
    assert isinstance(frame, pd.DataFrame) and predictions_frame([]).empty


def test_accuracy_curves_on_request(tmp_path):
    from bench.report import accuracy_curves_figure

    recs = _three_seed_records()
    assert accuracy_curves_figure(recs, tmp_path / "none.png") is None  # No FT: no fine-tuning history
    for rec in recs:
        rec["history"] = [{"epoch": e, "running_train_acc": 0.5 + 0.1 * e} for e in (1, 2, 3)]
    path = accuracy_curves_figure(recs, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png" and path.stat().st_size > 1000


def _mode_record(mode: str, scores: np.ndarray, seed: int) -> dict:
    rec = make_record("random", scores, seed=seed, ft_fraction=0.2)
    rec["cell"]["train_mode"] = mode
    rec["cell_id"] += f"-{mode}"
    return rec


def test_train_modes_are_compared_with_the_first_listed_mode_on_the_same_images():
    """Falconi's question (TL vs FT): a mode far better than the first gets †, a copy of the first does not."""
    from bench.report import mode_tests, table_train_modes

    recs = []
    for seed in range(3):
        base = _scores(seed, 0.3, 30 + seed)
        recs += [_mode_record("tl", base, seed), _mode_record("ft", _scores(seed, 2.5, 40 + seed), seed),
                 _mode_record("ft-same", base.copy(), seed)]
    df, preds = records_frame(recs), predictions_frame(recs)
    tests = mode_tests(df, preds, "synth-inbreast").set_index("train_mode")
    assert set(tests.index) == {"ft", "ft-same"}  # the first listed mode is the reference
    assert tests.loc["ft", "significant"] and tests.loc["ft", "difference"] > 0.2
    assert not tests.loc["ft-same", "significant"] and tests.loc["ft-same", "z"] == 0
    lines = [ln for ln in table_train_modes(df, "synth-inbreast", tests=mode_tests(df, preds, "synth-inbreast"))
             .splitlines() if ln.startswith("|")][2:]
    by_mode = {cells[2]: cells[3] for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines)}
    assert set(by_mode) == {"tl", "ft", "ft-same"}
    assert by_mode["ft"].endswith("†") and "†" not in by_mode["tl"] and "†" not in by_mode["ft-same"]
    text = render_report(recs, suite="t")
    assert "train modes compared" in text and "differs from the train mode `tl`" in text


def test_one_train_mode_gives_no_mode_table():
    text = render_report(_three_seed_records(), suite="t")
    assert "train modes compared" not in text
