"""The example plugin package: installed into a temporary folder (never the shared venv), found
through its ``bench.backbones`` entry point, listed with its origin, and run in a tiny suite."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.records import load_records
from conftest import child_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "bench-example-backbone"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src)  # pip writes build files next to the sources: keep them out of the checkout
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True, timeout=300)
    env = child_env(target, ROOT, OMP_NUM_THREADS="1")
    return tmp, env


def _bench(env, *args, cwd):
    return subprocess.run([sys.executable, "-m", "bench", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)


def test_list_shows_the_plugin_and_a_typo_gets_did_you_mean(plugin_env):
    tmp, env = plugin_env
    bad = _suite_with(tmp, "tiny_exampel")
    # one interpreter for both commands (importing torch dominates a subprocess's run time)
    code = ("import sys; from bench.cli import main; rc1 = main(['list', 'backbones']); print('@@rc', rc1); "
            f"rc2 = main(['validate', {str(bad)!r}]); print('@@rc', rc2)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, capture_output=True, text=True, timeout=600,
                         check=False)
    assert "@@rc 0" in out.stdout and "@@rc 2" in out.stdout, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("tiny_example "))
    assert "entry point bench_example_backbone:SPEC (bench-example-backbone 0.1.0)" in row
    assert "conv1=stem:16 block1=s1:16 block2=s2:32 block3=s3:64 block4=s4:64" in row
    builtin = next(line for line in out.stdout.splitlines() if line.startswith("resnet18 "))
    assert "built-in" in builtin
    assert "Traceback" not in out.stderr
    assert "axes.backbone[0]: unknown backbone 'tiny_exampel'. Did you mean: 'tiny_example'" in out.stderr


def test_a_suite_runs_with_the_plugin_full_and_hybrid(plugin_env):
    tmp, env = plugin_env
    suite = {"name": "plugin", "axes": {"backbone": ["tiny_example"], "source": ["synth-ddsm"], "ft_fraction": [0.5],
                                        "target": ["synth-inbreast"], "transfer": ["full", "hybrid"], "seeds": 1},
             "image_size": 32, "pretrain": {"epochs": 1, "batch_size": 16}, "finetune": {"epochs": 1, "batch_size": 8},
             "data": {"synth-ddsm": {"n_images": 40}, "synth-inbreast": {"n_images": 24}},
             "executor": {"workers": 0}}  # in the runner's own process: one torch import
    path = tmp / "plugin.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = _bench(env, "run", str(path), "--results", str(tmp / "results"), "--reports", str(tmp / "reports"),
                 "--no-progress", cwd=tmp)
    assert out.returncode == 0, out.stderr
    records = {r["cell"]["transfer"]: r for r in load_records(tmp / "results" / "plugin")}
    assert records["full"]["status"] == records["hybrid"]["status"] == "ok"
    hyb = records["hybrid"]["weights"]["transfer"]
    # the plugin has no native slimming: the generic slim top halves s3 and s4 behind the pretrained stem..s2
    assert hyb["slim"].startswith("generic") and hyb["slimmed"] == {"block3": [64, 32], "block4": [64, 32]}
    assert hyb["loaded"] > 0 and hyb["hybrid_stage"] == "block2"
    assert records["hybrid"]["config"]["hybrid_width"] == 0.5 and "hybrid_width" not in records["full"]["config"]


def _suite_with(tmp: Path, backbone: str) -> Path:
    p = tmp / f"{backbone}.yaml"
    p.write_text(yaml.safe_dump({"axes": {"backbone": [backbone], "source": ["random"], "ft_fraction": [0],
                                          "target": ["synth-inbreast"]}}))
    return p
