"""Training modes: what is trainable in each stage of a schedule, new heads, presets, class weights.

A *schedule* is a list of stages; each stage names what is trainable, its learning rate, weight decay,
warm-up and number of epochs (see :class:`Stage`). ``trainable`` is one of

- ``"all"``: every parameter (today's plain fine-tuning);
- ``"head"``: the classifier only (Falconi's transfer learning, "TL");
- ``"from:<stage>"``: that stage, everything after it and the head (Falconi's fine-tuning from layer
  gamma, "FT": everything before gamma frozen), e.g. ``from:block3``;
- a list of stage names (``conv1``, ``block1`` .. ``block4``, ``head``).

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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

if TYPE_CHECKING:
    from bench.backbones import BackboneSpec

STAGE_NAMES = ("conv1", "block1", "block2", "block3", "block4")
HEAD = "head"


@dataclass(frozen=True)
class Stage:
    """One stage of a training schedule. The learning rate warms up linearly over ``warmup_epochs``
    then decays to zero with a cosine over the stage (``lr_decay="cosine"``) or stays constant."""

    epochs: int
    lr: float
    trainable: str | tuple[str, ...] = "all"
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    lr_decay: str = "cosine"

    @classmethod
    def from_dict(cls, d: dict) -> Stage:
        d = dict(d)
        if isinstance(d.get("trainable"), list):
            d["trainable"] = tuple(d["trainable"])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(d["trainable"], tuple):
            d["trainable"] = list(d["trainable"])
        return d


# Presets expand to explicit stages (records store the stages, never the name alone).
# Shen et al. 2019 used Adam with a constant rate per stage; bench uses AdamW (decoupled weight decay).
SCHEDULE_PRESETS: dict[str, list[dict[str, Any]]] = {
    # Patch classifier, 3-stage: last layer 3 epochs at 1e-3, top layers 10 at 1e-4, all 37 at 1e-5.
    # "Top layers" (46 layers of ResNet-50, 11 of VGG16) ~ the last stage, block4 (ResNet-50's layer4; VGG16's fifth
    # conv block: 3 convs, their BatchNorms and ReLUs, 9 layers). No weight decay is given.
    "shen-3stage": [
        {"trainable": "head", "epochs": 3, "lr": 1e-3, "weight_decay": 0.0, "lr_decay": "constant"},
        {"trainable": "from:block4", "epochs": 10, "lr": 1e-4, "weight_decay": 0.0, "lr_decay": "constant"},
        {"trainable": "all", "epochs": 37, "lr": 1e-5, "weight_decay": 0.0, "lr_decay": "constant"},
    ],
    # Whole-image classifier, 2-stage: newly added top layers 30 epochs at 1e-4 (weight decay 1e-3),
    # then all layers 20 epochs at 1e-5 (weight decay 1e-2). Here the newly added layers are the head.
    "shen-2stage": [
        {"trainable": "head", "epochs": 30, "lr": 1e-4, "weight_decay": 1e-3, "lr_decay": "constant"},
        {"trainable": "all", "epochs": 20, "lr": 1e-5, "weight_decay": 1e-2, "lr_decay": "constant"},
    ],
    # MorphHR (Wei et al.): Shen's 2-stage with weight decay 1e-4 and nothing frozen in stage 1.
    "morphhr-2stage": [
        {"trainable": "all", "epochs": 30, "lr": 1e-4, "weight_decay": 1e-4, "lr_decay": "constant"},
        {"trainable": "all", "epochs": 20, "lr": 1e-5, "weight_decay": 1e-4, "lr_decay": "constant"},
    ],
    # Falconi et al. 2020: TL trains the new head only at 1e-5, FT from layer gamma at 2e-7, both for up to
    # 1000 epochs with early stopping (patience 50) -- pair these with ``early_stopping``. gamma = block3 is
    # VGG16's layer 10 (the paper's VGG16-10-FT: Keras's block4 onwards) by our reading of Keras's layer lists;
    # VGG16's gamma 8 is about from:block2 and VGG19's gamma 17 from:block4 (suites/falconi.yaml names them).
    "falconi-tl": [{"trainable": "head", "epochs": 1000, "lr": 1e-5, "weight_decay": 0.0, "lr_decay": "constant"}],
    "falconi-ft": [{"trainable": "from:block3", "epochs": 1000, "lr": 2e-7, "weight_decay": 0.0,
                    "lr_decay": "constant"}],
}

# New classifier heads: global average pooling (the backbone's own) -> [Linear(hidden) -> ReLU] -> Dropout
# -> Linear(num_classes). Falconi's TL head has FC 4096 + dropout 0.2; its FT head only the dropout.
HEAD_PRESETS: dict[str, dict[str, Any]] = {
    "falconi-tl": {"hidden": 4096, "dropout": 0.2},
    "falconi-ft": {"hidden": 0, "dropout": 0.2},
}


def parse_trainable(trainable: str | Sequence[str], stages: Sequence[str] | None = None) -> tuple[str, ...] | str:
    """Check a ``trainable`` value; raise ValueError with the valid forms. Returns it normalised.

    ``stages`` are the network's stage names (``BackboneSpec.stage_names``; conv1 .. block4 for every built-in).
    Without them only the form is checked: a suite is parsed before its backbones are known, and the stages it
    names are checked against each backbone's by :func:`bench.backbones.check.check_suite_stages`.
    """
    forms = "'all', 'head', 'from:<stage>' or a list of stage names"

    def unknown(name) -> bool:  # not a stage (of ``stages``), or not even shaped like a stage name
        if stages is None:
            return not isinstance(name, str) or not name or ":" in name or any(c.isspace() for c in name)
        return name not in (*stages, HEAD)

    listed = ", ".join(stages) if stages is not None else "the backbone's (conv1, block1 .. block4 for the built-ins)"
    if isinstance(trainable, str):
        if trainable in ("all", HEAD):
            return trainable
        if trainable.startswith("from:"):
            stage = trainable[len("from:"):]
            if stage == HEAD:
                raise ValueError(f"trainable {trainable!r}: write 'head' to train the classifier only")
            if unknown(stage):
                raise ValueError(f"trainable {trainable!r}: unknown stage {stage!r}"
                                 f"{_did_you_mean(stage, stages or STAGE_NAMES)} Stages: {listed}.")
            return trainable
        if not unknown(trainable):
            return (trainable,)
        raise ValueError(f"trainable {trainable!r} is not {forms}"
                         f"{_did_you_mean(trainable, ('all', HEAD, *(stages or STAGE_NAMES)))} Stages: {listed}.")
    items = tuple(trainable)
    if not items:
        raise ValueError(f"trainable is an empty list: nothing would train. Use {forms}.")
    for s in items:
        if unknown(s):
            names = (*(stages or STAGE_NAMES), HEAD)
            raise ValueError(f"trainable: unknown stage {s!r}{_did_you_mean(str(s), names)}"
                             f" Stages: {', '.join(names) if stages is not None else listed + ', head'}.")
    return items


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    from bench.registry import closest

    hint = closest(name, list(choices))
    return f". Did you mean: {', '.join(repr(h) for h in hint)}?" if hint else "."


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


def finetune_stages(ft: dict) -> list[Stage]:
    """The explicit stages of a resolved ``finetune`` config: its ``schedule`` or one stage 'all'."""
    if ft.get("schedule"):
        return [Stage.from_dict(s) for s in ft["schedule"]]
    return [Stage(epochs=ft["epochs"], lr=ft["lr"], weight_decay=ft["weight_decay"],
                  warmup_epochs=ft["warmup_epochs"])]
