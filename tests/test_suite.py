"""Suite validation errors, cell expansion, NA rules and cell ids."""
from __future__ import annotations

import copy
import textwrap

import pytest

from bench.suite import SuiteError, build_suite, load_suite

BASE = {
    "axes": {
        "backbone": ["resnet18"],
        "source": ["random", "imagenet", "synth-ddsm"],
        "ft_fraction": [0, 0.1, 0.2],
        "target": ["synth-inbreast", "synth-ultrasound"],
        "transfer": ["full", "hybrid"],
        "seeds": 2,
    },
}


def suite_with(**changes):
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def error_of(raw) -> str:
    with pytest.raises(SuiteError) as info:
        build_suite(raw)
    return str(info.value)


def test_cell_count_is_product_minus_exclusions():
    s = build_suite(copy.deepcopy(BASE))
    assert len(s.cells) == 1 * 3 * 3 * 2 * 2 * 2
    raw = suite_with(exclude=[{"source": "imagenet", "transfer": "hybrid"}])
    assert len(build_suite(raw).cells) == 72 - 1 * 3 * 2 * 2


def test_na_rules_imagenet_without_finetuning_and_hybrid_without_finetuning():
    s = build_suite(copy.deepcopy(BASE))
    for c in s.cells:
        # random x hybrid runs at the default hybrid_width 0.5: a slimmed network (issue 12)
        expect_na = (c.source == "imagenet" and c.ft_fraction == 0) or (c.transfer == "hybrid" and c.ft_fraction == 0)
        assert (c.na_reason is not None) == expect_na, c.axes
    reason = next(c.na_reason for c in s.cells if c.source == "imagenet" and c.ft_fraction == 0)
    assert "1000-class head" in reason
    assert all(c.pretrain_id is None for c in s.cells if c.na_reason)


def test_cell_ids_are_stable_unique_and_depend_on_config():
    a = build_suite(copy.deepcopy(BASE))
    b = build_suite(copy.deepcopy(BASE))
    assert [c.cell_id for c in a.cells] == [c.cell_id for c in b.cells]
    assert len({c.cell_id for c in a.cells}) == len(a.cells)
    changed = build_suite(suite_with(finetune={"epochs": 3}))
    ids_a = {c.axes["seed"]: c.cell_id for c in a.cells if c.ft_fraction == 0.1}
    ids_c = {c.axes["seed"]: c.cell_id for c in changed.cells if c.ft_fraction == 0.1}
    assert set(ids_a.values()).isdisjoint(ids_c.values())
    # fine-tune settings do not touch cells that do not fine-tune
    no_ft = lambda s: {c.cell_id for c in s.cells if c.ft_fraction == 0}  # noqa: E731
    assert no_ft(a) == no_ft(changed)


def test_pretrain_jobs_one_per_backbone_source_seed():
    s = build_suite(copy.deepcopy(BASE))
    jobs = s.pretrain_jobs
    assert len(jobs) == 2  # one backbone x one medical source x two seeds
    users = [c for c in s.cells if c.pretrain_id and not c.na_reason]
    assert len(users) > len(jobs) and {c.pretrain_id for c in users} == set(jobs)


@pytest.mark.parametrize("changes, must_contain", [
    ({"axes__backbone": ["resnet81"]}, ["axes.backbone[0]", "'resnet81'", "resnet18"]),
    ({"axes__target": ["synth-inbrest"]}, ["axes.target[0]", "'synth-inbrest'", "synth-inbreast"]),
    ({"axes__source": ["imagenett"]}, ["axes.source[0]", "'imagenett'", "imagenet"]),
    ({"axes__transfer": ["hybird"]}, ["axes.transfer[0]", "hybird", "'full' or 'hybrid'"]),
    ({"axes__ft_fraction": [1.5]}, ["axes.ft_fraction", "1.5", "whole number of patients"]),
    ({"finetune__epoch": 3}, ["finetune.epoch", "unknown key", "epochs"]),
    ({"axes__seed": 3}, ["axes.seed", "unknown key", "seeds"]),
    ({"pretrian": {"epochs": 1}}, ["pretrian", "pretrain"]),
    ({"finetune__lr": -1}, ["finetune.lr", "greater than 0"]),
    ({"exclude": [{"sorce": "imagenet"}]}, ["exclude[0].sorce", "source"]),
    ({"exclude": [{"source": "imagnet"}]}, ["exclude[0].source", "imagnet", "imagenet"]),
    ({"data": {"synth-ddsm": {"n_imags": 10}}}, ["data.synth-ddsm.n_imags", "n_images"]),
])
def test_errors_name_field_value_and_closest_names(changes, must_contain):
    msg = error_of(suite_with(**changes))
    for needle in must_contain:
        assert needle in msg, (needle, msg)


def test_errors_name_the_file(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text(textwrap.dedent("""
        axes:
          backbone: [resnet18]
          source: [random]
          ft_fraction: [0.1]
          target: [synth-mias]
          transfer: [ful]
    """))
    with pytest.raises(SuiteError, match=r"typo\.yaml: axes\.transfer\[0\]"):
        load_suite(p)


def test_suite_by_name_and_unknown_name():
    s = load_suite("smoke")
    assert s.name == "smoke" and s.path.name == "smoke.yaml"
    with pytest.raises(SuiteError, match="Did you mean: smoke"):
        load_suite("smok")


def test_smoke_suite_covers_what_the_issue_asks():
    s = load_suite("smoke")
    ax = s.config.axes
    assert {"random", "imagenet"} <= set(ax.source) and any(x.startswith("synth-ddsm") for x in ax.source)
    assert set(ax.ft_fraction) == {0, 0.1, 0.2} and set(ax.transfer) == {"full", "hybrid"}
    assert len(ax.target) >= 2


def test_yaml_is_loaded_safely(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("axes: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(p)


def test_moving_a_dataset_folder_keeps_cell_and_pretraining_ids(tmp_path):
    """Ids name what a cell computes, not where the data sits: moved data keeps the finished cells."""
    axes = {"backbone": ["resnet18"], "source": ["random", "cbis-ddsm"], "ft_fraction": [0, 0.1],
            "target": ["inbreast"], "seeds": 1}

    def ids(root_a, root_b, **inbreast):
        s = build_suite({"axes": axes, "data": {"inbreast": {"root": root_a, **inbreast},
                                                  "cbis-ddsm": {"root": root_b}}})
        return [c.cell_id for c in s.cells], [c.pretrain_id for c in s.cells]

    here = ids("/data/inbreast", "/data/cbis")
    assert ids("/mnt/other/INbreast", "/scratch/CBIS-DDSM") == here
    assert ids("/data/inbreast", "/data/cbis", policy="zhu")[0] != here[0]  # options still count


def test_every_missing_dataset_folder_is_named_at_once(tmp_path, capsys, monkeypatch):
    from bench.cli import main

    monkeypatch.delenv("BENCH_DATA_ROOT", raising=False)
    suite = tmp_path / "two.yaml"
    suite.write_text(textwrap.dedent(f"""
        axes: {{backbone: [resnet18], source: [random, cbis-ddsm], ft_fraction: [0], target: [inbreast], seeds: 1}}
        data:
          inbreast: {{root: {tmp_path / 'nope-inbreast'}}}
          cbis-ddsm: {{root: {tmp_path / 'nope-cbis'}}}
    """))
    rc = main(["run", str(suite), "--results", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    assert "nope-inbreast" in err and "nope-cbis" in err, err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("*.json"))
