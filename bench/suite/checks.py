"""Checks of a suite beyond its schema: names resolve against the registries, per-backbone settings and
exclusions apply to something, and every stage a suite names is a stage of each backbone that uses it.

Each raises :class:`~bench.suite.base.SuiteError` naming the file, the field, the bad value and the fix. Nothing
here builds a network.
"""
from __future__ import annotations

from collections.abc import Sequence

from bench.registry import closest
from bench.suite.axes import ft_fraction_text, parse_ft_fraction
from bench.suite.base import DEFAULT_TRAIN_MODE, SPECIAL_SOURCES, SuiteError, closest_hint
from bench.suite.cells import PER_BACKBONE_KEYS, dataset_options
from bench.suite.messages import lookup_error, unknown_name
from bench.suite.schedule import SCHEDULE_PRESETS, parse_trainable
from bench.suite.schema import Cell, SuiteConfig


def check_names(cfg: SuiteConfig, where: str) -> None:
    from bench.backbones import BACKBONES
    from bench.data import DATASETS

    for i, b in enumerate(cfg.axes.backbone):
        if b not in BACKBONES:
            raise unknown_name(where, f"axes.backbone[{i}]", lookup_error(BACKBONES, b))
    sources = list(SPECIAL_SOURCES) + DATASETS.names()
    for i, s in enumerate(cfg.axes.source):
        if s not in sources:
            raise SuiteError(f"{where}: axes.source[{i}]: unknown source {s!r}." + closest_hint(s, sources)
                             + f" A source is 'random', 'imagenet' or a dataset: {', '.join(DATASETS.names())}.")
    for i, t in enumerate(cfg.axes.target):
        if t not in DATASETS:
            raise unknown_name(where, f"axes.target[{i}]", lookup_error(DATASETS, t))
    for dname, opts in cfg.data.items():
        if dname not in DATASETS:
            raise unknown_name(where, f"data.{dname}", lookup_error(DATASETS, dname))
        dataset_options(dname, opts, where)
    for b in cfg.weights:
        if b not in BACKBONES:
            raise unknown_name(where, f"weights.{b}", lookup_error(BACKBONES, b))


def check_per_backbone(cfg: SuiteConfig, where: str) -> None:
    for b, over in cfg.per_backbone.items():
        if b not in cfg.axes.backbone:
            raise SuiteError(f"{where}: per_backbone.{b}: {b!r} is not on axes.backbone ({cfg.axes.backbone}); "
                             "the settings would apply to nothing." + closest_hint(b, cfg.axes.backbone))
        for key in over:
            if key not in PER_BACKBONE_KEYS:
                raise SuiteError(f"{where}: per_backbone.{b}.{key}: unknown key {key!r}." + closest_hint(key, list(
                    PER_BACKBONE_KEYS)) + f" A backbone may set: {', '.join(PER_BACKBONE_KEYS)}.")


def check_exclusions(cfg: SuiteConfig, where: str) -> None:
    axes = _axis_values(cfg)
    for i, ex in enumerate(cfg.exclude):
        if not isinstance(ex, dict) or not ex:
            raise SuiteError(f"{where}: exclude[{i}]: an exclusion is a mapping of axis -> value(s), "
                             f"e.g. {{source: imagenet, transfer: hybrid}}; got {ex!r}")
        for key, val in ex.items():
            if key not in axes:
                raise SuiteError(f"{where}: exclude[{i}].{key}: unknown axis {key!r}." + closest_hint(key, list(axes))
                                 + f" Axes: {', '.join(axes)}.")
            if isinstance(val, list) and not val:
                raise SuiteError(f"{where}: exclude[{i}].{key}: an empty list matches nothing; give a value of axis "
                                 f"{key!r} ({axes[key]}) or a list of them, or remove '{key}'")
            for v in val if isinstance(val, list) else [val]:
                if key == "ft_fraction" and not isinstance(v, bool):  # '20 patients', as on the axis
                    try:
                        v = parse_ft_fraction(v)
                    except ValueError as exc:
                        raise SuiteError(f"{where}: exclude[{i}].{key}: {exc}") from None
                if v not in axes[key] or isinstance(v, bool):
                    shown = ([ft_fraction_text(a) for a in axes[key]], ft_fraction_text(v)) \
                        if key == "ft_fraction" and not isinstance(v, bool) else (axes[key], v)
                    by_text = {str(a): a for a in shown[0]}
                    hint = closest(str(shown[1]), list(by_text))
                    raise SuiteError(f"{where}: exclude[{i}].{key}: {shown[1]!r} is not a value of axis {key!r}"
                                     f" ({shown[0]}); the exclusion would match nothing."
                                     + (f" Did you mean: {', '.join(repr(by_text[h]) for h in hint)}?" if hint else "")
                                     + (" (Write numbers without quotes.)" if str(v) in by_text and isinstance(v, str)
                                        else ""))


def check_analysis(cfg: SuiteConfig, where: str) -> None:
    """Names in ``analysis.svcca`` resolve, and there is a source network to analyse."""
    from bench.backbones import BACKBONES
    from bench.data import DATASETS

    sv = cfg.analysis.svcca
    if sv is None:
        return
    for i, t in enumerate(sv.targets):
        if t not in DATASETS:
            raise unknown_name(where, f"analysis.svcca.targets[{i}]", lookup_error(DATASETS, t))
    for i, b in enumerate(sv.backbones or []):
        if b not in BACKBONES:
            raise unknown_name(where, f"analysis.svcca.backbones[{i}]", lookup_error(BACKBONES, b))
    sources = list(SPECIAL_SOURCES) + DATASETS.names()
    for i, s in enumerate(sv.sources or []):
        if s not in sources:
            raise SuiteError(f"{where}: analysis.svcca.sources[{i}]: unknown source {s!r}." + closest_hint(s, sources)
                             + f" A source is 'random', 'imagenet' or a dataset: {', '.join(DATASETS.names())}.")
    if sv.sources is None and not [s for s in cfg.axes.source if s not in SPECIAL_SOURCES]:
        raise SuiteError(f"{where}: analysis.svcca: the suite has no dataset source (axes.source is "
                         f"{cfg.axes.source}); name the networks to analyse, e.g. 'sources: [synth-ddsm]'.")


def _axis_values(cfg: SuiteConfig) -> dict[str, list]:
    a = cfg.axes
    return {"backbone": a.backbone, "source": a.source, "ft_fraction": a.ft_fraction, "target": a.target,
            "transfer": a.transfer, "train_mode": a.train_mode, "seed": a.seed_list}


def check_suite_stages(cfg: SuiteConfig, cells: Sequence[Cell], where: str) -> None:
    """Raise :class:`SuiteError` when a suite names a stage that a backbone using it lacks.

    ``cfg`` is the suite's ``SuiteConfig``, ``cells`` its expanded cells (excluded ones are not there, so an
    exclusion is the way to keep a backbone away from a stage it lacks). Checked: ``hybrid_stage`` for every
    hybrid cell, and each ``trainable`` of every cell's fine-tuning schedule; and, so that a typo never waits
    until a train mode is put on the axis (or for a suite without fine-tuning), every ``trainable`` the suite
    defines is a stage of at least one of its backbones. Messages list the backbone's stages (a name that is
    no backbone's stage gets the closest ones).
    """
    from bench.backbones import BACKBONES, STAGE_NAMES
    from bench.backbones.specs import spec_stage_names

    names = {b: spec_stage_names(BACKBONES.get(b)) for b in cfg.axes.backbone}
    every = tuple(dict.fromkeys(s for b in cfg.axes.backbone for s in names[b]))
    checked = set()
    for cell in cells:
        b, have = cell.backbone, names[cell.backbone]
        stage = cell.settings.hybrid_stage
        if stage is not None and stage not in have:
            raise SuiteError(f"{where}: hybrid_stage: backbone {b!r} has no stage {stage!r}; its stages: "
                             f"{', '.join(have)}. Set hybrid_stage to one of them, or exclude its hybrid cells: "
                             f"'exclude: [{{backbone: {b}, transfer: hybrid}}]'")
        ft = cell.settings.finetune
        for i, st in enumerate((ft.schedule if ft is not None else None) or []):
            value = st.trainable
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


def _schedule_location(cfg: SuiteConfig, backbone: str, mode: str, default: str) -> str:
    """Where a cell's fine-tuning schedule was written: its train mode, per_backbone, or the finetune block."""
    if mode != default and "schedule" in cfg.train_modes.get(mode, {}):
        return f"train_modes.{mode}.schedule"
    if "schedule" in (cfg.per_backbone.get(backbone, {}).get("finetune") or {}):
        return f"per_backbone.{backbone}.finetune.schedule"
    return "finetune.schedule"
