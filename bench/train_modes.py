"""Training modes: what is trainable in each stage of a schedule, new heads, class weights.

A *schedule* is a list of stages; each stage names what is trainable, its learning rate, weight decay,
warm-up and number of epochs (see :class:`Stage`). ``trainable`` is one of

- ``"all"``: every parameter (today's plain fine-tuning);
- ``"head"``: the classifier only (Falconi's transfer learning, "TL");
- ``"from:<stage>"``: that stage, everything after it and the head (Falconi's fine-tuning from layer
  gamma, "FT": everything before gamma frozen), e.g. ``from:block3``;
- a list of stage names (``conv1``, ``block1`` .. ``block4``, ``head``).

:class:`Stage`, :func:`parse_trainable` and the presets are the suite's own (:mod:`bench.suite.schedule`, one
definition for the suite file and for training), re-exported here.

Stage names are the backbone's (``BackboneSpec.stage_names``): conv1, block1 .. block4 for every built-in, fewer
or others for a plugin; a suite's are checked against each of its backbones when it is loaded.
Stages are mapped to parameters by :func:`bench.backbones.stage_of_tensors` (a traced forward pass):
``conv1`` includes the whole stem, and everything that runs after the last stage (``block4``; EfficientNet's
``conv_head``, VGG's ``pre_logits``, pooling, the classifier) is the ``head``.

Frozen means ``requires_grad = False`` (the optimiser never sees the parameter, so weight decay does not
touch it either) AND BatchNorm layers whose parameters are all frozen kept in eval mode, so their
running statistics do not move: a frozen part is bit-identical after training.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from bench.suite.schedule import HEAD, HEAD_PRESETS, SCHEDULE_PRESETS, STAGE_NAMES, Stage, parse_trainable

if TYPE_CHECKING:
    from bench.backbones import BackboneSpec
    from bench.suite.schema import FinetuneSettings

__all__ = ["HEAD", "HEAD_PRESETS", "SCHEDULE_PRESETS", "STAGE_NAMES", "MLPHead", "Stage", "apply_trainable",
           "balanced_class_weights", "finetune_stages", "head_module_name", "parse_trainable", "replace_head",
           "set_train_mode", "trainable_parameters"]


def head_module_name(model: nn.Module, spec: BackboneSpec | None = None) -> str:
    """Name of the classifier module: the backbone's declared ``BackboneSpec.head`` (``spec``, or the spec
    of the backbone ``create_backbone`` made the model from), else timm's ``get_classifier()``."""
    if spec is None and getattr(model, "bench_backbone", None):
        from bench.backbones import BACKBONES

        spec = BACKBONES.get(model.bench_backbone)
    get = getattr(model, "get_classifier", None)
    if spec is not None and spec.head:
        names = dict(model.named_modules())
        if spec.head in names or get is None:  # a hybrid network of the backbone has its own classifier
            if spec.head not in names:
                raise ValueError(f"{type(model).__name__} has no submodule {spec.head!r} (BackboneSpec.head of "
                                 f"{spec.name!r}); point BackboneSpec.head at the final nn.Linear")
            return spec.head
    if get is None:
        raise ValueError(f"{type(model).__name__} has neither a declared head (BackboneSpec.head) nor timm's "
                         "get_classifier(); declare BackboneSpec.head to give it a new head")
    target = get()
    for name, module in model.named_modules():
        if module is target and name:
            return name
    raise ValueError(f"{type(model).__name__}.get_classifier() is not a submodule of the model")


def trainable_parameters(model: nn.Module, trainable: str | Sequence[str], spec: BackboneSpec | None = None
                         ) -> set[str]:
    """Names of the parameters that ``trainable`` makes trainable.

    ``spec`` is the backbone's spec (optional for networks made by ``create_backbone``); the stage of each
    parameter comes from :func:`bench.backbones.stage_of_tensors`.
    """
    trainable = parse_trainable(trainable)
    names = [n for n, _ in model.named_parameters()]
    if trainable == "all":
        return set(names)
    from bench.backbones import stage_names, stage_of_tensors

    stages = stage_names(model, spec)
    trainable = parse_trainable(trainable, stages)  # a stage this network lacks is an error, never "train nothing"
    stage_of = stage_of_tensors(model, spec)
    if trainable == HEAD:
        wanted = {HEAD}
    elif isinstance(trainable, str):  # from:<stage>
        order = (*stages, HEAD)
        wanted = set(order[order.index(trainable[len("from:"):]):])
    else:
        wanted = set(trainable)
    return {n for n in names if stage_of[n] in wanted}


def apply_trainable(model: nn.Module, names: set[str]) -> None:
    """Set ``requires_grad`` to ``name in names`` for every parameter."""
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)


def set_train_mode(model: nn.Module, bn_train: bool = True) -> None:
    """``model.train()``, then BatchNorm in eval mode where frozen (all its parameters frozen) or when
    ``bn_train`` is False. A BatchNorm without affine parameters follows ``bn_train``."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            frozen = bool(params) and not any(p.requires_grad for p in params)
            m.train(bn_train and not frozen)


class MLPHead(nn.Sequential):
    """``[Linear(in, hidden) -> ReLU] -> Dropout(p) -> Linear(., num_classes)`` on pooled features."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 0, dropout: float = 0.0):
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(dropout), nn.Linear(hidden or in_features, num_classes)]
        super().__init__(*layers)


def replace_head(model: nn.Module, *, hidden: int = 0, dropout: float = 0.0, num_classes: int = 2,
                 spec: BackboneSpec | None = None) -> str:
    """Replace the classifier (a ``Linear`` after global average pooling) by an :class:`MLPHead` in place.

    The new layers are initialised from torch's global RNG (seed it first). Returns the head's module name.
    Raises ValueError for a backbone whose classifier is not a single ``Linear`` (declare
    ``BackboneSpec.head`` or give the backbone timm's ``get_classifier()``).
    """
    name = head_module_name(model, spec)
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"cannot replace the head of {type(model).__name__}: its classifier {name!r} is a "  # noqa: TRY004
                         f"{type(old).__name__}, not a Linear layer on pooled features; point BackboneSpec.head "
                         f"at the final nn.Linear inside it (e.g. {name + '.1'!r})")
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, MLPHead(old.in_features, num_classes, hidden, dropout))
    return name


def balanced_class_weights(labels: np.ndarray, num_classes: int = 2) -> np.ndarray:
    """MorphHR's class weights (Wei et al., eq. 6): inversely proportional to the class counts, mean 1.

    ``w[c] = (C / n_c) / sum_j (1 / n_j)``, so that every class contributes equally to an epoch's loss.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"class_weights 'balanced': class {int(np.flatnonzero(counts == 0)[0])} has no image in "
                         f"the fine-tune part (class counts {counts.astype(int).tolist()}); use a larger ft_fraction")
    inv = 1.0 / counts
    return num_classes * inv / inv.sum()


def finetune_stages(ft: FinetuneSettings) -> list[Stage]:
    """The explicit stages of a cell's fine-tuning settings (``Cell.settings.finetune``): its ``schedule`` or one
    stage 'all'."""
    if ft.schedule:
        return list(ft.schedule)
    return [Stage.one_stage(epochs=ft.epochs, lr=ft.lr, weight_decay=ft.weight_decay, warmup_epochs=ft.warmup_epochs)]
