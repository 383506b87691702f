"""Fine-tuning schedules as a suite writes them: stages, what each trains, and the named presets.

This is the one definition of a schedule stage: a suite's ``finetune.schedule`` entries are validated as
:class:`Stage`, and :func:`bench.train.fit` runs the same objects (:mod:`bench.train_modes` re-exports them).
Nothing here imports torch, so loading a suite stays light.

``trainable`` is one of

- ``"all"``: every parameter (plain fine-tuning);
- ``"head"``: the classifier only (Falconi's transfer learning, "TL");
- ``"from:<stage>"``: that stage, everything after it and the head (Falconi's fine-tuning from layer
  gamma, "FT": everything before gamma frozen), e.g. ``from:block3``;
- a list of stage names (``conv1``, ``block1`` .. ``block4``, ``head``).

Stage names are the backbone's (``BackboneSpec.stage_names``): conv1, block1 .. block4 for every built-in, fewer
or others for a plugin; a suite's are checked against each of its backbones when it is loaded
(:func:`bench.suite.checks.check_suite_stages`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from bench.registry import closest
from bench.suite.base import FrozenModel

STAGE_NAMES = ("conv1", "block1", "block2", "block3", "block4")
HEAD = "head"


def parse_trainable(trainable: str | Sequence[str], stages: Sequence[str] | None = None) -> tuple[str, ...] | str:
    """Check a ``trainable`` value; raise ValueError with the valid forms. Returns it normalised.

    ``stages`` are the network's stage names (``BackboneSpec.stage_names``; conv1 .. block4 for every built-in).
    Without them only the form is checked: a suite is parsed before its backbones are known, and the stages it
    names are checked against each backbone's by :func:`bench.suite.checks.check_suite_stages`.
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
    hint = closest(name, list(choices))
    return f". Did you mean: {', '.join(repr(h) for h in hint)}?" if hint else "."


class Stage(FrozenModel):
    """One stage of a training schedule. The learning rate warms up linearly over ``warmup_epochs``
    then decays to zero with a cosine over the stage (``lr_decay="cosine"``) or stays constant.

    ``trainable`` is checked for its form here (a list of stages is stored as a list); against the network's
    stages when it trains (:func:`bench.train_modes.trainable_parameters`).
    """

    trainable: str | list[str] = "all"
    epochs: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_epochs: int = Field(default=0, ge=0)
    lr_decay: Literal["cosine", "constant"] = "cosine"

    @field_validator("trainable")
    @classmethod
    def _trainable(cls, v):
        parsed = parse_trainable(v)
        return list(parsed) if isinstance(parsed, tuple) else parsed

    @model_validator(mode="after")
    def _warmup(self):
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) is longer than the stage ({self.epochs} epochs)")
        return self

    @classmethod
    def one_stage(cls, *, epochs: int, lr: float, weight_decay: float = 1e-4, warmup_epochs: int = 0) -> Stage:
        """The single stage training everything that one-stage settings (``epochs``/``lr``/``weight_decay``/
        ``warmup_epochs`` of a settings block, or of :func:`bench.train.fit`) stand for. Not checked again:
        those blocks check their own fields, and allow a warm-up longer than the training."""
        return cls.model_construct(epochs=epochs, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs)

    def to_dict(self) -> dict:
        return self.model_dump()


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
