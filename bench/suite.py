"""Suites: YAML -> validated, frozen config -> cells.

A suite is a product of axes (backbone x source x ft_fraction x target x transfer x train_mode x seed)
minus exclusions. Every cell carries its fully resolved config and a content-hash id, so a
result on disk can always be matched to exactly the config that produced it.

Errors name the file, the field path, the bad value and the closest valid names::

    suites/typo.yaml: axes.backbone[0]: unknown backbone 'resnet81'. Did you mean: 'resnet18'? ...
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from bench.errors import UserError
from bench.registry import UnknownNameError, closest, import_plugin_module

# Bump when the meaning of a cell changes (training protocol, metric definitions): it is part of
# every cell id, so old records are never mistaken for new ones.
# 2: seeds derived by hashing axes (init from (backbone, seed), split and batch order from
#    (target, ft_fraction, seed)); see bench/runner/seeds.py.
PROTOCOL_VERSION = 2

SPECIAL_SOURCES = ("random", "imagenet")
DEFAULT_TRAIN_MODE = "default"
_ONE_STAGE_KEYS = ("epochs", "lr", "weight_decay", "warmup_epochs")
STAGES = ("conv1", "block1", "block2", "block3", "block4")
SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


class SuiteError(UserError, ValueError):
    """A suite file is invalid; the message names file, field, bad value and the fix."""


def suite_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a suite, or None. It becomes the folders results/<name> and reports/<name>,
    so it must be one folder name: no '/', no '..', no spaces."""
    if re.fullmatch(r"[\w][\w.-]*", name) and name not in (".", ".."):
        return None
    suggestion = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "my-suite"
    return (f"suite name {name!r} becomes the folder results/<name>: use one folder name of letters, digits, "
            f"'-', '_' and '.' (e.g. {suggestion!r})")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainSettings(_Frozen):
    """One training stage. The learning rate decays (cosine) to zero over ``epochs``."""

    epochs: int = Field(ge=0)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_epochs: int = Field(default=0, ge=0)


class PatchPretrainSettings(TrainSettings):
    """Stage 1 of a patch-based backbone's source pre-training (``pretrain.patch``; patch_cnn, Shen et al.):
    a patch classifier on S10-style patches around the source's lesion masks and from background tissue.
    It enters the pre-training id only of backbones whose recipe reads it."""

    epochs: int = Field(default=4, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=64, ge=1)
    patch_size: int | None = Field(default=None, ge=4)  # None: a quarter of the (shorter) image side
    per_lesion: int = Field(default=10, ge=1)  # patches per lesion (Shen's S10: 10)
    background_per_image: int = Field(default=10, ge=0)  # background patches per image
    min_overlap: float = Field(default=0.9, gt=0, le=1)  # share of the lesion (or patch) a lesion patch covers
    balance: bool = True  # oversample classes to equal counts (Shen balances them with sample weights)


class PretrainSettings(TrainSettings):
    """Source pre-training. ``val_fraction`` of the source patients is held out to monitor it."""

    epochs: int = Field(default=6, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    batch_size: int = Field(default=32, ge=1)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    patch: PatchPretrainSettings = PatchPretrainSettings()
    bn_recalibrate: bool = True  # re-estimate BatchNorm statistics for the final weights (bench/batchnorm.py)


class StageSettings(_Frozen):
    """One stage of a fine-tuning schedule (see bench/train_modes.py for ``trainable``)."""

    trainable: str | list[str] = "all"
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_epochs: int = Field(default=0, ge=0)
    lr_decay: Literal["cosine", "constant"] = "cosine"

    @field_validator("trainable")
    @classmethod
    def _trainable(cls, v):
        from bench.train_modes import parse_trainable

        parsed = parse_trainable(v)
        return list(parsed) if isinstance(parsed, tuple) else parsed

    @model_validator(mode="after")
    def _warmup(self):
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) is longer than the stage ({self.epochs} epochs)")
        return self


class HeadSettings(_Frozen):
    """A new classifier on the pooled features: [Linear(hidden) -> ReLU] -> Dropout -> Linear(2)."""

    hidden: int = Field(default=0, ge=0)  # 0: no hidden layer
    dropout: float = Field(default=0.0, ge=0, lt=1)


class EarlyStoppingSettings(_Frozen):
    """Hold out ``val_fraction`` of the fine-tune part's patients; restore the epoch best on it."""

    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    metric: Literal["loss", "auc"] = "loss"
    patience: int | None = Field(default=None, ge=1)  # end a stage after this many epochs without improvement


def _preset(kind: str, presets: dict, v):
    if isinstance(v, str):
        if v not in presets:
            raise ValueError(f"unknown {kind} preset {v!r}.{_hint(v, list(presets))} Presets: {', '.join(presets)}"
                             + ("; or a list of stages" if kind == "schedule" else "; or {hidden: n, dropout: p}"))
        return presets[v]
    return v


class FinetuneSettings(TrainSettings):
    """Fine-tuning on ``ft_fraction`` of the target.

    ``epochs``/``lr``/``weight_decay``/``warmup_epochs`` are a one-stage schedule training everything;
    ``schedule`` (a preset name or a list of stages) replaces them. Early stopping holds out a share of
    the fine-tune part (never the evaluation set). The new fields enter a cell id only when they differ
    from their defaults, so suites that do not use them keep their ids.
    """

    epochs: int = Field(default=10, ge=1)
    lr: float = Field(default=3e-4, gt=0)
    batch_size: int = Field(default=16, ge=1)
    bn_train: bool = True  # BatchNorm in training mode while fine-tuning (recorded; see DESIGN)
    # Re-estimate the statistics of the BatchNorm layers that trained, for the weights that are evaluated
    # (before each early-stopping validation and at the end of each stage; bench/batchnorm.py).
    bn_recalibrate: bool = True
    schedule: list[StageSettings] | None = Field(default=None, min_length=1)
    head: HeadSettings | None = None  # None: keep the backbone's classifier
    augment: Literal["flip", "falconi", "none"] = "flip"
    class_weights: Literal["none", "balanced"] = "none"
    early_stopping: EarlyStoppingSettings | None = None

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_preset(cls, v):
        from bench.train_modes import SCHEDULE_PRESETS

        return _preset("schedule", SCHEDULE_PRESETS, v)

    @field_validator("head", mode="before")
    @classmethod
    def _head_preset(cls, v):
        from bench.train_modes import HEAD_PRESETS

        return _preset("head", HEAD_PRESETS, v)

    @model_validator(mode="after")
    def _schedule_or_epochs(self):
        # (a value equal to the default is accepted: a full model_dump of a valid suite must rebuild)
        both = sorted(k for k in ("epochs", "lr", "weight_decay", "warmup_epochs") if k in self.model_fields_set
                      and getattr(self, k) != type(self).model_fields[k].default)
        if self.schedule is not None and both:
            raise ValueError(f"give either a schedule or {'/'.join(both)}, not both: each stage of the schedule "
                             "has its own epochs, lr, weight_decay and warmup_epochs")
        return self

    def resolved(self) -> dict:
        """The settings as they enter a cell's config (and id): new fields only when not at their default."""
        out = self.model_dump(exclude={"schedule", "head", "augment", "class_weights", "early_stopping"})
        _recalibration_in_id(out)
        if self.schedule is not None:
            for k in ("epochs", "lr", "weight_decay", "warmup_epochs"):
                out.pop(k)
            out["schedule"] = [s.model_dump() for s in self.schedule]
        for k in ("head", "augment", "class_weights", "early_stopping"):
            value = getattr(self, k)
            if value != type(self).model_fields[k].default:
                out[k] = value.model_dump() if isinstance(value, BaseModel) else value
        return out


def _recalibration_in_id(settings: dict) -> dict:
    """``bn_recalibrate`` enters a config (and the id) only when on: results computed before it existed, which
    never re-estimated BatchNorm statistics, keep their ids exactly when a suite turns it off, and are never
    mixed with results computed with it."""
    if not settings.get("bn_recalibrate"):
        settings.pop("bn_recalibrate", None)
    return settings


class SvccaSettings(_Frozen):
    """``analysis.svcca``: the seed study's per-layer SVCCA protocol (section 3.3, Figure 1); see bench/runner/svcca.py.

    Per (backbone, source, target, seed): a stratified, patient-grouped ``ft_share`` / rest split of the target;
    network A = the source network, B = A fine-tuned on the share, B' = A with only its BatchNorm statistics
    re-estimated on the share; all fed the rest; similarity of A with B (and B') at conv1, block1 .. block4.
    Nothing here enters a cell id.
    """

    targets: list[str] = Field(min_length=1)
    sources: list[str] | None = None  # default: the suite's dataset sources (not random/imagenet)
    backbones: list[str] | None = None  # default: the suite's backbones
    ft_share: float = Field(default=0.2, gt=0, lt=1)
    epochs: int | None = Field(default=None, ge=1)  # default: finetune.epochs
    max_datapoints: int = Field(default=10_000, ge=100)  # cap on spatial positions per layer (subsampled)
    pooling: Literal["positions", "mean"] = "positions"  # datapoints = positions, or one spatial mean per image
    keep: float = Field(default=0.99, gt=0, le=1)
    rule: Literal["singular_values", "variance"] = "singular_values"
    bn_reference: bool = True  # also compute the BN-only reference B'


class AnalysisSettings(_Frozen):
    """Optional analyses run after the cells (``analysis:`` in a suite)."""

    svcca: SvccaSettings | None = None


class ExecutorSettings(_Frozen):
    """How ``bench run`` executes the suite (``executor:`` in a suite; ``--executor``/``--workers`` override it).

    Nothing here enters a cell id: the same cells computed by any executor are the same cells.
    """

    kind: Literal["local", "slurm"] = "local"
    workers: int = Field(default=1, ge=0)  # local: worker processes; 0 = in the runner's own process
    threads: int | None = Field(default=None, ge=1)  # torch threads per worker (default: cores / workers)
    heartbeat_s: float = Field(default=10.0, gt=0)  # claim heartbeat period
    stale_after_s: float = Field(default=120.0, gt=0)  # a claim without heartbeat for this long is taken over
    max_attempts: int = Field(default=3, ge=1)  # a cell whose worker died this many times becomes failed
    # slurm (submitit): one array of pre-training jobs, then an array of workers that pull cells.
    cluster: Literal["slurm", "local", "debug"] = "slurm"  # submitit's local/debug executors for testing
    array_parallelism: int = Field(default=8, ge=1)
    timeout_min: int = Field(default=240, ge=1)
    partition: str | None = None
    gpus_per_task: int = Field(default=1, ge=0)
    cpus_per_task: int = Field(default=4, ge=1)
    mem_gb: float | None = Field(default=None, gt=0)
    slurm_extra: dict[str, Any] = {}  # passed to submitit as slurm_additional_parameters


_PATIENTS = re.compile(r"\s*([-+]?[0-9.eE+-]+|nan|inf)\s*patients?\s*", re.IGNORECASE)
_SHARE_HELP = "0 = no fine-tuning, 0.1 = 10% of the target's patients"
_COUNT_HELP = "'1 patient' or '20 patients'"


def parse_ft_fraction(value: Any) -> float:
    """One ``ft_fraction`` value as the suite writes it -> the float a cell carries.

    A share of the target's patients is a number in [0, 1) (``0.1``); a number of patients is written with
    its unit (``20 patients``, ``1 patient``) and becomes the whole float ``20.0``, exactly the value (and so
    the cell id) a bare ``20`` had before the unit was required. A bare number >= 1 is refused: ``1.0`` read
    as a share would fine-tune on every patient, read as a count on one; the suite must say which.
    Raises ``ValueError`` with the fix.
    """
    if isinstance(value, bool):
        raise ValueError(  # noqa: TRY004  (pydantic turns a ValueError, not a TypeError, into the field's message)
            f"ft_fraction {value!r}: give a share in [0, 1) ({_SHARE_HELP}) or a number of patients ({_COUNT_HELP}), "
            "not true/false")
    if isinstance(value, str):
        m = _PATIENTS.fullmatch(value)
        if m is None:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"ft_fraction {value!r}: give a share in [0, 1) ({_SHARE_HELP}) or a number of "
                                 f"patients ({_COUNT_HELP})") from None
            return _share(number, value)
        try:
            n = float(m.group(1))
        except ValueError:
            raise ValueError(f"ft_fraction {value!r}: the number of patients must be a whole number >= 1 "
                             f"({_COUNT_HELP})") from None
        if not math.isfinite(n) or not n.is_integer():
            raise ValueError(f"ft_fraction {value!r}: a number of patients must be whole ({_COUNT_HELP}); for a "
                             f"share of the patients write a number below 1 (0.1 = 10%)")
        if n < 1:
            raise ValueError(f"ft_fraction {value!r}: a number of patients must be at least 1 ({_COUNT_HELP}); "
                             "for no fine-tuning write 0")
        return float(n)
    if isinstance(value, numbers.Real):
        return _share(float(value), value)
    raise ValueError(f"ft_fraction {value!r}: give a share in [0, 1) ({_SHARE_HELP}) or a number of patients "
                     f"({_COUNT_HELP})")


def _share(f: float, shown: Any) -> float:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"ft_fraction {shown!r}: not a finite number; give a share in [0, 1) ({_SHARE_HELP}) or a "
                         f"number of patients ({_COUNT_HELP})")
    if f < 0:
        raise ValueError(f"ft_fraction {shown!r}: a share must be in [0, 1) ({_SHARE_HELP}); it cannot be "
                         "negative")
    if f >= 1 and f.is_integer():
        if f == 1:
            why, fix = f"{shown!r} would fine-tune on every target patient and leave none to evaluate", _COUNT_HELP
        else:
            why, fix = "1 would already be every target patient, leaving none to evaluate", f"'{int(f)} patients'"
        raise ValueError(f"ft_fraction {shown!r}: a share must be below 1 ({why}); for a number of patients "
                         f"write {fix}")
    if f >= 1:
        raise ValueError(f"ft_fraction {shown!r}: a share must be below 1 (0.1 = 10% of the target's patients); a "
                         f"number of patients is a whole number of patients with its unit ({_COUNT_HELP})")
    return f


def ft_fraction_text(f: float) -> float | str:
    """How a suite writes an ``ft_fraction`` value: a share as the number, a count as ``'20 patients'``.
    The inverse of :func:`parse_ft_fraction`; ``model_dump`` writes it, so a dumped config validates again."""
    if f >= 1:
        n = int(f)
        return f"{n} patient" if n == 1 else f"{n} patients"
    return f


class Axes(_Frozen):
    backbone: list[str] = Field(min_length=1)
    source: list[str] = Field(min_length=1)
    # Shares of the target's patients in [0, 1) and numbers of patients ('20 patients' in a suite: a float 20.0
    # here, in every cell and in its id). See parse_ft_fraction.
    ft_fraction: list[float] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    transfer: list[Literal["full", "hybrid"]] = Field(default=["full"], min_length=1)
    # Names from the suite's ``train_modes`` ("default" = the ``finetune`` block as it is).
    train_mode: list[str] = Field(default=[DEFAULT_TRAIN_MODE], min_length=1)
    seeds: Union[int, list[int]] = 1

    @field_validator("ft_fraction", mode="before")
    @classmethod
    def _fractions(cls, v):
        if not isinstance(v, (list, tuple)):
            return v  # pydantic says it is not a list
        return [parse_ft_fraction(f) for f in v]

    @field_serializer("ft_fraction")
    def _fractions_text(self, v: list[float]) -> list[float | str]:
        return [ft_fraction_text(f) for f in v]

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds_type(cls, v):
        if isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v)):
            raise ValueError(f"seeds {v!r}: give a count (3 -> seeds 0, 1, 2) or a list of whole numbers, not true/false")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("seeds must be a positive count (3 -> seeds 0, 1, 2) or a list of seeds")
        if isinstance(v, list) and not v:
            raise ValueError("seeds is an empty list: give a count (3 -> seeds 0, 1, 2) or a list of seeds ([0, 1, 2])")
        return v

    @field_validator("backbone", "source", "ft_fraction", "target", "transfer", "train_mode", "seeds")
    @classmethod
    def _distinct(cls, v, info):
        if isinstance(v, list):
            seen: list = []
            for x in v:
                if x in seen:
                    shown = ft_fraction_text(x) if info.field_name == "ft_fraction" else x
                    raise ValueError(f"{shown!r} is listed twice; each value of an axis must be distinct (a duplicate "
                                     f"would be the same cells twice, counted twice in the report): remove one")
                seen.append(x)
        return v

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


class SuiteConfig(_Frozen):
    name: str = ""
    description: str = ""
    # The published study whose numbers the suite reproduces (bench references STUDY): its report then puts the
    # paper's values beside ours. Never in a cell id. Synthetic twins leave it out: they reproduce no number.
    reference: str | None = None
    axes: Axes
    exclude: list[dict[str, Any]] = []
    image_size: Union[int, tuple[int, int]] = 64  # a square side, or [height, width] (Shen: [1152, 896])

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        problem = suite_name_problem(v) if v else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("reference")
    @classmethod
    def _reference(cls, v):
        from bench.references import check_study

        if v is not None:
            try:
                check_study(v)
            except ValueError as exc:
                raise ValueError(f"{exc} Leave 'reference' out for a suite that reproduces no published "
                                 "table") from None
        return v

    @field_validator("image_size", mode="before")
    @classmethod
    def _size_shape(cls, v):
        if isinstance(v, bool) or (isinstance(v, (list, tuple)) and len(v) != 2):
            raise ValueError(f"image_size {v!r}: give one side in pixels (64) or [height, width] (e.g. [1152, 896])")
        return v

    @field_validator("image_size")
    @classmethod
    def _size(cls, v):
        sides = (v,) if isinstance(v, int) else v
        if any(not 16 <= s <= 4096 for s in sides):
            raise ValueError(f"image_size {v!r}: each side must be between 16 and 4096 pixels")
        return v if isinstance(v, int) or v[0] != v[1] else v[0]
    # a stage of every backbone with hybrid cells (conv1 | block1 .. block4 for the built-ins; checked in build_suite)
    hybrid_stage: str = "block2"
    # hybrid cells: channels of the re-initialised stages after hybrid_stage, as a factor (Transfusion's
    # slim top; 1 = the original architecture, only re-initialised). In the cell id of hybrid cells only.
    hybrid_width: float = Field(default=0.5, gt=0, le=1)
    pretrain: PretrainSettings = PretrainSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    # Settings for one backbone only (e.g. MorphHR at twice the image size, a lower rate for vgg16): each
    # lists what differs from the suite's ``image_size``, ``pretrain`` and ``finetune``. See backbone_config.
    per_backbone: dict[str, dict[str, Any]] = {}
    # Named variants of ``finetune`` for the train_mode axis: each lists only what differs from ``finetune``
    # (e.g. ``falconi-tl: {schedule: falconi-tl, head: falconi-tl}``).
    train_modes: dict[str, dict[str, Any]] = {}
    # Test-time augmentation of every cell's predictions (in the cell id only when not "none").
    tta: Literal["none", "hflip", "flips"] = "none"
    data: dict[str, dict[str, Any]] = {}
    weights: dict[str, str] = {}
    # Train on even when a weights file fills fewer than 90 % of the tensors before the head (in the ids of cells
    # with pretrained weights only when true; records say how much loaded: weights.transfer.partial).
    accept_partial_weights: bool = False
    plugins: list[str] = []
    executor: ExecutorSettings = ExecutorSettings()
    analysis: AnalysisSettings = AnalysisSettings()


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
    train_mode: str = DEFAULT_TRAIN_MODE

    @property
    def axes(self) -> dict:
        return {"backbone": self.backbone, "source": self.source, "ft_fraction": self.ft_fraction,
                "target": self.target, "transfer": self.transfer, "train_mode": self.train_mode, "seed": self.seed}


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


def suite_description(name: str) -> str:
    """A suite file's ``description:`` (read without validating the suite: fast, and never an error)."""
    try:
        raw = yaml.safe_load(resolve_suite_path(name).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001  (a broken suite still gets listed; `bench validate` says what is wrong)
        return ""
    return str(raw.get("description") or "") if isinstance(raw, dict) else ""


def load_suite(name_or_path: str | Path) -> Suite:
    """Read, validate and expand a suite. Raises :class:`SuiteError` with a precise message."""
    path = resolve_suite_path(name_or_path)
    if path.is_dir():
        raise SuiteError(f"{path}: is a folder, not a suite file; pass a .yaml file (or a suite name: bench list suites)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        tabs = " (YAML indents with spaces, never tabs)" if "'\\t'" in str(exc) else ""
        raise SuiteError(f"{path}: not valid YAML{tabs}: {exc}") from None
    if raw is None:
        raise SuiteError(f"{path}: the file is empty (or only comments); a suite is a YAML mapping with at least "
                         "'axes:' (see suites/smoke.yaml)")
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite is a YAML mapping with at least 'axes:'; got {type(raw).__name__}")
    return build_suite(raw, path=path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (plain YAML keeps the last one silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let the constructor report it
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping (first on line {first + 1}, again on line "
                f"{key_node.start_mark.line + 1}); YAML would silently keep only the last one: remove one",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _union_tag(part) -> bool:
    """A part of a pydantic error location that names a member of a union (``int``, ``list[int]``), not a field."""
    return isinstance(part, str) and (part in ("int", "float", "str", "bool") or part.startswith(("list[", "tuple[")))


def _errors(exc: ValidationError, where: str, prefix: str = "") -> str:
    """One line per problem. Of a union (``seeds: 3`` or ``seeds: [0, 1]``), only the member the value was meant
    as: pydantic reports every member (``axes.seeds.int: ...`` and ``axes.seeds.list[int]: ...``)."""
    errors = exc.errors()
    keep = []
    for e in errors:
        loc = tuple(e["loc"])
        tag = next((i for i, part in enumerate(loc) if _union_tag(part)), None)
        if tag is not None and len(loc) == tag + 1 and e["type"].endswith("_type"):
            siblings = [o for o in errors if o is not e and tuple(o["loc"])[:tag] == loc[:tag]
                        and len(o["loc"]) > tag and _union_tag(o["loc"][tag]) and o["loc"][tag] != loc[tag]]
            if any(not (len(o["loc"]) == tag + 1 and o["type"].endswith("_type")) for o in siblings):
                continue  # the value is not of this member's type, and another member has a real complaint
        keep.append(e)
    return "\n".join(f"{where}: {prefix}{_loc(e['loc'])}: {error_message(e)} (got {e.get('input')!r})" for e in keep)


def error_message(error: dict) -> str:
    """A pydantic error's message without the "Value error, " that pydantic puts before our own messages."""
    msg = str(error.get("msg", ""))
    return msg[len("Value error, "):] if error.get("type") == "value_error" and msg.startswith("Value error, ") else msg


def build_suite(raw: dict, *, path: Path | None = None, name: str | None = None) -> Suite:
    where = str(path) if path else "<suite>"
    _check_unknown_keys(raw, SuiteConfig, where, ())
    try:
        cfg = SuiteConfig(**raw)
    except ValidationError as exc:
        raise SuiteError(_errors(exc, where)) from None
    suite_name = name or cfg.name or (path.stem if path else "suite")
    for mod in cfg.plugins:
        try:
            import_plugin_module(mod, adopt=_adopt_backbone_specs)
        except ImportError as exc:
            raise SuiteError(f"{where}: plugins: {exc}") from None
    _check_names(cfg, where)
    _check_per_backbone(cfg, where)
    _check_exclusions(cfg, where)
    _check_analysis(cfg, where)
    cells = expand(cfg, where=where)
    from bench.backbones.check import check_suite_stages  # hybrid_stage, trainable stages: each backbone's own

    check_suite_stages(cfg, cells, where)
    return Suite(name=suite_name, path=path, config=cfg, cells=tuple(cells))


def _adopt_backbone_specs(module) -> None:
    """Register the module-level ``BackboneSpec`` objects of a plugin module that did not register them itself,
    so the module an entry point names (``my_pkg:SPEC``) also works as ``plugins: [my_pkg]``."""
    from bench.backbones import BACKBONES, BackboneSpec, register_backbone

    for value in list(vars(module).values()):
        if isinstance(value, BackboneSpec) and value.name not in BACKBONES.names():
            register_backbone(value)


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
        if sub is not None and isinstance(value, list):  # e.g. finetune.schedule: a list of stages
            for i, item in enumerate(value):
                _check_unknown_keys(item, sub, where, loc + (key, i))
        elif sub is not None and get_origin(fields[key].annotation) is not list:
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
        raise SuiteError(_errors(exc, where, f"data.{dname}.")) from None
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
        _check_unknown_keys(value, model, where, ("per_backbone", backbone, key))
        update[key] = _merged(getattr(cfg, key).model_dump(exclude_unset=True), value)
    raw = {**cfg.model_dump(exclude_unset=True), **update, "per_backbone": {}}
    try:
        return SuiteConfig(**raw)
    except ValidationError as exc:
        raise SuiteError(_errors(exc, where, f"per_backbone.{backbone}.")) from None


def _check_per_backbone(cfg: SuiteConfig, where: str) -> None:
    for b, over in cfg.per_backbone.items():
        if b not in cfg.axes.backbone:
            raise SuiteError(f"{where}: per_backbone.{b}: {b!r} is not on axes.backbone ({cfg.axes.backbone}); "
                             "the settings would apply to nothing." + _hint(b, cfg.axes.backbone))
        for key in over:
            if key not in PER_BACKBONE_KEYS:
                raise SuiteError(f"{where}: per_backbone.{b}.{key}: unknown key {key!r}." + _hint(key, list(
                    PER_BACKBONE_KEYS)) + f" A backbone may set: {', '.join(PER_BACKBONE_KEYS)}.")


def _merged(base: dict, update: dict) -> dict:
    """``base`` updated by ``update``; a schedule and the one-stage fields replace each other."""
    merged = dict(base)
    if "schedule" in update:
        for k in _ONE_STAGE_KEYS:
            merged.pop(k, None)
    if any(k in update for k in _ONE_STAGE_KEYS):
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
        _check_unknown_keys(mode, FinetuneSettings, where, ("train_modes", name))
        try:
            settings[name] = FinetuneSettings(**_merged(base, mode))
        except ValidationError as exc:
            raise SuiteError(_errors(exc, where, f"train_modes.{name}.")) from None
    out: dict[str, FinetuneSettings] = {}
    for i, name in enumerate(cfg.axes.train_mode):
        if name == DEFAULT_TRAIN_MODE:
            out[name] = cfg.finetune
            continue
        if name not in cfg.train_modes:
            defined = [DEFAULT_TRAIN_MODE, *cfg.train_modes]
            raise SuiteError(f"{where}: axes.train_mode[{i}]: unknown train mode {name!r}." + _hint(name, defined)
                             + f" Defined: {', '.join(map(repr, defined))} (name a mode under 'train_modes:', "
                             "e.g. 'train_modes: {tl: {schedule: falconi-tl, head: falconi-tl}}').")
        out[name] = settings[name]
    return out


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


def _check_analysis(cfg: SuiteConfig, where: str) -> None:
    """Names in ``analysis.svcca`` resolve, and there is a source network to analyse."""
    from bench.backbones import BACKBONES
    from bench.data import DATASETS

    sv = cfg.analysis.svcca
    if sv is None:
        return
    for i, t in enumerate(sv.targets):
        if t not in DATASETS:
            raise _unknown(where, f"analysis.svcca.targets[{i}]", _err(DATASETS, t))
    for i, b in enumerate(sv.backbones or []):
        if b not in BACKBONES:
            raise _unknown(where, f"analysis.svcca.backbones[{i}]", _err(BACKBONES, b))
    sources = list(SPECIAL_SOURCES) + DATASETS.names()
    for i, s in enumerate(sv.sources or []):
        if s not in sources:
            raise SuiteError(f"{where}: analysis.svcca.sources[{i}]: unknown source {s!r}." + _hint(s, sources)
                             + f" A source is 'random', 'imagenet' or a dataset: {', '.join(DATASETS.names())}.")
    if sv.sources is None and not [s for s in cfg.axes.source if s not in SPECIAL_SOURCES]:
        raise SuiteError(f"{where}: analysis.svcca: the suite has no dataset source (axes.source is "
                         f"{cfg.axes.source}); name the networks to analyse, e.g. 'sources: [synth-ddsm]'.")


def _axis_values(cfg: SuiteConfig) -> dict[str, list]:
    a = cfg.axes
    return {"backbone": a.backbone, "source": a.source, "ft_fraction": a.ft_fraction, "target": a.target,
            "transfer": a.transfer, "train_mode": a.train_mode, "seed": a.seed_list}


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
    from bench.backbones._base import STAGE_MAP_REVISION

    return BACKBONES.get(backbone).extra.get(STAGE_MAP_REVISION)


def _uses_stages(finetune: dict | None) -> bool:
    return any(stage.get("trainable", "all") != "all" for stage in (finetune or {}).get("schedule") or [])


def _pretrain_settings(cfg: SuiteConfig, backbone: str, where: str) -> dict:
    """The pre-training settings in a backbone's pretrain id: the common ones, plus the sub-block its own
    recipe reads (``BackboneSpec.extra["pretrain_settings"]``: ``"patch"`` for patch_cnn)."""
    from bench.backbones import BACKBONES

    out = _recalibration_in_id(cfg.pretrain.model_dump(exclude={"patch"}))
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
    data_opts = {d: _dataset_options(d, cfg.data.get(d), where)
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
