"""Checks of backbones against what uses them: a suite's stage names, and a spec against its network.

* :func:`check_suite_stages` (run by every ``load_suite``, so by ``bench validate`` and ``bench run``): every stage
  a suite names (``hybrid_stage`` of its hybrid cells, a ``trainable`` of a fine-tuning schedule: ``from:<stage>``
  or a list of stages) is a stage of the backbone of each cell that uses it; no network is built.
* :func:`check_backbone` (what ``bench validate`` runs for plugins): ``bench validate`` otherwise never builds a
  network, so a wrong stage module, channel count or head would only surface when a hybrid or new-head cell fails
  hours into a run. It builds the network once on a tiny input and compares it with the spec;
  ``tests/test_backbones_contract.py`` remains the full contract.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.backbones._base import BACKBONES, STAGE_NAMES, create_backbone, spec_stage_names
from bench.backbones.hybrid import create_hybrid
from bench.backbones.stages import stage_shapes

__all__ = ["check_backbone", "check_suite_stages"]


def check_suite_stages(cfg, cells, where: str) -> None:
    """Raise :class:`bench.suite.SuiteError` when a suite names a stage that a backbone using it lacks.

    ``cfg`` is the suite's ``SuiteConfig``, ``cells`` its expanded cells (excluded ones are not there, so an
    exclusion is the way to keep a backbone away from a stage it lacks). Checked: ``hybrid_stage`` for every
    hybrid cell, and each ``trainable`` of every cell's fine-tuning schedule; and, so that a typo never waits
    until a train mode is put on the axis (or for a suite without fine-tuning), every ``trainable`` the suite
    defines is a stage of at least one of its backbones. Messages list the backbone's stages (a name that is
    no backbone's stage gets the closest ones).
    """
    from bench.suite import DEFAULT_TRAIN_MODE, SuiteError
    from bench.train_modes import SCHEDULE_PRESETS, parse_trainable

    names = {b: spec_stage_names(BACKBONES.get(b)) for b in cfg.axes.backbone}
    every = tuple(dict.fromkeys(s for b in cfg.axes.backbone for s in names[b]))
    checked = set()
    for cell in cells:
        b, have = cell.backbone, names[cell.backbone]
        stage = cell.config.get("hybrid_stage")
        if stage is not None and stage not in have:
            raise SuiteError(f"{where}: hybrid_stage: backbone {b!r} has no stage {stage!r}; its stages: "
                             f"{', '.join(have)}. Set hybrid_stage to one of them, or exclude its hybrid cells: "
                             f"'exclude: [{{backbone: {b}, transfer: hybrid}}]'")
        for i, st in enumerate((cell.config.get("finetune") or {}).get("schedule") or []):
            value = st.get("trainable", "all")
            if (b, cell.train_mode, i) in checked:
                continue
            checked.add((b, cell.train_mode, i))
            try:
                parse_trainable(value, have)
            except ValueError as exc:
                loc = f"{_schedule_location(cfg, b, cell.train_mode, DEFAULT_TRAIN_MODE)}[{i}].trainable"
                lacks = [s for s in ([value[len("from:"):]] if isinstance(value, str) else value)
                         if s not in (*have, "head")]
                if not lacks or not all(s in every or s in STAGE_NAMES for s in lacks):  # a typo: the closest names
                    raise SuiteError(f"{where}: {loc}: {exc}") from None
                raise SuiteError(f"{where}: {loc}: {value!r}: backbone {b!r} has no stage "
                                 f"{', '.join(map(repr, lacks))}; its stages: {', '.join(have)}, head. Name one "
                                 f"of them, or exclude the backbone's cells of train mode {cell.train_mode!r}: "
                                 f"'exclude: [{{backbone: {b}, train_mode: {cell.train_mode}}}]'") from None
    # every schedule the suite defines, also of a train mode not (yet) on the axis: a typo must not wait for that day
    defined = [("finetune.schedule", cfg.finetune.schedule)]
    defined += [(f"per_backbone.{b}.finetune.schedule", (over.get("finetune") or {}).get("schedule"))
                for b, over in cfg.per_backbone.items()]
    defined += [(f"train_modes.{m}.schedule", mode.get("schedule")) for m, mode in cfg.train_modes.items()]
    for loc, schedule in defined:
        for i, stage in enumerate(SCHEDULE_PRESETS.get(schedule, []) if isinstance(schedule, str) else schedule or []):
            value = stage.get("trainable", "all") if isinstance(stage, dict) else stage.trainable
            try:
                parse_trainable(value, every)
            except ValueError as exc:
                raise SuiteError(f"{where}: {loc}[{i}].trainable: {exc}") from None


def _schedule_location(cfg, backbone: str, mode: str, default: str) -> str:
    """Where a cell's fine-tuning schedule was written: its train mode, per_backbone, or the finetune block."""
    if mode != default and "schedule" in cfg.train_modes.get(mode, {}):
        return f"train_modes.{mode}.schedule"
    if "schedule" in (cfg.per_backbone.get(backbone, {}).get("finetune") or {}):
        return f"per_backbone.{backbone}.finetune.schedule"
    return "finetune.schedule"


def check_backbone(name: str, *, hybrid_stage: str | None = None) -> list[str]:
    """Problems of backbone ``name``'s spec, measured on its network (empty when it is consistent).

    Checks: the network builds and gives 2 logits; every declared stage runs and has the declared channel
    count; the declared ``head`` is an ``nn.Linear`` (or the model has timm's ``reset_classifier``); with
    ``hybrid_stage``, the hybrid network of that stage builds and runs.
    """
    spec = BACKBONES.get(name)
    side = max(32, spec.min_size)
    x = torch.zeros(2, 3, side, side)
    problems: list[str] = []
    torch.manual_seed(0)
    try:
        model = create_backbone(name, 2).eval()
        with torch.no_grad():
            out = model(x)
        if tuple(out.shape) != (2, 2):
            problems.append(f"forward of 2 images gives shape {tuple(out.shape)}, not (2, 2): the factory must "
                            "honour num_classes")
        shapes = stage_shapes(model, spec)
    except Exception as exc:  # noqa: BLE001 -- any failure is the finding
        return [*problems, f"building or running the network failed: {type(exc).__name__}: {exc}"]
    got = [s[0] if s else None for s in shapes.values()]
    for stage, module, want, have in zip(spec_stage_names(spec), spec.stages, spec.channels, got):
        if want != have:
            problems.append(f"stage {stage} ({module!r}) has {have} output channels, the spec declares {want}: fix "
                            "BackboneSpec.channels")
    if spec.head and not hasattr(model, "reset_classifier"):
        head = dict(model.named_modules()).get(spec.head)
        if not isinstance(head, nn.Linear):
            what = "no such submodule" if head is None else f"a {type(head).__name__}"
            problems.append(f"head {spec.head!r} is {what}, not an nn.Linear: point BackboneSpec.head at the final "
                            "nn.Linear")
    if hybrid_stage and hybrid_stage in spec_stage_names(spec) and not problems:  # else the suite excludes it
        try:
            with torch.no_grad():
                create_hybrid(name, 2, stage=hybrid_stage).eval()(x)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"the hybrid network at {hybrid_stage} fails: {type(exc).__name__}: {exc}")
    return problems
