"""Small things a new user tripped on (issue 13, item 7 and item 2): each a test."""
from __future__ import annotations

import re
import shutil

from bench.cli import main
from bench.suite import list_suites, load_suite, suite_description


def test_bench_list_suites_shows_every_shipped_suites_description(capsys):
    assert main(["list", "suites"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(list_suites())
    for name, line in zip(list_suites(), lines):
        assert line.startswith(name) and suite_description(name) and line.endswith(suite_description(name)), line


def test_the_smoke_description_states_the_image_size_it_runs():
    suite = load_suite("smoke")
    px = re.search(r"(\d+) px", suite.config.description)
    assert px and int(px.group(1)) == suite.config.image_size


def test_a_copy_of_a_suite_keeping_its_name_is_refused_before_it_writes_into_the_folder(tmp_path, capsys):
    """A copy of smoke.yaml that kept `name: smoke` wrote into results/smoke; `bench report` then showed both."""
    results = tmp_path / "results"
    copy = tmp_path / "my-smoke.yaml"
    body = ("name: shared-name\naxes: {backbone: [toy_cnn], source: [random], ft_fraction: [0], "
            "target: [synth-inbreast]}\nimage_size: 32\ndata: {synth-inbreast: {n_images: 20}}\n")
    first = tmp_path / "first.yaml"
    first.write_text(body)
    assert main(["run", str(first), "--results", str(results), "--reports", str(tmp_path / "rep"),
                 "--workers", "0", "--no-progress"]) == 0
    shutil.copy(first, copy)
    copy.write_text(body.replace("n_images: 20", "n_images: 24"))
    capsys.readouterr()
    assert main(["run", str(copy), "--results", str(results), "--reports", str(tmp_path / "rep"),
                 "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "belongs to suite file" in err and str(first) in err and "rename" in err
    assert len(list((results / "shared-name").glob("*.json"))) == 2  # the manifest and the first suite's one cell
    # the same file edited (another seed) is the same suite: it runs
    first.write_text(body.replace("target: [synth-inbreast]}", "target: [synth-inbreast], seeds: 2}"))
    assert main(["run", str(first), "--results", str(results), "--reports", str(tmp_path / "rep"),
                 "--workers", "0", "--no-progress"]) == 0


def test_suite_errors_carry_no_pydantic_value_error_prefix(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\naxes: {backbone: [toy_cnn], source: [random], ft_fraction: [0, 0.0], "
                   "target: [synth-inbreast]}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "axes.ft_fraction: 0.0 is listed twice" in err and "Value error" not in err


def _two_folders(root):
    import numpy as np
    from PIL import Image

    for c in ("benign", "malignant"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32), dtype=np.uint8)).save(
                root / c / f"{c}{i}.png")


def test_the_readmes_two_folder_layout_gets_no_warning_about_a_normal_folder(tmp_path, capsys):
    import json

    from bench.data import DATASETS

    _two_folders(tmp_path)
    assert main(["data", "check", "folder", "--root", str(tmp_path), "--json"]) == 0
    assert not any("not found" in w for w in json.loads(capsys.readouterr().out)["warnings"])
    spec = DATASETS.get("folder")  # a folder the user names and that is missing is still warned about
    scan = spec.scan(spec.options(positive=["malignant", "cancer"]), tmp_path)
    assert any("not found" in w and "cancer" in w for w in scan.warnings)


def test_data_check_with_a_missing_root_names_its_own_flag(tmp_path, capsys):
    assert main(["data", "check", "folder", "--root", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "fix --root" in err and "data.folder.root" not in err


def _fresh_python(code: str) -> str:
    import subprocess
    import sys
    from pathlib import Path

    from conftest import child_env

    env = child_env(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_status_reads_a_results_folder_without_torch_and_plan_without_timm(tmp_path):
    """`bench status` took about 5 s on a small folder (torch, timm and scikit-learn imported for nothing)."""
    import yaml

    suite = tmp_path / "tiny.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "tiny", "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0],
                                 "target": ["synth-inbreast"], "seeds": 1},
        "image_size": 32, "data": {"synth-inbreast": {"n_images": 40}}}))
    results = tmp_path / "results"
    assert main(["run", str(suite), "--results", str(results), "--reports", str(tmp_path / "reports"),
                 "--no-progress", "--workers", "0"]) == 0
    folder = results / "tiny"
    out = _fresh_python(f"import sys; from bench.cli import main; rc = main(['status', {str(folder)!r}]); "
                        "print('@@', rc, sorted(m for m in ('torch', 'timm', 'sklearn') if m in sys.modules))")
    assert "@@ 0 []" in out, out
    out = _fresh_python(f"import sys; from bench.cli import main; rc = main(['plan', 'smoke', '--results', "
                        f"{str(results)!r}]); print('@@', rc, sorted(m for m in ('timm', 'sklearn') if m in sys.modules))")
    assert "@@ 0 []" in out, out
