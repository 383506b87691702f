"""What a user writing a backbone plugin from the README ran into: ModuleList stages, hybrid + new head with a
declared head, a plugin module that only defines its spec, and which plugin a record came from."""
from __future__ import annotations

import textwrap

import torch

from bench.backbones import BACKBONES, create_hybrid, register_backbone
from bench.suite import build_suite

PLUGIN = textwrap.dedent("""
    from torch import nn
    from bench.backbones import BackboneSpec

    def _stage(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class ListNet(nn.Module):
        '''Stages held in an nn.ModuleList (never called itself), head inside a Dropout -> Linear Sequential.'''
        def __init__(self, num_classes=2, in_chans=3):
            super().__init__()
            self.stem = _stage(in_chans, 8)
            self.stages = nn.ModuleList([_stage(8, 16), _stage(16, 24), _stage(24, 32), _stage(32, 32)])
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(32, num_classes))
        def forward(self, x):
            x = self.stem(x)
            for s in self.stages:
                x = s(x)
            return self.head(x.mean((2, 3)))

    SPEC = BackboneSpec(name=NAME, create=lambda num_classes, in_chans=3: ListNet(num_classes, in_chans),
                        stages=("stem", "stages.0", "stages.1", "stages.2", "stages.3"), channels=(8, 16, 24, 32, 32),
                        reductions=(2, 4, 8, 16, 32), head="head.1")
""")


def _write_plugin(tmp_path, monkeypatch, module: str, name: str) -> None:
    (tmp_path / f"{module}.py").write_text(PLUGIN.replace("NAME", repr(name)))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_hybrid_of_a_backbone_with_modulelist_stages_and_a_new_head(tmp_path, monkeypatch):
    from bench.train_modes import replace_head

    _write_plugin(tmp_path, monkeypatch, "listnet_plugin", "listnet_hybrid")
    import listnet_plugin

    register_backbone(listnet_plugin.SPEC)
    model = create_hybrid("listnet_hybrid", 2, stage="block2", width=0.5)
    assert model.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 2)  # the kept stages.0/1 survived the cut
    assert model.bench_hybrid["slimmed"] == {"block3": [32, 16], "block4": [32, 16]}
    name = replace_head(model, hidden=8, dropout=0.2)  # the declared head 'head.1' is not in the hybrid network
    assert model.get_submodule(name) is model.get_classifier()
    assert model.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 2)


def test_a_plugin_module_that_only_defines_its_spec_works_from_plugins(tmp_path, monkeypatch):
    from bench.provenance import backbone_origin

    _write_plugin(tmp_path, monkeypatch, "listnet_only_spec", "listnet_named")
    assert "listnet_named" not in BACKBONES.names()
    suite = build_suite({"plugins": ["listnet_only_spec"],
                         "axes": {"backbone": ["listnet_named"], "source": ["random"], "ft_fraction": [0],
                                  "target": ["synth-inbreast"], "seeds": 1}})
    assert [c.backbone for c in suite.cells] == ["listnet_named"]
    assert backbone_origin("listnet_named") == "plugin module listnet_only_spec"
    assert backbone_origin("resnet18") == "built-in"


def test_a_plugin_in_a_misspelt_entry_point_group_is_named(monkeypatch):
    from importlib.metadata import EntryPoint, EntryPoints

    import bench.registry as registry
    from bench.registry import UnknownNameError

    real = registry.entry_points
    typo = EntryPoints([EntryPoint(name="mynet_typo", value="mynet:SPEC", group="bench.backbone")])

    class AllGroups:
        groups = {*real().groups, "bench.backbone"}

    def fake(**kw):
        if kw.get("group") == "bench.backbone":
            return typo
        return real(**kw) if kw else AllGroups()

    monkeypatch.setattr(registry, "entry_points", fake)
    try:
        BACKBONES.get("mynet_typo")
    except UnknownNameError as exc:
        assert "declared in entry-point group 'bench.backbone', not 'bench.backbones'" in str(exc)
    else:
        raise AssertionError("an unknown name must raise")


def _validate(tmp_path, module: str, name: str, capsys, **spec_changes) -> tuple[int, str, str]:
    from bench.cli import main

    text = PLUGIN.replace("NAME", repr(name))
    for old, new in spec_changes.values():
        assert old in text
        text = text.replace(old, new)
    (tmp_path / f"{module}.py").write_text(text)
    suite = tmp_path / f"{module}.yaml"
    suite.write_text(f"plugins: [{module}]\naxes: {{backbone: [{name}], source: [random], ft_fraction: [0, 0.5], "
                     "target: [synth-inbreast], transfer: [full, hybrid], seeds: 1}\n")
    rc = main(["validate", str(suite)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_validate_builds_a_plugin_and_names_what_its_spec_gets_wrong(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    rc, out, err = _validate(tmp_path, "lv_ok", "lv_ok_net", capsys)
    assert rc == 0 and "backbone lv_ok_net (plugin module lv_ok): built, spec OK" in out, out + err
    rc, out, err = _validate(tmp_path, "lv_stage", "lv_stage_net", capsys,
                             stage=('"stages.0", "stages.1"', '"stage.0", "stages.1"'))
    assert rc == 2 and "'stage.0'" in err and "fix BackboneSpec.stages" in err and "Traceback" not in err, err
    rc, out, err = _validate(tmp_path, "lv_chan", "lv_chan_net", capsys, chan=("(8, 16, 24, 32, 32)", "(8, 16, 24, 64, 32)"))
    assert rc == 2 and "stage block3 ('stages.2') has 32 output channels, the spec declares 64" in err, err
    rc, out, err = _validate(tmp_path, "lv_head", "lv_head_net", capsys, head=('head="head.1"', 'head="head"'))
    assert rc == 2 and "head 'head' is a Sequential, not an nn.Linear" in err, err
