"""Backbones with another number of stages than five (issue 13, item 6): a 3-stage plugin network, never padded.

A spec declares the stages its network has (here 3: conv1, block1, block2 by default, or its own ``stage_names``);
every stage a suite names (``hybrid_stage``, ``trainable: from:<stage>``) is checked against the stages of each
backbone that uses it. The built-ins keep conv1, block1 .. block4 and their cell ids. Tiny networks, 32 px, CPU.
"""
from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.backbones import (
    BACKBONES,
    BackboneSpec,
    create_backbone,
    create_hybrid,
    freeze_up_to,
    parameters_after,
    register_backbone,
    stage_boundaries,
    stage_names,
    stage_of_tensors,
    stage_shapes,
    transfer_weights,
)
from bench.backbones.check import check_backbone
from bench.registry import PluginError
from bench.suite import SuiteError, build_suite
from bench.train_modes import trainable_parameters

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md"

PLUGIN = textwrap.dedent("""
    from torch import nn
    from bench.backbones import BackboneSpec

    def _stage(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class Tiny3(nn.Module):
        '''Three stride-2 stages, global average pooling, a linear head: no stage to pad.'''
        def __init__(self, num_classes=2, in_chans=3):
            super().__init__()
            self.stem, self.s1, self.s2 = _stage(in_chans, 8), _stage(8, 16), _stage(16, 16)
            self.fc = nn.Linear(16, num_classes)
        def forward(self, x):
            return self.fc(self.s2(self.s1(self.stem(x))).mean((2, 3)))

    def create(num_classes, in_chans=3):
        return Tiny3(num_classes, in_chans)

    SPEC = BackboneSpec(name="tiny3_stages", create=create, stages=("stem", "s1", "s2"), channels=(8, 16, 16),
                        reductions=(2, 4, 8), head="fc", min_size=32)
    NAMED = BackboneSpec(name="tiny3_named", create=create, stages=("stem", "s1", "s2"), channels=(8, 16, 16),
                         reductions=(2, 4, 8), head="fc", min_size=32, stage_names=("stem", "mid", "top"))
""")
FAULTS = textwrap.dedent("""
    from bench.backbones import BackboneSpec
    from stages_plugin import create

    LENGTHS = BackboneSpec(name="lengths", create=create, stages=("stem", "s1", "s2"), channels=(8, 16),
                           reductions=(2, 4, 8), head="fc")
""")
AXES = {"source": ["random"], "ft_fraction": [0.5], "target": ["synth-inbreast"], "seeds": 1}


@pytest.fixture(scope="module")
def _on_path(tmp_path_factory):
    """The plugin modules on sys.path (``plugins: [stages_plugin]`` works)."""
    folder = tmp_path_factory.mktemp("stages_plugin")
    (folder / "stages_plugin.py").write_text(PLUGIN)
    (folder / "stages_faults.py").write_text(FAULTS)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def _register() -> None:
    """The plugin's two specs registered (called in each test, so that a refused spec fails it, not its set-up)."""
    import stages_plugin

    for spec in (stages_plugin.SPEC, stages_plugin.NAMED):
        if spec.name not in BACKBONES.names():
            register_backbone(spec)  # until issue 13: "stages, channels and reductions must each have 5 entries"


def _param_names(prefixes: tuple[str, ...], model) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith(prefixes)}


# --------------------------------------------------------------------------- the network

def test_a_three_stage_spec_is_accepted_with_the_stage_names_it_has(_on_path):
    _register()
    spec = BACKBONES.get("tiny3_stages")  # until issue 13: "stages, channels and reductions must each have 5 entries"
    assert spec.stage_names == ("conv1", "block1", "block2")
    assert [r["stage"] for r in spec.stage_table()] == ["conv1", "block1", "block2"]
    assert BACKBONES.get("tiny3_named").stage_names == ("stem", "mid", "top")
    assert BACKBONES.get("toy_cnn").stage_names == ("conv1", "block1", "block2", "block3", "block4")
    assert check_backbone("tiny3_stages", hybrid_stage="block1") == []
    assert check_backbone("tiny3_named", hybrid_stage="mid") == []


def test_forward_and_the_features_of_each_stage(_on_path):
    _register()
    from bench.runner.svcca import layer_activations

    spec = BACKBONES.get("tiny3_stages")
    torch.manual_seed(0)
    model = create_backbone("tiny3_stages", 2).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    assert stage_names(model) == ("conv1", "block1", "block2")
    assert stage_shapes(model, spec) == {"conv1": (8, 16, 16), "block1": (16, 8, 8), "block2": (16, 4, 4)}
    assert set(stage_of_tensors(model).values()) == {"conv1", "block1", "block2", "head"}
    # the per-stage taps SVCCA records
    modules = stage_boundaries(model, spec)
    assert modules == {"conv1": "stem", "block1": "s1", "block2": "s2"}
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32), dtype=np.uint8)
    acts = layer_activations(model, images, modules, mean=spec.mean, std=spec.std, pooling="mean",
                             device=torch.device("cpu"))
    assert {k: v.shape for k, v in acts.items()} == {"conv1": (3, 8), "block1": (3, 16), "block2": (3, 16)}


def test_full_and_hybrid_transfer_at_a_stage_it_has(_on_path):
    _register()
    torch.manual_seed(0)
    source = create_backbone("tiny3_stages", 2)
    torch.manual_seed(1)
    full = create_backbone("tiny3_stages", 2)
    info = transfer_weights(full, source.state_dict(), mode="full")
    assert info["kept_random"] == 0
    torch.manual_seed(1)
    hybrid = create_hybrid("tiny3_stages", 2, stage="block1", width=0.5)
    assert hybrid.bench_hybrid["slimmed"] == {"block2": [16, 8]}  # the generic slim top
    info = transfer_weights(hybrid, source.state_dict(), mode="hybrid", hybrid_stage="block1")
    assert info["hybrid_stage"] == "block1" and info["boundary"] == "trunk.body.s1"
    stages = stage_of_tensors(hybrid)
    upto = [k for k, s in stages.items() if s in ("conv1", "block1")]
    assert upto and info["loaded"] == len(upto) and info["kept_random"] == len(stages) - len(upto)
    for k in upto:
        assert torch.equal(hybrid.state_dict()[k], source.state_dict()[k[len("trunk.body."):]]), k
    with torch.no_grad():
        assert hybrid.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    # at its last stage: nothing to slim (what block4 is to a five-stage backbone)
    assert create_hybrid("tiny3_stages", 2, stage="block2").bench_hybrid["slimmed"] == {}
    with pytest.raises(ValueError, match=r"hybrid stage must be one of conv1, block1, block2 \(the stages of "
                                         r"backbone 'tiny3_stages'\); got 'block3'"):
        create_hybrid("tiny3_stages", 2, stage="block3")


def test_training_from_a_stage_it_has_and_never_from_one_it_lacks(_on_path):
    _register()
    torch.manual_seed(0)
    model = create_backbone("tiny3_stages", 2)
    assert trainable_parameters(model, "from:block1") == _param_names(("s1.", "s2.", "fc."), model)
    assert trainable_parameters(model, ["conv1", "head"]) == _param_names(("stem.", "fc."), model)
    assert {id(p) for p in parameters_after(model, "block1")} == {
        id(p) for n, p in model.named_parameters() if n.startswith(("s2.", "fc."))}
    assert set(freeze_up_to(model, "block1")) == _param_names(("stem.", "s1."), model)
    with pytest.raises(ValueError, match=r"unknown stage 'block3'.* Stages: conv1, block1, block2\."):
        trainable_parameters(model, "from:block3")  # before issue 13 a missing stage silently trained the head only
    with pytest.raises(ValueError, match=r"stage must be one of conv1, block1, block2, head"):
        freeze_up_to(model, "block3")


def test_stage_names_of_its_own(_on_path):
    _register()
    torch.manual_seed(0)
    model = create_backbone("tiny3_named", 2)
    assert trainable_parameters(model, "from:mid") == _param_names(("s1.", "s2.", "fc."), model)
    hybrid = create_hybrid("tiny3_named", 2, stage="mid", width=0.5)
    assert hybrid.bench_hybrid["slimmed"] == {"top": [16, 8]} and stage_names(hybrid) == ("stem", "mid", "top")
    suite = build_suite({"axes": {**AXES, "backbone": ["tiny3_named"], "transfer": ["full", "hybrid"],
                                  "train_mode": ["ft"]},
                         "hybrid_stage": "mid",
                         "train_modes": {"ft": {"schedule": [{"trainable": "from:top", "epochs": 1, "lr": 1e-3}]}}})
    assert {c.config["finetune"]["schedule"][0]["trainable"] for c in suite.cells} == {"from:top"}


def test_a_short_suite_runs_full_hybrid_and_from_a_stage(_on_path, tmp_path):
    _register()
    from bench.records import load_records
    from bench.runner import run_suite

    raw = {"name": "three-stages", "plugins": ["stages_plugin"],
           "axes": {**AXES, "backbone": ["tiny3_stages"], "source": ["synth-ddsm"], "transfer": ["full", "hybrid"],
                    "train_mode": ["default", "ft"]},
           "hybrid_stage": "block1", "image_size": 32,
           "pretrain": {"epochs": 1, "batch_size": 16}, "finetune": {"epochs": 1, "batch_size": 8},
           "train_modes": {"ft": {"schedule": [{"trainable": "head", "epochs": 1, "lr": 1e-3},
                                               {"trainable": "from:block1", "epochs": 1, "lr": 1e-3}]}},
           "data": {"synth-ddsm": {"n_images": 40}, "synth-inbreast": {"n_images": 24}},
           "executor": {"workers": 0}}
    suite = build_suite(raw)
    run_suite(suite, results_root=tmp_path, progress=False, log=lambda m: None)
    records = {(r["cell"]["transfer"], r["cell"]["train_mode"]): r for r in load_records(tmp_path / "three-stages")}
    assert len(records) == 4 and all(r["status"] == "ok" for r in records.values()), records
    for mode in ("default", "ft"):
        hyb = records[("hybrid", mode)]["weights"]["transfer"]
        assert hyb["hybrid_stage"] == "block1" and hyb["slimmed"] == {"block2": [16, 8]} and hyb["loaded"] > 0
        assert records[("full", mode)]["weights"]["transfer"]["kept_random"] == 0
    assert [e["stage"] for e in records[("full", "ft")]["history"]] == [1, 2]


# --------------------------------------------------------------------------- what validation says

def _suite_file(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return str(p)


def _validate(path: str, capsys) -> tuple[int, str]:
    from bench.cli import main

    rc = main(["validate", path])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, err


def test_a_stage_a_backbone_lacks_is_an_error_naming_its_stages(_on_path, tmp_path, capsys):
    _register()
    axes = "{backbone: [tiny3_stages, toy_cnn], source: [random], ft_fraction: [0.5], target: [synth-inbreast]"
    path = _suite_file(tmp_path, "hybrid", f"plugins: [stages_plugin]\naxes: {axes}, transfer: [full, hybrid]}}\n"
                                           "hybrid_stage: block3\n")
    rc, err = _validate(path, capsys)
    message = ("error: <tmp>/hybrid.yaml: hybrid_stage: backbone 'tiny3_stages' has no stage 'block3'; its stages: "
               "conv1, block1, block2. Set hybrid_stage to one of them, or exclude its hybrid cells: "
               "'exclude: [{backbone: tiny3_stages, transfer: hybrid}]'")
    assert rc == 2 and err.strip().replace(str(tmp_path), "<tmp>") == message, err
    assert f"| 2 | `{message}` |" in DOC.read_text(), "docs/bad-inputs.md: row hybrid-stage-the-plugin-lacks"
    # the remedy it names works (toy_cnn keeps its hybrid cells at block3)
    excluded = build_suite({"plugins": ["stages_plugin"], "hybrid_stage": "block3",
                            "axes": {**AXES, "backbone": ["tiny3_stages", "toy_cnn"], "transfer": ["full", "hybrid"]},
                            "exclude": [{"backbone": "tiny3_stages", "transfer": "hybrid"}]})
    assert sorted((c.backbone, c.transfer) for c in excluded.cells) == [
        ("tiny3_stages", "full"), ("toy_cnn", "full"), ("toy_cnn", "hybrid")]
    with pytest.raises(SuiteError, match=r"train_modes\.ft\.schedule\[1\]\.trainable: 'from:block3': backbone "
                                         r"'tiny3_stages' has no stage 'block3'; its stages: conv1, block1, block2, "
                                         r"head\. .*exclude: \[\{backbone: tiny3_stages, train_mode: ft\}\]"):
        build_suite({"axes": {**AXES, "backbone": ["toy_cnn", "tiny3_stages"], "train_mode": ["ft"]},
                     "train_modes": {"ft": {"schedule": [{"trainable": "head", "epochs": 1, "lr": 1e-3},
                                                         {"trainable": "from:block3", "epochs": 1, "lr": 1e-3}]}}})
    # a preset made for five stages names the stage the network lacks, not a typo
    with pytest.raises(SuiteError, match=r"train_modes\.ft\.schedule\[1\]\.trainable: 'from:block4': backbone "
                                         r"'tiny3_stages' has no stage 'block4'"):
        build_suite({"axes": {**AXES, "backbone": ["tiny3_stages"], "train_mode": ["ft"]},
                     "train_modes": {"ft": {"schedule": "shen-3stage"}}})
    # a train mode not on the axis: a typo still fails at once (against every backbone's stages)
    with pytest.raises(SuiteError, match=r"train_modes\.later\.schedule\[0\]\.trainable: trainable 'from:blok1': "
                                         r"unknown stage 'blok1'\. Did you mean: 'block1'"):
        build_suite({"axes": {**AXES, "backbone": ["tiny3_stages"]},
                     "train_modes": {"later": {"schedule": [{"trainable": "from:blok1", "epochs": 1, "lr": 1e-3}]}}})
    # built-ins: a stage they lack is named the same way (hybrid_stage used to be a fixed list of five)
    with pytest.raises(SuiteError, match=r"hybrid_stage: backbone 'toy_cnn' has no stage 'block5'; its stages: "
                                         r"conv1, block1, block2, block3, block4\."):
        build_suite({"axes": {**AXES, "backbone": ["toy_cnn"], "transfer": ["hybrid"]}, "hybrid_stage": "block5"})


def test_a_spec_whose_lengths_disagree_is_named(_on_path, tmp_path, capsys):
    _register()
    path = _suite_file(tmp_path, "lengths", "axes: {backbone: ['stages_faults:LENGTHS'], source: [random], "
                                            "ft_fraction: [0], target: [synth-inbreast]}\n")
    rc, err = _validate(path, capsys)
    message = ("error: <tmp>/lengths.yaml: axes.backbone[0]: backbone 'stages_faults:LENGTHS': stages, channels and "
               "reductions must have the same number of entries, one per stage in forward order (1 or more); got "
               "3 stages ('stem', 's1', 's2'), 2 channels (8, 16), 3 reductions (2, 4, 8)")
    assert rc == 2 and err.strip().replace(str(tmp_path), "<tmp>") == message, err
    assert f"| 2 | `{message}` |" in DOC.read_text(), "docs/bad-inputs.md: row spec-lengths-disagree"
    import stages_plugin

    base = stages_plugin.SPEC
    lengths = "stages, channels, reductions and stage_names must have the same number of entries"
    for change, text in [({"stage_names": ("a", "b")}, lengths),
                         ({"stages": (), "channels": (), "reductions": ()}, "cannot determine its stages"),
                         ({"stage_names": ("stem", "head", "top")}, "stage name 'head'"),
                         ({"stage_names": ("a", "a", "b")}, "name 'a' more than once"),
                         ({"stage_names": ("a", "b.c", "d")}, "stage name 'b.c'")]:
        with pytest.raises(PluginError, match=text):
            register_backbone(dataclasses.replace(base, name="bad_stages", **change))
    assert "bad_stages" not in BACKBONES.names()


def test_validate_builds_a_three_stage_plugin(_on_path, tmp_path, capsys):
    _register()
    path = _suite_file(tmp_path, "ok", "plugins: [stages_plugin]\naxes: {backbone: [tiny3_stages], source: [random], "
                                       "ft_fraction: [0.5], target: [synth-inbreast], transfer: [full, hybrid]}\n"
                                       "hybrid_stage: block1\n")
    from bench.cli import main

    assert main(["validate", path, "--build"]) == 0  # --build: also a backbone registered outside a plugin import
    out, err = capsys.readouterr()
    assert "backbone tiny3_stages (" in out and "): built, spec OK" in out, out + err


# --------------------------------------------------------------------------- the built-ins did not move

def test_built_in_backbones_keep_their_stages_and_cell_ids():
    """Ids computed before issue 13's change (hybrid, from:<stage>, vgg16's stage map revision, patch_cnn)."""
    falconi = {"axes": {"backbone": ["vgg16", "resnet50"], "source": ["imagenet"], "ft_fraction": [0.8],
                        "target": ["cbis-ddsm"], "transfer": ["full"],
                        "train_mode": ["tl", "ft", "ft-block2-fc", "ft-block4"], "seeds": 1},
               "exclude": [{"backbone": "vgg16", "train_mode": ["ft-block4"]},
                           {"backbone": "resnet50", "train_mode": ["ft", "ft-block2-fc"]}],
               "image_size": 320,
               "finetune": {"batch_size": 32, "augment": "falconi",
                            "early_stopping": {"val_fraction": 0.125, "metric": "loss", "patience": 50}},
               "train_modes": {"tl": {"schedule": "falconi-tl", "head": "falconi-tl"},
                               "ft": {"schedule": "falconi-ft", "head": "falconi-ft"},
                               "ft-block2-fc": {"head": "falconi-tl", "schedule": [
                                   {"trainable": "from:block2", "epochs": 1000, "lr": 2.0e-7, "weight_decay": 0.0,
                                    "lr_decay": "constant"}]},
                               "ft-block4": {"head": "falconi-ft", "schedule": [
                                   {"trainable": "from:block4", "epochs": 1000, "lr": 2.0e-7, "weight_decay": 0.0,
                                    "lr_decay": "constant"}]}},
               "data": {"cbis-ddsm": {"abnormality": "mass", "mode": "roi", "roi_pipeline": "falconi"}}}
    hybrid = {"axes": {"backbone": ["resnet18", "patch_cnn"], "source": ["random", "synth-ddsm"], "ft_fraction": [0.1],
                       "target": ["synth-inbreast"], "transfer": ["full", "hybrid"], "seeds": 1},
              "image_size": 64, "hybrid_stage": "block2", "pretrain": {"epochs": 5, "lr": 0.001, "batch_size": 32},
              "finetune": {"epochs": 8, "lr": 0.0003, "batch_size": 16}, "data": {"synth-ddsm": {"n_images": 1000}}}
    ids = {f"{c.backbone}/{c.source}/{c.transfer}/{c.train_mode}": c.cell_id
           for raw in (falconi, hybrid) for c in build_suite(raw).cells}
    assert ids == {
        "vgg16/imagenet/full/tl": "a8292f2be82d8ebe",
        "vgg16/imagenet/full/ft": "9ebca38a65deded1",
        "vgg16/imagenet/full/ft-block2-fc": "38080793b59f09d7",
        "resnet50/imagenet/full/tl": "fffde7f3e38e377d",
        "resnet50/imagenet/full/ft-block4": "bde7e2bb2a91fb21",
        "resnet18/random/full/default": "b75c091d92c31e47",
        "resnet18/random/hybrid/default": "c0cdc0cc21ca02cd",
        "resnet18/synth-ddsm/full/default": "fb6fb2726e83c6cb",
        "resnet18/synth-ddsm/hybrid/default": "63d5782fe457f6b2",
        "patch_cnn/random/full/default": "4fe91ecb0ccd2f3f",
        "patch_cnn/random/hybrid/default": "5ce255bbe3ec8213",
        "patch_cnn/synth-ddsm/full/default": "4c38fbab0651958c",
        "patch_cnn/synth-ddsm/hybrid/default": "69f342555e45d8a2",
    }
    for name in ("toy_cnn", "resnet18", "patch_cnn", "morphhr"):
        assert BACKBONES.get(name).stage_names == ("conv1", "block1", "block2", "block3", "block4"), name


def test_a_spec_built_by_hand_gets_the_default_names_without_registering():
    spec = BackboneSpec(name="by_hand", create=lambda n: None, stages=("a", "b"), channels=(1, 2), reductions=(2, 4))
    assert spec.stage_table()[1]["stage"] == "block1"


def test_the_readme_plugin_section_matches_the_example_and_the_registry():
    """The README's "(N lines" is the example file's line count; its pyproject names the group bench reads."""
    import re

    root = Path(__file__).resolve().parent.parent
    readme = root.joinpath("README.md").read_text()
    section = readme[readme.index("A plugin is a package with a `BackboneSpec`"):]
    example = root / "examples" / "bench-example-backbone" / "bench_example_backbone" / "__init__.py"
    claimed = int(re.search(r"`bench_example_backbone/__init__.py` \((\d+) lines", section).group(1))
    assert claimed == len(example.read_text().splitlines())
    toml = section.split("```toml\n", 1)[1].split("```", 1)[0]
    assert f'[project.entry-points."{BACKBONES.group}"]' in toml and "[build-system]" in toml
    assert f'[project.entry-points."{BACKBONES.group}"]' in (example.parent.parent / "pyproject.toml").read_text()
