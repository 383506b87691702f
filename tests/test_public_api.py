"""The public Python API (``bench/__init__.py``): every name resolves, ``import bench`` loads no torch, and the
README's example runs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import bench
from conftest import child_env

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_resolves():
    for name in bench.__all__:
        assert getattr(bench, name) is not None, name
    assert set(bench.__all__) <= set(dir(bench))


def test_import_bench_loads_neither_torch_nor_timm():
    code = "import sys, bench; print(sorted(m for m in ('torch', 'timm', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=child_env(ROOT))
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_readmes_python_api_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Python API\n.*?```python\n(.*?)```", text, re.S)
    assert block, "README has a '## Python API' section with a python block"
    code = block.group(1)
    # the same steps on a one-cell suite instead of smoke (the test budget), in a temporary folder
    code = code.replace('load_suite("smoke")', 'build_suite(TINY)').replace('"reports/smoke"', '"reports/tiny"')
    monkeypatch.chdir(tmp_path)
    tiny = {"name": "tiny", "axes": {"backbone": ["toy_cnn"], "source": ["random"], "ft_fraction": [0.5],
                                     "target": ["synth-inbreast"], "seeds": 1},
            "image_size": 32, "finetune": {"epochs": 1, "batch_size": 8},
            "data": {"synth-inbreast": {"n_images": 40}}, "executor": {"workers": 0}}
    exec(compile("from bench import build_suite\n" + code, "README.md", "exec"), {"TINY": tiny})
    assert (tmp_path / "reports" / "tiny" / "report.md").exists()
    assert len(list((tmp_path / "results" / "tiny").glob("*.json"))) == 2  # the record + _suite.json
