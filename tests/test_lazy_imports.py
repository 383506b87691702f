"""Lazy registries (issue 14): backbone and dataset specs are known without torch or timm.

``bench validate``, ``bench list backbones`` and ``bench plan`` import neither (checked in a fresh interpreter);
the built-ins' specs name their factories lazily and are bound to the real functions once their module is
imported; what the specs declare without timm (where timm's caches keep ImageNet weights) is what timm says.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "pandas", "scipy", "sklearn", "PIL", "pydicom", "imagehash", "skimage")


def _loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (repository root); which heavy modules it left in ``sys.modules``."""
    probe = ("import contextlib, io, json, sys\n"
             "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             + "".join(f"    {line}\n" for line in code.splitlines())
             + f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv, rc", [(["validate", "suites/bulathsinghalage-liu.yaml"], None),
                                      (["list", "backbones"], 0),
                                      (["plan", "smoke"], None)])
def test_validate_list_and_plan_import_neither_torch_nor_timm(argv, rc, tmp_path):
    if argv[0] == "plan":
        argv = [*argv, "--results", str(tmp_path / "results")]
    loaded = _loaded_after(f"from bench.cli import main\nrc = main({argv!r})\n"
                           + (f"assert rc == {rc}, rc\n" if rc is not None else ""))
    assert not loaded["torch"] and not loaded["timm"], loaded


def test_importing_the_registries_loads_no_heavy_library():
    loaded = _loaded_after("import bench.backbones, bench.data, bench.suite\n"
                           "from bench.backbones import BACKBONES\n"
                           "from bench.backbones.specs import imagenet_location\n"
                           "[imagenet_location(n) for n in BACKBONES.names()]\n")
    assert not any(loaded.values()), loaded


def test_every_name_of_bench_backbones_still_resolves():
    import bench.backbones as bb
    import bench.backbones.specs as base

    for name in bb.__all__:
        assert getattr(bb, name) is not None, name
    for name in ("imagenet_state_dict", "find_imagenet_weights", "imagenet_location", "as_spec", "spec_stage_names",
                 "STAGE_MAP_REVISION", "WeightsNotFoundError", "DOWNLOAD_ENV", "timm_cached_file"):
        assert getattr(base, name) is not None, name
    from bench.backbones import build, checkpoint, probe

    assert build.create_backbone and build.reset_head and checkpoint.load_checkpoint and probe.probe_stages
    assert probe.STAGE_MAP_REVISION == base.STAGE_MAP_REVISION and probe.PROBED_STAGES == len(base.STAGE_NAMES)
    from bench.backbones.patch_cnn import PRETRAIN_RECIPE, SPEC
    from bench.backbones.timm_models import IMAGENET_MEAN, RESNET_STAGES
    from bench.backbones.toy import CHANNELS
    assert SPEC is bb.BACKBONES.get("patch_cnn") and SPEC.extra["pretrain"] == PRETRAIN_RECIPE
    assert bb.BACKBONES.get("resnet18").stages == RESNET_STAGES and bb.BACKBONES.get("resnet18").mean == IMAGENET_MEAN
    assert bb.BACKBONES.get("toy_cnn").channels == CHANNELS
    assert bb.toy.ToyCNN is not None  # the submodules stay reachable as attributes


def test_built_in_specs_are_bound_to_their_modules_functions_once_imported():
    from bench.backbones import BACKBONES, create_backbone
    from bench.backbones.builtin import _SPECS
    from bench.backbones.morphhr import (
        _slim,
        create_morphhr,
        morph_resnet18_state,
        morph_resnet18_state_2x,
    )
    from bench.backbones.toy import ToyCNN

    assert BACKBONES.get("morphhr").create is create_morphhr and BACKBONES.get("morphhr").create_slim is _slim
    assert BACKBONES.get("morphhr").adapt_weights is morph_resnet18_state
    assert BACKBONES.get("morphhr_2x").adapt_weights is morph_resnet18_state_2x
    assert isinstance(create_backbone("toy_cnn", 3), ToyCNN)
    assert {s.name for s in _SPECS} == {"efficientnet_lite0", "resnet18", "resnet50", "vgg16", "inception_v3", "morphhr",
                                        "morphhr_2x", "patch_cnn", "toy_cnn"}
    assert all(BACKBONES.get(s.name) is s for s in _SPECS)


def test_lazy_callable_imports_on_call_and_compares_by_target():
    from bench.backbones import LazyCallable

    f = LazyCallable("json:dumps", {"a": 1})
    assert f(sort_keys=True) == '{"a": 1}'
    assert f == LazyCallable("json:dumps", {"a": 1}) != LazyCallable("json:loads")
    with pytest.raises(ValueError, match="package.module:function"):
        LazyCallable("json.dumps")


def test_built_in_stage_names_pass_the_torch_check_too():
    """The built-ins' stage names are checked against ``nn.Module``'s attributes without torch: by a rule
    (conv1, block<N> are never attributes) that this checks with torch."""
    from torch import nn

    from bench.backbones import BACKBONES
    from bench.backbones.specs import _module_attribute

    for name in BACKBONES.names():
        for s in BACKBONES.get(name).stage_names:
            assert not hasattr(nn.Module, s) and not _module_attribute(s), (name, s)
    assert _module_attribute("forward") and _module_attribute("eval")


def test_timm_pretrained_table_is_what_timm_says():
    import timm

    from bench.backbones.builtin import _SPECS, TIMM_PRETRAINED

    names = {s.timm_name for s in _SPECS} - {""}
    assert names == set(TIMM_PRETRAINED)
    for arch, want in TIMM_PRETRAINED.items():
        cfg = timm.models.get_pretrained_cfg(arch)
        assert (cfg.hf_hub_id or "", cfg.hf_hub_filename or "", cfg.url or "") == want, arch


def test_torch_hub_dir_is_torchs_without_importing_it(monkeypatch, tmp_path):
    import torch

    from bench.backbones import specs

    for env in ({}, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, {"TORCH_HOME": str(tmp_path / "th")}):
        with monkeypatch.context() as mp:
            for k in ("TORCH_HOME", "XDG_CACHE_HOME"):
                mp.delenv(k, raising=False)
            for k, v in env.items():
                mp.setenv(k, v)
            want = torch.hub.get_dir()
            mp.delitem(sys.modules, "torch")
            assert specs._torch_hub_dir() == want
