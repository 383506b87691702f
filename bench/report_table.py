"""The pieces every report table shares (:mod:`bench.report`, :mod:`bench.report_paper`,
:mod:`bench.report_gain`): labels, number formatting, the table model and the report's fixed statistics settings.
No I/O, no torch."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from tabulate import tabulate

SOURCE_LABELS = {"random": "Random init", "imagenet": "ImageNet"}
FIRST_SOURCES = ("random", "imagenet")
NO_RECORD = "—"
TABLEFMT = "github"
CONFIDENCE = 0.95
N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def _format_value(mean: float, half_width: float | None = None) -> str:
    text = f"{mean:.3f}"
    if half_width is not None and math.isfinite(half_width):
        text += f" ± {half_width:.3f}"
    return text


def _unique(values: pd.Series) -> list:
    """Distinct non-null values in order of first appearance."""
    return list(pd.unique(values.dropna()))


def _source_order(sources: pd.Series) -> list:
    seen = _unique(sources)
    return [s for s in FIRST_SOURCES if s in seen] + [s for s in seen if s not in FIRST_SOURCES]


def _source_label(source: str) -> str:
    return SOURCE_LABELS.get(source, str(source))


def _fraction_label(fraction: float) -> str:
    if fraction == 0:
        return "No FT"
    return f"FT {fraction:g} patients" if fraction >= 1 else f"FT {fraction:g}"


@dataclass
class _Table:
    """A rendered-agnostic table: header cells, body rows (text), and the lines printed under it."""

    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        # disable_numparse: cells are already formatted text; tabulate must not turn "0.800" into "0.8".
        return tabulate(self.rows, headers=self.headers, tablefmt=TABLEFMT, disable_numparse=True)


def _bare_backbones(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``backbone`` back to the bare name (:func:`records_frame` appends " [<train mode>]")."""
    out = df.copy()
    suffixes = " [" + out["train_mode"].astype(str) + "]"
    out["backbone"] = [b[:-len(x)] if isinstance(b, str) and b.endswith(x) else b
                       for b, x in zip(out["backbone"], suffixes)]
    return out
