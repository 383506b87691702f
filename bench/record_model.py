"""The typed shape of a cell record (``results/<suite>/<cell_id>.json``), checked whenever one is read.

A record stays a plain dict everywhere (reports and analysis read its keys); this model only says what a
well-formed one is, so that a record damaged by hand or by another program is refused with the field that is
wrong instead of surfacing later as a KeyError in a report. Unknown keys are allowed: later versions add keys,
and older records lack the newer optional ones (``flags``, ``data``, ``bn_recalibration``, ...).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["CellAxes", "CellRecord", "Predictions", "record_problem"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CellAxes(_Open):
    """``record["cell"]``: the cell's axes."""

    backbone: str
    source: str
    ft_fraction: float
    target: str
    transfer: str
    train_mode: str = "default"
    seed: int


class Predictions(_Open):
    """``record["predictions"]``: one entry per evaluation image, every column of the same length."""

    image_id: list[str]
    label: list[int]
    score: list[float | None]
    patient_id: list[str | None] | None = None
    group_id: list[str | int | None] | None = None

    @model_validator(mode="after")
    def _same_length(self):
        n = len(self.image_id)
        for name in ("label", "score", "patient_id", "group_id", "score_plain"):
            col = getattr(self, name, None)
            if col is not None and len(col) != n:
                raise ValueError(f"predictions.{name} has {len(col)} entries for {n} images")
        return self


class CellRecord(_Open):
    """A cell record as :func:`bench.runner.cell.run_cell` and the worker write it (see :mod:`bench.records`)."""

    schema_version: int = Field(alias="schema")
    suite: str | None = None
    cell_id: str
    status: Literal["ok", "na", "failed"]
    reason: str | None = None
    cell: CellAxes
    config: dict
    metrics: dict[str, float | int | None] = {}
    predictions: Predictions | None = None
    history: list[dict] = []

    @model_validator(mode="after")
    def _ok_has_predictions(self):
        if self.status == "ok" and self.predictions is None:
            raise ValueError("status 'ok' without predictions")
        return self


def record_problem(record: dict) -> str | None:
    """Why ``record`` is not a well-formed cell record (``"metrics.auc: Input should be a valid number"``), or None.

    Only dicts with a ``cell`` key are cell records; others (pre-training sidecars, SVCCA records) are not checked.
    """
    if "cell" not in record:
        return None
    try:
        CellRecord.model_validate(record)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "record"
        return f"{where}: {err['msg'].removeprefix('Value error, ')}"
    return None
