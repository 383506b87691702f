"""Backbone registry, ImageNet weights offline, and full / hybrid transfer."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from bench.backbones import BACKBONES, create_backbone, stage_boundaries, transfer_weights
from bench.backbones.specs import WeightsNotFoundError, imagenet_state_dict
from bench.registry import UnknownNameError
from bench.train import predict


def test_unknown_backbone_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean: 'resnet18'"):
        BACKBONES.get("resnet81")


@pytest.mark.parametrize("name", ["toy_cnn", "resnet18", "efficientnet_lite0"])
def test_every_backbone_has_five_stages_and_two_class_head(name):
    torch.manual_seed(0)
    m = create_backbone(name, 2).eval()
    bounds = stage_boundaries(m, BACKBONES.get(name).stages)
    assert list(bounds) == ["conv1", "block1", "block2", "block3", "block4"]
    with torch.no_grad():
        assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 2)


@pytest.mark.parametrize("name", ["toy_cnn", "resnet18"])
def test_hybrid_keeps_up_to_block2_and_reinitialises_the_rest(name):
    spec = BACKBONES.get(name)
    torch.manual_seed(0)
    source = create_backbone(name)
    torch.manual_seed(1)
    fresh = create_backbone(name)
    fresh_state = {k: v.clone() for k, v in fresh.state_dict().items()}
    torch.manual_seed(1)
    target = create_backbone(name)
    info = transfer_weights(target, source.state_dict(), mode="hybrid", hybrid_stage="block2", stages=spec.stages)
    b = stage_boundaries(target, spec.stages)
    keys = list(target.state_dict())
    last_block2 = max(i for i, k in enumerate(keys) if k.startswith(b["block2"] + "."))
    for i, (k, v) in enumerate(target.state_dict().items()):
        if v.dtype.is_floating_point and v.numel() > 1:
            want = source.state_dict()[k] if i <= last_block2 else fresh_state[k]
            assert torch.equal(v, want), k
    assert info["loaded"] == last_block2 + 1 and info["kept_random"] == len(keys) - last_block2 - 1


def test_full_transfer_of_a_two_class_source_copies_everything():
    torch.manual_seed(0)
    src = create_backbone("toy_cnn")
    torch.manual_seed(1)
    dst = create_backbone("toy_cnn")
    info = transfer_weights(dst, src.state_dict(), mode="full")
    assert info["kept_random"] == 0
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_imagenet_weights_load_offline_and_recognise_a_cat():
    skimage = pytest.importorskip("skimage")
    sd = imagenet_state_dict("efficientnet_lite0")
    assert len(sd) == 296
    m = create_backbone("efficientnet_lite0", num_classes=1000)
    m.load_state_dict(sd)
    img = skimage.data.chelsea()  # RGB 300x451
    # predict() takes gray uint8; for this check feed RGB through the same normalisation by hand
    x = torch.tensor(img).permute(2, 0, 1).float()[None] / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    x = (x - 0.5) / 0.5
    with torch.no_grad():
        top = m.eval()(x).argmax(1).item()
    assert 281 <= top <= 285, f"ImageNet class {top} is not a cat (281-285)"


def test_imagenet_full_transfer_keeps_features_and_reinitialises_the_1000_class_head():
    sd = imagenet_state_dict("efficientnet_lite0")
    m = create_backbone("efficientnet_lite0", 2)
    info = transfer_weights(m, sd, mode="full")
    assert info["skipped_shape"] == ["classifier.weight", "classifier.bias"]
    assert torch.equal(m.state_dict()["conv_stem.weight"], sd["conv_stem.weight"])
    scores = predict(m, np.zeros((3, 32, 32), np.uint8), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_imagenet_without_local_checkpoint_says_where_to_put_one(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"BENCH_WEIGHTS_DIR/resnet50\.pth"):
        imagenet_state_dict("resnet50")
    torch.manual_seed(0)
    torch.save(create_backbone("resnet50", 1000).state_dict(), tmp_path / "resnet50.pth")
    assert "fc.weight" in imagenet_state_dict("resnet50")


def test_checkpoints_load_with_weights_only(tmp_path, capsys):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump(Evil(), f)
    # refused by torch's weights_only unpickler (never executed), and the message names the file
    with pytest.raises(ValueError, match=r"evil\.pth: not a checkpoint torch can load safely.*Weights only load failed"):
        imagenet_state_dict("toy_cnn", str(p))
    assert "pwned" not in capsys.readouterr().out


# --------------------------------------------------------------------------- names, plugins, resolvers

def test_timm_names_resolve_through_the_one_registry_and_validate_in_suites():
    from bench.suite import SuiteError, build_suite

    assert "timm:resnet10t" in BACKBONES and BACKBONES.origin_of("timm:resnet10t").startswith("timm:<model>")
    spec = BACKBONES.get("timm:resnet10t")
    assert spec.stages == ("act1", "layer1", "layer2", "layer3", "layer4") and spec.channels[-1] == 512
    raw = {"axes": {"backbone": ["timm:resnet10t"], "source": ["random"], "ft_fraction": [0],
                    "target": ["synth-inbreast"]}}
    assert build_suite(raw).cells[0].backbone == "timm:resnet10t"
    raw["axes"]["backbone"] = ["timm:resnet10x"]
    with pytest.raises(SuiteError, match=r"axes.backbone\[0\]: unknown timm model 'resnet10x'. Did you mean: "
                                         r"'resnet10t'"):
        build_suite(raw)


def test_module_factory_names_accept_a_spec_or_a_feature_info_factory(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(
        "import timm\n"
        "from bench.backbones import BackboneSpec\n"
        "from bench.backbones.toy import ToyCNN, CHANNELS\n"
        "SPEC = BackboneSpec(name='whatever', create=lambda n: ToyCNN(n), stages=('conv1','block1','block2','block3',"
        "'block4'), channels=CHANNELS, reductions=(2, 4, 8, 16, 32), head='fc')\n"
        "def small_resnet(num_classes):\n    return timm.create_model('resnet10t', num_classes=num_classes)\n"
        "def no_stages(num_classes):\n    return ToyCNN(num_classes)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = BACKBONES.get("my_nets:SPEC")
    assert spec.name == "my_nets:SPEC" and BACKBONES.origin_of("my_nets:SPEC").startswith("package.module:factory")
    assert create_backbone("my_nets:SPEC", 3).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    assert BACKBONES.get("my_nets:small_resnet").channels == (64, 64, 128, 256, 512)  # from timm feature_info
    with pytest.raises(UnknownNameError, match="has no timm feature_info: declare BackboneSpec.stages"):
        BACKBONES.get("my_nets:no_stages")
    with pytest.raises(UnknownNameError, match="Did you mean: 'SPEC'"):
        BACKBONES.get("my_nets:SPECC")
    with pytest.raises(UnknownNameError, match="cannot import module 'no_such_module'"):
        BACKBONES.get("no_such_module:SPEC")
    assert "no_such_module:SPEC" not in BACKBONES


def test_a_broken_entry_point_breaks_only_its_own_name():
    from importlib.metadata import EntryPoint

    from bench.backbones.specs import as_spec
    from bench.registry import PluginError, Registry

    reg = Registry("backbone", group="bench.test-nothing", coerce=as_spec)
    reg._entry_points = {"broken": EntryPoint("broken", "no_such_pkg.mod:SPEC", "bench.test-nothing"),
                         "good": EntryPoint("good", "bench.backbones.toy:ToyCNN", "bench.test-nothing")}
    assert reg.names() == ["broken", "good"]
    with pytest.raises(PluginError, match=r"plugin 'broken' \(entry point no_such_pkg.mod:SPEC.*failed to import"):
        reg.get("broken")
    assert "broken" not in reg
    with pytest.raises(UnknownNameError, match="has no timm feature_info"):  # a bare factory must expose stages
        reg.get("good")


def test_list_backbones_names_every_origin(capsys):
    from bench.cli import main

    BACKBONES.get("timm:resnet10t")
    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert {"resnet18", "morphhr", "vgg16", "inception_v3", "resnet50", "efficientnet_lite0", "toy_cnn"} <= set(rows)
    assert " built-in " in rows["morphhr"] and "timm:<model>" in rows["timm:resnet10t"]
    assert "missing ($BENCH_WEIGHTS_DIR/vgg16.pth)" in rows["vgg16"] or "BENCH_WEIGHTS_DIR" in os.environ
    assert main(["ls", "backbones"]) == 0 and capsys.readouterr().out == out  # 'ls' stays an alias


# --------------------------------------------------------------------------- ImageNet weights, gray input

def test_imagenet_weights_come_from_timms_local_cache_without_network(tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    monkeypatch.delenv("BENCH_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("BENCH_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"BENCH_WEIGHTS_DIR/resnet18\.pth.*timm's cache"):
        imagenet_state_dict("resnet18")
    repo = timm.models.get_pretrained_cfg("resnet18").hf_hub_id  # e.g. timm/resnet18.a1_in1k
    snap = tmp_path / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("0123abcd")
    torch.manual_seed(3)
    want = create_backbone("resnet18", 1000).state_dict()
    save_file({k: v.contiguous() for k, v in want.items()}, str(snap / "model.safetensors"))
    sd, where = imagenet_state_dict("resnet18", with_origin=True)
    assert where.endswith("model.safetensors")
    assert torch.equal(sd["layer3.0.conv1.weight"], want["layer3.0.conv1.weight"])


@pytest.mark.parametrize("backbone, filename", [("toy_cnn", "toy_cnn.safetensors"),
                                                ("timm:resnet10t", "timm_resnet10t.safetensors"),
                                                ("timm:resnet10t", "timm_resnet10t.pth")])
def test_provenance_hashes_exactly_the_weights_file_that_was_loaded(tmp_path, monkeypatch, backbone, filename):
    """``weights_sha256`` follows the same search as the loading: ``.safetensors`` too, and the file stem of a
    ``timm:`` name (``timm_resnet10t``); it hashes that file's bytes."""
    from safetensors.torch import save_file

    from bench.backbones.specs import find_imagenet_weights
    from bench.provenance import file_sha256, weights_sha256

    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("BENCH_ALLOW_DOWNLOAD", raising=False)
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in create_backbone(backbone, 1000).state_dict().items()}
    path = tmp_path / filename
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    _, where = imagenet_state_dict(backbone, with_origin=True)
    assert where == str(path)
    assert find_imagenet_weights(backbone).path == path
    record = {"weights": {"source": "imagenet"}, "config": {"backbone": backbone}}
    assert weights_sha256(record, tmp_path) == file_sha256(path)


def test_provenance_of_an_explicit_file_and_of_built_in_weights(tmp_path, monkeypatch):
    from bench.provenance import file_sha256, state_dict_sha256, weights_sha256

    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "empty"))
    p = tmp_path / "mine.pth"
    torch.save(create_backbone("toy_cnn", 1000).state_dict(), p)
    explicit = {"weights": {"source": "imagenet"}, "config": {"backbone": "toy_cnn", "weights": str(p)}}
    assert weights_sha256(explicit, tmp_path) == file_sha256(p)
    explicit["config"]["weights"] = str(tmp_path / "gone.pth")
    assert weights_sha256(explicit, tmp_path) is None
    built_in = {"weights": {"source": "imagenet"}, "config": {"backbone": "efficientnet_lite0"}}
    assert weights_sha256(built_in, tmp_path) == state_dict_sha256("efficientnet_lite0", None)
    assert weights_sha256({"weights": {"source": "random"}, "config": {"backbone": "toy_cnn"}}, tmp_path) is None


def test_gray_one_channel_network_with_summed_first_layer_equals_repeated_gray():
    torch.manual_seed(0)
    rgb = create_backbone("toy_cnn", 2).eval()
    gray = create_backbone("toy_cnn", 2, in_chans=1).eval()
    info = transfer_weights(gray, rgb.state_dict(), mode="full")
    assert info["adapted_in_chans"] == ["conv1.0.weight"] and info["kept_random"] == 0
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(gray(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-5)


# --------------------------------------------------------------------------- hybrid width in suites and cells

def test_hybrid_width_enters_only_hybrid_cell_ids():
    from bench.suite import SuiteError, build_suite

    raw = {"axes": {"backbone": ["toy_cnn"], "source": ["synth-ddsm"], "ft_fraction": [0.2],
                    "target": ["synth-inbreast"], "transfer": ["full", "hybrid"]}}
    a = {c.transfer: c for c in build_suite(raw).cells}
    b = {c.transfer: c for c in build_suite({**raw, "hybrid_width": 0.25}).cells}
    assert a["hybrid"].config["hybrid_width"] == 0.5 and b["hybrid"].config["hybrid_width"] == 0.25
    assert "hybrid_width" not in a["full"].config and a["full"].cell_id == b["full"].cell_id
    assert a["hybrid"].cell_id != b["hybrid"].cell_id
    with pytest.raises(SuiteError, match="hybrid_width"):
        build_suite({**raw, "hybrid_width": 1.5})


def test_cell_model_of_a_hybrid_cell_is_slim():
    from bench.runner.cell import create_cell_model
    from bench.suite import build_suite

    raw = {"axes": {"backbone": ["resnet18"], "source": ["synth-ddsm"], "ft_fraction": [0.2],
                    "target": ["synth-inbreast"], "transfer": ["full", "hybrid"]}, "hybrid_stage": "block1"}
    cells = {c.transfer: c for c in build_suite(raw).cells}
    full, hybrid = create_cell_model(cells["full"]), create_cell_model(cells["hybrid"])
    assert full.layer2[0].conv1.out_channels == 128 and hybrid.layer2[0].conv1.out_channels == 64
    assert hybrid.layer1[0].conv1.out_channels == 64  # block1 and before: unchanged, they get the weights
    assert hybrid.bench_hybrid["slimmed"] == {"block2": [128, 64], "block3": [256, 128], "block4": [512, 256]}
