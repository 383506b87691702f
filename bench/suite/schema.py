"""The suite schema: the pydantic models a suite file is validated into, and the cells it expands to.

Every block forbids unknown keys and is frozen. Settings that enter a cell's config say so; the rest (executor,
analysis) never change an id.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, Field, field_validator, model_validator

from bench.suite.axes import Axes
from bench.suite.base import DEFAULT_TRAIN_MODE, FrozenModel, closest_hint, freeze, suite_name_problem
from bench.suite.schedule import HEAD_PRESETS, SCHEDULE_PRESETS, Stage


class TrainSettings(FrozenModel):
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

    @classmethod
    def from_resolved(cls, config: dict) -> PretrainSettings:
        """The typed settings of a pre-training job's config (a cell's ``config["pretrain"]``: these fields plus
        the job's backbone, source, seed, image size and data). ``bn_recalibrate`` left out means off (see
        :func:`recalibration_in_id`), ``patch`` left out its defaults."""
        own = {k: config[k] for k in cls.model_fields if k in config}
        return cls.model_validate({**own, "bn_recalibrate": bool(config.get("bn_recalibrate", False))})


# A schedule stage as a suite writes it: the one definition, shared with bench.train (bench/suite/schedule.py).
StageSettings = Stage


class HeadSettings(FrozenModel):
    """A new classifier on the pooled features: [Linear(hidden) -> ReLU] -> Dropout -> Linear(2)."""

    hidden: int = Field(default=0, ge=0)  # 0: no hidden layer
    dropout: float = Field(default=0.0, ge=0, lt=1)


class EarlyStoppingSettings(FrozenModel):
    """Hold out ``val_fraction`` of the fine-tune part's patients; restore the epoch best on it."""

    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    metric: Literal["loss", "auc"] = "loss"
    patience: int | None = Field(default=None, ge=1)  # end a stage after this many epochs without improvement


def _preset(kind: str, presets: dict, v):
    if isinstance(v, str):
        if v not in presets:
            raise ValueError(f"unknown {kind} preset {v!r}.{closest_hint(v, list(presets))} Presets: {', '.join(presets)}"
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
        return _preset("schedule", SCHEDULE_PRESETS, v)

    @field_validator("head", mode="before")
    @classmethod
    def _head_preset(cls, v):
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

    @classmethod
    def from_resolved(cls, config: dict) -> FinetuneSettings:
        """The typed settings of a resolved ``finetune`` config (:meth:`resolved`'s output, as a cell's config and
        record hold it). A key left out means its default, except ``bn_recalibrate``: left out means off (see
        :func:`recalibration_in_id`)."""
        return cls.model_validate({**config, "bn_recalibrate": bool(config.get("bn_recalibrate", False))})

    def resolved(self) -> dict:
        """The settings as they enter a cell's config (and id): new fields only when not at their default."""
        out = self.model_dump(exclude={"schedule", "head", "augment", "class_weights", "early_stopping"})
        recalibration_in_id(out)
        if self.schedule is not None:
            for k in ("epochs", "lr", "weight_decay", "warmup_epochs"):
                out.pop(k)
            out["schedule"] = [s.model_dump() for s in self.schedule]
        for k in ("head", "augment", "class_weights", "early_stopping"):
            value = getattr(self, k)
            if value != type(self).model_fields[k].default:
                out[k] = value.model_dump() if isinstance(value, BaseModel) else value
        return out


def recalibration_in_id(settings: dict) -> dict:
    """``bn_recalibrate`` enters a config (and the id) only when on: results computed before it existed, which
    never re-estimated BatchNorm statistics, keep their ids exactly when a suite turns it off, and are never
    mixed with results computed with it."""
    if not settings.get("bn_recalibrate"):
        settings.pop("bn_recalibrate", None)
    return settings


class SvccaSettings(FrozenModel):
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


class AnalysisSettings(FrozenModel):
    """Optional analyses run after the cells (``analysis:`` in a suite)."""

    svcca: SvccaSettings | None = None


class ExecutorSettings(FrozenModel):
    """How ``bench run`` executes the suite (``executor:`` in a suite; ``--executor``/``--workers`` override it).

    Nothing here enters a cell id: the same cells computed by any executor are the same cells.
    """

    kind: Literal["local", "slurm"] = "local"
    workers: int = Field(default=1, ge=0)  # local: worker processes; 0 = in the runner's own process
    threads: int | None = Field(default=None, ge=1)  # torch threads per worker (default: cores / workers)
    # local, on a machine with GPUs: worker processes per GPU, so small cells overlap. "auto": from the GPU's free
    # memory and the CPU cores (bench.runner.local.auto_workers_per_gpu); with workers > 1 given, those are spread.
    workers_per_gpu: Union[Literal["auto"], int] = "auto"
    device: str | None = Field(default=None, pattern=r"^(cpu|cuda(:\d+)?)$")  # None: a GPU where there is one

    @field_validator("workers_per_gpu")
    @classmethod
    def _workers_per_gpu(cls, v):
        if v != "auto" and v < 1:
            raise ValueError(f"give 'auto' or a number of worker processes per GPU (1 or more), got {v!r}")
        return v
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


class SuiteConfig(FrozenModel):
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
class CellSettings:
    """A cell's resolved config (``Cell.config``, the dict its id hashes) read as typed fields, each key's absence
    meaning stated once, here: no ``finetune`` = No FT; no ``hybrid_stage`` = full transfer; no ``pretrain`` = a
    random or ImageNet source; no ``tta`` = "none"; no ``weights`` = the usual weights search. ``finetune`` is the
    suite's own :class:`FinetuneSettings` model (:meth:`FinetuneSettings.from_resolved`), so its defaults are the
    schema's; ``pretrain`` stays the pre-training job's config (its id hashes it)."""

    image_size: int | tuple[int, int]
    target_data: dict
    finetune: FinetuneSettings | None = None
    pretrain: dict | None = None
    hybrid_stage: str | None = None
    hybrid_width: float | None = None
    tta: str = "none"
    weights: str | None = None
    accept_partial_weights: bool = False

    @classmethod
    def of(cls, config: dict) -> CellSettings:
        size = config["image_size"]
        ft = config.get("finetune")
        return cls(image_size=size if isinstance(size, int) else tuple(size), target_data=config["target_data"],
                   finetune=None if ft is None else FinetuneSettings.from_resolved(ft),
                   pretrain=config.get("pretrain"), hybrid_stage=config.get("hybrid_stage"),
                   hybrid_width=config.get("hybrid_width"), tta=config.get("tta", "none"),
                   weights=config.get("weights"), accept_partial_weights=bool(config.get("accept_partial_weights",
                                                                                         False)))


@dataclass(frozen=True)
class Cell:
    """One point of the suite's product; ``config`` is everything its result depends on, frozen (a
    :class:`~bench.suite.base.FrozenDict`: the id hashes it), and ``settings`` is the same read as typed fields."""

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

    def __post_init__(self):
        object.__setattr__(self, "config", freeze(self.config))

    @cached_property
    def settings(self) -> CellSettings:
        """``config`` as typed fields (:class:`CellSettings`), read once."""
        return CellSettings.of(self.config)

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
