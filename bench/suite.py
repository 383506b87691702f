"""Suites: YAML -> validated, frozen config -> cells.

A suite is a product of axes (backbone x source x ft_fraction x target x transfer x seed)
minus exclusions. Every cell carries its fully resolved config and a content-hash id, so a
result on disk can always be matched to exactly the config that produced it.

Errors name the file, the field path, the bad value and the closest valid names::

    suites/typo.yaml: axes.backbone[0]: unknown backbone 'resnet81'. Did you mean: 'resnet18'? ...
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.registry import UnknownNameError, closest, import_plugin_module

# Bump when the meaning of a cell changes (training protocol, metric definitions): it is part of
# every cell id, so old records are never mistaken for new ones.
PROTOCOL_VERSION = 1

SPECIAL_SOURCES = ("random", "imagenet")
STAGES = ("conv1", "block1", "block2", "block3", "block4")
SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


class SuiteError(ValueError):
    """A suite file is invalid; the message names file, field, bad value and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSettings(_Frozen):
    """One training stage. The learning rate decays (cosine) to zero over ``epochs``."""

    epochs: int = Field(ge=0)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_epochs: int = Field(default=0, ge=0)


class PretrainSettings(TrainSettings):
    """Source pre-training. ``val_fraction`` of the source patients is held out to monitor it."""

    epochs: int = Field(default=6, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=32, ge=1)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)


class FinetuneSettings(TrainSettings):
    """Fine-tuning on ``ft_fraction`` of the target; a fixed number of epochs, no early stopping
    (there is no third split to select on, and selecting on the evaluation set is forbidden)."""

    epochs: int = Field(default=10, ge=1)
    lr: float = Field(default=3e-4, gt=0)
    batch_size: int = Field(default=16, ge=1)
    bn_train: bool = True  # BatchNorm in training mode while fine-tuning (recorded; see DESIGN)


class Axes(_Frozen):
    backbone: list[str] = Field(min_length=1)
    source: list[str] = Field(min_length=1)
    ft_fraction: list[float] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    transfer: list[Literal["full", "hybrid"]] = Field(default=["full"], min_length=1)
    seeds: Union[int, list[int]] = 1

    @field_validator("ft_fraction")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        for f in v:
            if not (0 <= f < 1 or (f >= 1 and float(f).is_integer())):
                raise ValueError(f"ft_fraction {f!r} must be in [0, 1) (0 = no fine-tuning, 0.1 = 10% of the target's "
                                 "patients) or a whole number of patients >= 1 (20 = fine-tune on 20 patients)")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("seeds must be a positive count (3 -> seeds 0, 1, 2) or a list of seeds")
        return v

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class SuiteConfig(_Frozen):
    name: str = ""
    description: str = ""
    axes: Axes
    exclude: list[dict[str, Any]] = []
    image_size: int = Field(default=64, ge=16, le=2048)
    hybrid_stage: Literal["conv1", "block1", "block2", "block3", "block4"] = "block2"
    pretrain: PretrainSettings = PretrainSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    data: dict[str, dict[str, Any]] = {}
    weights: dict[str, str] = {}
    plugins: list[str] = []


@dataclass(frozen=True)
class Cell:
    """One point of the suite's product; ``config`` is everything its result depends on."""

    backbone: str
    source: str
    ft_fraction: float
    target: str
    transfer: str
    seed: int
    config: dict = field(repr=False, hash=False, compare=False)
    cell_id: str = ""
    na_reason: str | None = None
    pretrain_id: str | None = None

    @property
    def axes(self) -> dict:
        return {"backbone": self.backbone, "source": self.source, "ft_fraction": self.ft_fraction,
                "target": self.target, "transfer": self.transfer, "seed": self.seed}


@dataclass(frozen=True)
class Suite:
    """A validated suite: its config, where it came from, and its cells."""

    name: str
    path: Path | None
    config: SuiteConfig
    cells: tuple[Cell, ...]

    @property
    def pretrain_jobs(self) -> dict[str, dict]:
        """Distinct source pre-trainings (id -> config) needed by the runnable cells."""
        jobs: dict[str, dict] = {}
        for c in self.cells:
            if c.pretrain_id and c.na_reason is None:
                jobs.setdefault(c.pretrain_id, c.config["pretrain"])
        return jobs


def content_hash(obj: Any, n: int = 16) -> str:
    """Stable hash of a JSON-able object (key order and float formatting independent)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


# --------------------------------------------------------------------------- loading

def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A suite is named by its file stem in ``suites/`` or by a path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise SuiteError(f"{p}: no such suite file")
        return p
    for d in (Path.cwd() / "suites", SUITES_DIR):
        for ext in (".yaml", ".yml"):
            if (d / f"{name_or_path}{ext}").exists():
                return d / f"{name_or_path}{ext}"
    known = list_suites()
    hint = closest(str(name_or_path), known)
    raise SuiteError(f"unknown suite {str(name_or_path)!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                     + f" Available: {', '.join(known) or '(none)'}; or pass a path to a .yaml file.")


def list_suites() -> list[str]:
    names = set()
    for d in (Path.cwd() / "suites", SUITES_DIR):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.y*ml"))
    return sorted(names)


def load_suite(name_or_path: str | Path) -> Suite:
    """Read, validate and expand a suite. Raises :class:`SuiteError` with a precise message."""
    path = resolve_suite_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite is a YAML mapping with at least 'axes:'; got {type(raw).__name__}")
    return build_suite(raw, path=path)


def build_suite(raw: dict, *, path: Path | None = None, name: str | None = None) -> Suite:
    where = str(path) if path else "<suite>"
    _check_unknown_keys(raw, SuiteConfig, where, ())
    try:
        cfg = SuiteConfig(**raw)
    except ValidationError as exc:
        raise SuiteError("\n".join(f"{where}: {_loc(e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                                   for e in exc.errors())) from None
    suite_name = name or cfg.name or (path.stem if path else "suite")
    for mod in cfg.plugins:
        try:
            import_plugin_module(mod)
        except ImportError as exc:
            raise SuiteError(f"{where}: plugins: {exc}") from None
    _check_names(cfg, where)
    _check_exclusions(cfg, where)
    cells = expand(cfg, where=where)
    return Suite(name=suite_name, path=path, config=cfg, cells=tuple(cells))


def _loc(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_of(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def _check_unknown_keys(raw: Any, model: type[BaseModel], where: str, loc: tuple) -> None:
    """Unknown keys anywhere are errors naming the closest valid key (pydantic's own message doesn't)."""
    if not isinstance(raw, dict):
        return
    fields = model.model_fields
    for key, value in raw.items():
        if key not in fields:
            hint = closest(str(key), list(fields))
            raise SuiteError(f"{where}: {_loc(loc + (key,))}: unknown key {key!r}."
                             + (f" Did you mean: {', '.join(repr(h) for h in hint)}?" if hint else "")
                             + f" Valid keys here: {', '.join(fields)}.")
        sub = _model_of(fields[key].annotation)
        if sub is not None and get_origin(fields[key].annotation) is not list:
            _check_unknown_keys(value, sub, where, loc + (key,))


def _unknown(where: str, loc: str, err: UnknownNameError) -> SuiteError:
    return SuiteError(f"{where}: {loc}: {err}")


def _check_names(cfg: SuiteConfig, where: str) -> None:
    from bench.backbones import BACKBONES
    from bench.data import DATASETS

    for i, b in enumerate(cfg.axes.backbone):
        if b not in BACKBONES:
            raise _unknown(where, f"axes.backbone[{i}]", _err(BACKBONES, b))
    sources = list(SPECIAL_SOURCES) + DATASETS.names()
    for i, s in enumerate(cfg.axes.source):
        if s not in sources:
            raise SuiteError(f"{where}: axes.source[{i}]: unknown source {s!r}." + _hint(s, sources)
                             + f" A source is 'random', 'imagenet' or a dataset: {', '.join(DATASETS.names())}.")
    for i, t in enumerate(cfg.axes.target):
        if t not in DATASETS:
            raise _unknown(where, f"axes.target[{i}]", _err(DATASETS, t))
    for dname, opts in cfg.data.items():
        if dname not in DATASETS:
            raise _unknown(where, f"data.{dname}", _err(DATASETS, dname))
        _dataset_options(dname, opts, where)
    for b in cfg.weights:
        if b not in BACKBONES:
            raise _unknown(where, f"weights.{b}", _err(BACKBONES, b))


def _err(registry, name) -> UnknownNameError:
    try:
        registry.get(name)
    except UnknownNameError as e:
        return e
    raise AssertionError("name exists")  # pragma: no cover


def _hint(name: str, choices: list[str]) -> str:
    h = closest(name, choices)
    return f" Did you mean: {', '.join(repr(x) for x in h)}?" if h else ""


def _dataset_options(dname: str, opts: dict | None, where: str) -> dict:
    """Validate ``data.<dname>`` against the dataset's options model; return the resolved options."""
    from bench.data import DATASETS

    spec = DATASETS.get(dname)
    opts = dict(opts or {})
    root = opts.pop("root", None)
    _check_unknown_keys(opts, spec.options, where, ("data", dname))
    try:
        resolved = spec.options(**opts).model_dump(mode="json")
    except ValidationError as exc:
        raise SuiteError("\n".join(f"{where}: data.{dname}.{_loc(e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                                   for e in exc.errors())) from None
    if root is not None:
        resolved["root"] = str(root)
    return resolved


def _check_exclusions(cfg: SuiteConfig, where: str) -> None:
    axes = _axis_values(cfg)
    for i, ex in enumerate(cfg.exclude):
        if not isinstance(ex, dict) or not ex:
            raise SuiteError(f"{where}: exclude[{i}]: an exclusion is a mapping of axis -> value(s), "
                             f"e.g. {{source: imagenet, transfer: hybrid}}; got {ex!r}")
        for key, val in ex.items():
            if key not in axes:
                raise SuiteError(f"{where}: exclude[{i}].{key}: unknown axis {key!r}." + _hint(key, list(axes))
                                 + f" Axes: {', '.join(axes)}.")
            for v in val if isinstance(val, list) else [val]:
                if v not in axes[key]:
                    raise SuiteError(f"{where}: exclude[{i}].{key}: {v!r} is not a value of axis {key!r}"
                                     f" ({axes[key]}); the exclusion would match nothing." + _hint(str(v), [str(a) for a in axes[key]]))


def _axis_values(cfg: SuiteConfig) -> dict[str, list]:
    a = cfg.axes
    return {"backbone": a.backbone, "source": a.source, "ft_fraction": a.ft_fraction, "target": a.target,
            "transfer": a.transfer, "seed": a.seed_list}


def _excluded(axes: dict, exclusions: list[dict]) -> bool:
    return any(all(axes[k] in (v if isinstance(v, list) else [v]) for k, v in ex.items()) for ex in exclusions)


# --------------------------------------------------------------------------- expansion

def na_reason(source: str, ft_fraction: float, transfer: str) -> str | None:
    """Why a cell is not applicable, or None. These are the paper's NA entries and their kin."""
    if ft_fraction == 0 and source == "imagenet":
        return ("not applicable: an ImageNet network has a 1000-class head, so it gives no benign/malignant "
                "prediction without fine-tuning")
    if source == "random" and transfer == "hybrid":
        return ("not applicable: hybrid transfer from a random network keeps no pretrained layer, so it is the "
                "same random network as transfer 'full'")
    if ft_fraction == 0 and transfer == "hybrid":
        return ("not applicable: hybrid transfer re-initialises every layer after the hybrid stage, "
                "so without fine-tuning those layers are untrained")
    return None


def expand(cfg: SuiteConfig, *, where: str = "<suite>") -> list[Cell]:
    """The product of the axes minus exclusions, each cell with its resolved config and id."""
    data_opts = {d: _dataset_options(d, cfg.data.get(d), where)
                 for d in set(cfg.axes.target) | {s for s in cfg.axes.source if s not in SPECIAL_SOURCES}}
    cells = []
    a = cfg.axes
    for backbone, source, frac, target, transfer, seed in itertools.product(
            a.backbone, a.source, a.ft_fraction, a.target, a.transfer, a.seed_list):
        axes = {"backbone": backbone, "source": source, "ft_fraction": float(frac), "target": target,
                "transfer": transfer, "seed": seed}
        if _excluded(axes, cfg.exclude):
            continue
        config: dict[str, Any] = {"protocol": PROTOCOL_VERSION, **axes, "image_size": cfg.image_size,
                                  "target_data": data_opts[target]}
        if transfer == "hybrid":
            config["hybrid_stage"] = cfg.hybrid_stage
        if frac > 0:
            config["finetune"] = cfg.finetune.model_dump()
        pretrain_id = None
        if source == "imagenet" and backbone in cfg.weights:
            config["weights"] = cfg.weights[backbone]
        if source not in SPECIAL_SOURCES:
            pre = {"protocol": PROTOCOL_VERSION, "backbone": backbone, "source": source, "seed": seed,
                   "image_size": cfg.image_size, "source_data": data_opts[source], **cfg.pretrain.model_dump()}
            pretrain_id = content_hash(pre)
            config["pretrain"] = pre
        reason = na_reason(source, frac, transfer)
        cells.append(Cell(**axes, config=config, cell_id=content_hash(config), na_reason=reason,
                          pretrain_id=pretrain_id if reason is None else None))
    if not cells:
        raise SuiteError(f"{where}: exclude: every cell of the product is excluded; nothing to run")
    return cells
