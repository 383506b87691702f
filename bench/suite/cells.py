"""Cells: the product of a suite's axes minus exclusions, each with its resolved config and content-hash id.

A cell's config is everything its result depends on, and its id is the hash of that config, so a record on disk is
always matched to exactly the config that produced it. The ids of existing suites must never change: every key
that was added later enters a config only when it differs from what it was before.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from pydantic import ValidationError

from bench.suite.axes import parse_ft_fraction
from bench.suite.base import (
    DEFAULT_TRAIN_MODE,
    ONE_STAGE_KEYS,
    PROTOCOL_VERSION,
    SPECIAL_SOURCES,
    SuiteError,
    closest_hint,
)
from bench.suite.messages import check_unknown_keys, format_errors
from bench.suite.schema import Cell, FinetuneSettings, SuiteConfig, recalibration_in_id


def content_hash(obj: Any, n: int = 16) -> str:
    """Stable hash of a JSON-able object (key order and float formatting independent)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


DATA_KEYS = ("target_data", "source_data")


def identity_hash(config: dict) -> str:
    """Id of a cell, pre-training or SVCCA config: its content hash with every dataset's ``root`` left out.

    Where a dataset sits on disk does not change what a cell computes, so moving the data (or running the
    same suite on another machine) keeps the ids and the finished cells; the images a cell used are in its
    record's ``split.hash``.
    """
    def strip(x):
        if isinstance(x, dict):
            return {k: ({kk: vv for kk, vv in v.items() if kk != "root"} if k in DATA_KEYS and isinstance(v, dict)
                        else strip(v)) for k, v in x.items()}
        return x
    return content_hash(strip(config))


def dataset_options(dname: str, opts: dict | None, where: str) -> dict:
    """Validate ``data.<dname>`` against the dataset's options model; return the resolved options."""
    from bench.data import DATASETS

    spec = DATASETS.get(dname)
    opts = dict(opts or {})
    root = opts.pop("root", None)
    check_unknown_keys(opts, spec.options, where, ("data", dname))
    try:
        resolved = spec.options(**opts).model_dump(mode="json")
    except ValidationError as exc:
        raise SuiteError(format_errors(exc, where, f"data.{dname}.")) from None
    if root is not None:
        resolved["root"] = str(root)
    return resolved


PER_BACKBONE_KEYS = ("image_size", "pretrain", "finetune")


def backbone_config(cfg: SuiteConfig, backbone: str, where: str = "<suite>") -> SuiteConfig:
    """The suite's settings as one backbone's cells see them: ``per_backbone.<backbone>`` merged in.

    ``image_size`` replaces the suite's; ``pretrain`` and ``finetune`` update the suite's blocks key by key
    (a ``schedule`` drops the one-stage ``epochs/lr/weight_decay/warmup_epochs``, and the other way round, as
    in ``train_modes``). Without an entry the suite's own settings, so cell ids do not change.
    """
    over = cfg.per_backbone.get(backbone)
    if not over:
        return cfg
    update: dict[str, Any] = {}
    for key, value in over.items():
        if key == "image_size":
            update[key] = value
            continue
        model = type(getattr(cfg, key))
        if not isinstance(value, dict):
            raise SuiteError(f"{where}: per_backbone.{backbone}.{key}: a mapping of {key} fields, got {value!r}")
        check_unknown_keys(value, model, where, ("per_backbone", backbone, key))
        update[key] = _merged(getattr(cfg, key).model_dump(exclude_unset=True), value)
    raw = {**cfg.model_dump(exclude_unset=True), **update, "per_backbone": {}}
    try:
        return SuiteConfig(**raw)
    except ValidationError as exc:
        raise SuiteError(format_errors(exc, where, f"per_backbone.{backbone}.")) from None


def _merged(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``; a schedule and the one-stage fields replace each other."""
    merged = dict(base)
    if "schedule" in update:
        for k in ONE_STAGE_KEYS:
            merged.pop(k, None)
    if any(k in update for k in ONE_STAGE_KEYS):
        merged.pop("schedule", None)
    return {**merged, **update}


def train_modes(cfg: SuiteConfig, where: str = "<suite>") -> dict[str, FinetuneSettings]:
    """The fine-tuning settings of every train mode on ``axes.train_mode``, by name.

    ``default`` is the suite's ``finetune`` block; a named mode is ``finetune`` updated with what the mode
    lists. A mode that gives a ``schedule`` drops the block's one-stage ``epochs``/``lr``/``weight_decay``/
    ``warmup_epochs``, and a mode that gives any of those drops the block's ``schedule``.
    """
    if DEFAULT_TRAIN_MODE in cfg.train_modes:
        raise SuiteError(f"{where}: train_modes.{DEFAULT_TRAIN_MODE}: the name {DEFAULT_TRAIN_MODE!r} is reserved for "
                         "the 'finetune' block itself; change 'finetune', or give this mode another name")
    base = cfg.finetune.model_dump(exclude_unset=True)
    # every defined mode is checked, also one not (yet) on the axis: a typo in it must not wait for that day
    settings: dict[str, FinetuneSettings] = {}
    for name, mode in cfg.train_modes.items():  # each a mapping: pydantic checked that
        check_unknown_keys(mode, FinetuneSettings, where, ("train_modes", name))
        try:
            settings[name] = FinetuneSettings(**_merged(base, mode))
        except ValidationError as exc:
            raise SuiteError(format_errors(exc, where, f"train_modes.{name}.")) from None
    out: dict[str, FinetuneSettings] = {}
    for i, name in enumerate(cfg.axes.train_mode):
        if name == DEFAULT_TRAIN_MODE:
            out[name] = cfg.finetune
            continue
        if name not in cfg.train_modes:
            defined = [DEFAULT_TRAIN_MODE, *cfg.train_modes]
            raise SuiteError(f"{where}: axes.train_mode[{i}]: unknown train mode {name!r}." + closest_hint(name, defined)
                             + f" Defined: {', '.join(map(repr, defined))} (name a mode under 'train_modes:', "
                             "e.g. 'train_modes: {tl: {schedule: falconi-tl, head: falconi-tl}}').")
        out[name] = settings[name]
    return out


def _excluded(axes: dict, exclusions: list[dict]) -> bool:
    def values(k, v):
        v = v if isinstance(v, list) else [v]
        return [parse_ft_fraction(x) for x in v] if k == "ft_fraction" else v
    return any(all(axes[k] in values(k, v) for k, v in ex.items()) for ex in exclusions)


# --------------------------------------------------------------------------- expansion

def na_reason(source: str, ft_fraction: float, transfer: str, backbone: str | None = None,
              hybrid_width: float = 1.0) -> str | None:
    """Why a cell is not applicable, or None. These are the paper's NA entries and their kin.

    A backbone declares the sources it is not defined for in ``BackboneSpec.extra["unsupported_sources"]``
    (source -> reason), e.g. patch_cnn x imagenet.
    """
    if backbone is not None:
        from bench.backbones import BACKBONES

        unsupported = BACKBONES.get(backbone).extra.get("unsupported_sources", {})
        if source in unsupported:
            return f"not applicable: {unsupported[source]}"
    if ft_fraction == 0 and source == "imagenet":
        return ("not applicable: an ImageNet network has a 1000-class head, so it gives no benign/malignant "
                "prediction without fine-tuning")
    if source == "random" and transfer == "hybrid" and hybrid_width == 1.0:
        return ("not applicable: hybrid transfer from a random network at hybrid_width 1 keeps no pretrained layer "
                "and slims nothing, so it is the same random network as transfer 'full'")
    if ft_fraction == 0 and transfer == "hybrid":
        return ("not applicable: hybrid transfer re-initialises every layer after the hybrid stage, "
                "so without fine-tuning those layers are untrained")
    return None


def stage_map_revision(backbone: str) -> int | None:
    """The revision of a backbone's corrected stage map (VGG: every stage owns layers since 2026-12-04), or None.
    It enters the ids of cells whose meaning depends on the stages (hybrid transfer, training from a stage,
    SVCCA layers), so their records from before the correction are never reused."""
    from bench.backbones import BACKBONES
    from bench.backbones.specs import STAGE_MAP_REVISION

    return BACKBONES.get(backbone).extra.get(STAGE_MAP_REVISION)


def _uses_stages(finetune: dict | None) -> bool:
    return any(stage.get("trainable", "all") != "all" for stage in (finetune or {}).get("schedule") or [])


def _pretrain_settings(cfg: SuiteConfig, backbone: str, where: str) -> dict:
    """The pre-training settings in a backbone's pretrain id: the common ones, plus the sub-block its own
    recipe reads (``BackboneSpec.extra["pretrain_settings"]``: ``"patch"`` for patch_cnn)."""
    from bench.backbones import BACKBONES

    out = recalibration_in_id(cfg.pretrain.model_dump(exclude={"patch"}))
    block = BACKBONES.get(backbone).extra.get("pretrain_settings")
    if block == "patch":
        out["patch"] = cfg.pretrain.patch.model_dump()
        side = min((cfg.image_size,) if isinstance(cfg.image_size, int) else cfg.image_size)
        if (cfg.pretrain.patch.patch_size or 0) > side:
            raise SuiteError(f"{where}: pretrain.patch.patch_size: {cfg.pretrain.patch.patch_size} is larger than "
                             f"the image ({side} px); use at most {side}, or leave it out (default: {side // 4})")
    elif block:
        raise SuiteError(f"{where}: backbone {backbone!r} reads pre-training settings {block!r}, which suites "
                         "do not have (only 'patch')")
    return out


def _size_json(size: int | tuple[int, int]) -> int | list[int]:
    """A square size stays an int, so existing cell ids do not change; [h, w] is a list in JSON."""
    return size if isinstance(size, int) else list(size)


def expand(cfg: SuiteConfig, *, where: str = "<suite>") -> list[Cell]:
    """The product of the axes minus exclusions, each cell with its resolved config and id."""
    data_opts = {d: dataset_options(d, cfg.data.get(d), where)
                 for d in set(cfg.axes.target) | {s for s in cfg.axes.source if s not in SPECIAL_SOURCES}}
    own = {b: backbone_config(cfg, b, where) for b in cfg.axes.backbone}  # per_backbone merged in
    modes = {b: train_modes(own[b], where) for b in cfg.axes.backbone}
    cells = []
    a = cfg.axes
    for backbone, source, frac, target, transfer, mode, seed in itertools.product(
            a.backbone, a.source, a.ft_fraction, a.target, a.transfer, a.train_mode, a.seed_list):
        axes = {"backbone": backbone, "source": source, "ft_fraction": float(frac), "target": target,
                "transfer": transfer, "seed": seed}
        if _excluded({**axes, "train_mode": mode}, cfg.exclude):
            continue
        size = _size_json(own[backbone].image_size)
        config: dict[str, Any] = {"protocol": PROTOCOL_VERSION, **axes, "image_size": size,
                                  "target_data": data_opts[target]}
        if transfer == "hybrid":
            config["hybrid_stage"] = cfg.hybrid_stage
            config["hybrid_width"] = cfg.hybrid_width
            if source == "random" and cfg.hybrid_width < 1:
                # A slimmed network from random init: it runs (Bulathsinghalage & Liu's Table 4 reports it). Before
                # 2026-12-04 the same config was an NA record; this key keeps the computed cell's id apart from it.
                config["hybrid_random_init"] = True
        if frac > 0:
            config["finetune"] = modes[backbone][mode].resolved()
        # The mode's name enters the id only when it is not the default, so suites without the axis keep
        # their ids; without fine-tuning only the first listed mode is computed (the others are NA below).
        first_mode = a.train_mode[0]
        if mode != DEFAULT_TRAIN_MODE and (frac > 0 or mode != first_mode):
            config["train_mode"] = mode
        if cfg.tta != "none":
            config["tta"] = cfg.tta
        pretrain_id = None
        if source == "imagenet" and backbone in cfg.weights:
            config["weights"] = cfg.weights[backbone]
        if cfg.accept_partial_weights and source != "random":
            config["accept_partial_weights"] = True
        revision = stage_map_revision(backbone)
        if revision and (transfer == "hybrid" or _uses_stages(config.get("finetune"))):
            config["stage_map_revision"] = revision
        if source not in SPECIAL_SOURCES:
            pre = {"protocol": PROTOCOL_VERSION, "backbone": backbone, "source": source, "seed": seed,
                   "image_size": size, "source_data": data_opts[source],
                   **_pretrain_settings(own[backbone], backbone, where)}
            pretrain_id = identity_hash(pre)
            config["pretrain"] = pre
        reason = na_reason(source, frac, transfer, backbone, cfg.hybrid_width)
        if reason is None and frac == 0 and mode != first_mode:
            reason = (f"not applicable: without fine-tuning the train mode changes nothing; this is the No FT cell "
                      f"of train mode {first_mode!r}")
        cells.append(Cell(**axes, config=config, cell_id=identity_hash(config), na_reason=reason,
                          pretrain_id=pretrain_id if reason is None else None, train_mode=mode))
    if not cells:
        raise SuiteError(f"{where}: exclude: every cell of the product is excluded; nothing to run")
    return cells
