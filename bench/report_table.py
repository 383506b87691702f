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


def _leaves_range(mean: float, half_width: float | None, value_range: tuple[float, float] | None) -> bool:
    """True when ``mean ± half_width`` reaches past ``value_range`` (the metric's lowest and highest value)."""
    if value_range is None or half_width is None or not math.isfinite(half_width):
        return False
    return mean - half_width < value_range[0] or mean + half_width > value_range[1]


def _format_value(mean: float, half_width: float | None = None, *, low: float | None = None,
                  high: float | None = None, value_range: tuple[float, float] | None = None) -> str:
    """A cell's number: ``0.812 ± 0.031``, or ``0.507 (0.000–1.000)`` when the ± would leave the metric's range.

    ``mean ± half_width`` is printed while both ends lie inside ``value_range``; otherwise the interval's bounds
    ``low``–``high`` (cut at the range; taken from ``mean ± half_width`` when not given) follow the mean in
    brackets, so no printed number lies outside what the metric can take. No interval: the mean alone.
    """
    text = f"{mean:.3f}"
    if half_width is None or not math.isfinite(half_width):
        return text
    if not _leaves_range(mean, half_width, value_range):
        return text + f" ± {half_width:.3f}"
    lo = mean - half_width if low is None or not math.isfinite(low) else low
    hi = mean + half_width if high is None or not math.isfinite(high) else high
    return text + f" ({max(lo, value_range[0]):.3f}–{min(hi, value_range[1]):.3f})"


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
    if fraction >= 1:  # a number of patients ('20 patients' in a suite)
        return "FT 1 patient" if fraction == 1 else f"FT {fraction:g} patients"
    return f"FT {fraction:g}"


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
