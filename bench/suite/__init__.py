"""Suites: YAML -> validated, frozen config -> cells.

A suite is a product of axes (backbone x source x ft_fraction x target x transfer x train_mode x seed)
minus exclusions. Every cell carries its fully resolved config and a content-hash id, so a
result on disk can always be matched to exactly the config that produced it.

Errors name the file, the field path, the bad value and the closest valid names::

    suites/typo.yaml: axes.backbone[0]: unknown backbone 'resnet81'. Did you mean: 'resnet18'? ...

The parts, each importable on its own (none imports torch, bench.train or bench.train_modes; the registries of
bench.backbones and bench.data are imported when a suite is checked):

- :mod:`~bench.suite.base`: ``SuiteError``, constants, the frozen model base;
- :mod:`~bench.suite.schedule`: fine-tuning schedule stages, ``trainable`` and the presets;
- :mod:`~bench.suite.axes`: the axes and ``ft_fraction`` (a share or a number of patients);
- :mod:`~bench.suite.schema`: the settings blocks, ``SuiteConfig``, ``Cell`` and ``Suite``;
- :mod:`~bench.suite.messages`: error messages of the schema;
- :mod:`~bench.suite.cells`: per-backbone settings, train modes, expansion and ids;
- :mod:`~bench.suite.checks`: names, exclusions, analyses and stages against the registries;
- :mod:`~bench.suite.load`: finding, reading and building a suite.
"""
from bench.suite.axes import Axes, ft_fraction_text, parse_ft_fraction
from bench.suite.base import (
    DEFAULT_TRAIN_MODE,
    PROTOCOL_VERSION,
    SPECIAL_SOURCES,
    STAGES,
    SUITES_DIR,
    SuiteError,
    suite_name_problem,
)
from bench.suite.cells import (
    DATA_KEYS,
    PER_BACKBONE_KEYS,
    backbone_config,
    content_hash,
    dataset_options,
    expand,
    identity_hash,
    na_reason,
    stage_map_revision,
    train_modes,
)
from bench.suite.checks import check_suite_stages
from bench.suite.load import (
    build_suite,
    list_suites,
    load_suite,
    resolve_suite_path,
    suite_description,
)
from bench.suite.messages import error_message
from bench.suite.schema import (
    AnalysisSettings,
    Cell,
    EarlyStoppingSettings,
    ExecutorSettings,
    FinetuneSettings,
    HeadSettings,
    PatchPretrainSettings,
    PretrainSettings,
    StageSettings,
    Suite,
    SuiteConfig,
    SvccaSettings,
    TrainSettings,
)

# The name this function had when bench.suite was one module (benchmarks/bn_recalibration.py imports it).
_dataset_options = dataset_options

__all__ = [
    "DATA_KEYS",
    "DEFAULT_TRAIN_MODE",
    "PER_BACKBONE_KEYS",
    "PROTOCOL_VERSION",
    "SPECIAL_SOURCES",
    "STAGES",
    "SUITES_DIR",
    "AnalysisSettings",
    "Axes",
    "Cell",
    "EarlyStoppingSettings",
    "ExecutorSettings",
    "FinetuneSettings",
    "HeadSettings",
    "PatchPretrainSettings",
    "PretrainSettings",
    "StageSettings",
    "Suite",
    "SuiteConfig",
    "SuiteError",
    "SvccaSettings",
    "TrainSettings",
    "backbone_config",
    "build_suite",
    "check_suite_stages",
    "content_hash",
    "dataset_options",
    "error_message",
    "expand",
    "ft_fraction_text",
    "identity_hash",
    "list_suites",
    "load_suite",
    "na_reason",
    "parse_ft_fraction",
    "resolve_suite_path",
    "stage_map_revision",
    "suite_description",
    "suite_name_problem",
    "train_modes",
]
