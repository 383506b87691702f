"""The pieces every report table shares: labels, metric names and captions, number formatting, the marks, and the
report's fixed statistics settings. No I/O, no torch."""
from __future__ import annotations

import math

import pandas as pd

from bench.analysis.intervals import METRIC_DIRECTION, metric_range

__all__ = ["ALPHA", "BOOTSTRAP_SEED", "CONFIDENCE", "FIRST_SOURCES", "HIGHER_IS_BETTER", "METRIC_NAMES",
           "N_RESAMPLES", "NO_RECORD", "OVERFIT", "SIGNIFICANT", "SOURCE_LABELS", "bare_backbones", "format_value",
           "fraction_label", "leaves_range", "metric_caption", "one_line", "range_text", "source_label",
           "source_order", "unique"]

SOURCE_LABELS = {"random": "Random init", "imagenet": "ImageNet"}
FIRST_SOURCES = ("random", "imagenet")
NO_RECORD = "—"
CONFIDENCE = 0.95
N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
ALPHA = 0.05
SIGNIFICANT = "†"
"""Marks a cell that differs significantly from its reference cell (a paired DeLong test, Holm-corrected)."""
OVERFIT = "‡"
"""Marks a β cell with Falconi's flag: training accuracy more than 10 points above evaluation accuracy."""

METRIC_NAMES: dict[str, str] = {
    "auc": "AUC",
    "accuracy": "Accuracy",
    "f1": "F1",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "train_acc": "Training accuracy",
    "val_acc": "Evaluation accuracy",
    "beta": "Overfit ratio β = train acc / val acc",
    "svcca": "SVCCA similarity",
    "pwcca": "PWCCA similarity",
    "cka": "Linear CKA",
}

HIGHER_IS_BETTER: dict[str, bool] = {metric: way == "higher" for metric, way in METRIC_DIRECTION.items()}
""":data:`bench.analysis.intervals.METRIC_DIRECTION` as booleans (the name the report had before)."""


def metric_caption(metric: str) -> str:
    """The metric's display name with ↑ (higher is better) or ↓ (lower is better) when known.

    The direction is :data:`bench.analysis.intervals.METRIC_DIRECTION`.
    """
    arrow = {"higher": " ↑", "lower": " ↓"}.get(METRIC_DIRECTION.get(metric), "")
    return METRIC_NAMES.get(metric, metric) + arrow


def range_text(metric: str) -> str:
    """What ``metric`` can take, in words: "what AUC can take ([0, 1])"."""
    low, high = metric_range(metric)
    name = "β" if metric == "beta" else METRIC_NAMES.get(metric, metric)
    return f"what {name} can take (" + (f"[{low:g}, {high:g}]" if math.isfinite(high) else f"≥ {low:g}") + ")"


def leaves_range(mean: float, half_width: float | None, value_range: tuple[float, float] | None) -> bool:
    """True when ``mean ± half_width`` reaches past ``value_range`` (the metric's lowest and highest value)."""
    if value_range is None or half_width is None or not math.isfinite(half_width):
        return False
    return mean - half_width < value_range[0] or mean + half_width > value_range[1]


def format_value(mean: float, half_width: float | None = None, *, low: float | None = None,
                 high: float | None = None, value_range: tuple[float, float] | None = None) -> str:
    """A cell's number: ``0.812 ± 0.031``, or ``0.507 (0.000–1.000)`` when the ± would leave the metric's range.

    ``mean ± half_width`` is printed while both ends lie inside ``value_range``; otherwise the interval's bounds
    ``low``–``high`` (cut at the range; taken from ``mean ± half_width`` when not given) follow the mean in
    brackets, so no printed number lies outside what the metric can take. No interval: the mean alone.
    """
    text = f"{mean:.3f}"
    if half_width is None or not math.isfinite(half_width):
        return text
    if not leaves_range(mean, half_width, value_range):
        return text + f" ± {half_width:.3f}"
    lo = mean - half_width if low is None or not math.isfinite(low) else low
    hi = mean + half_width if high is None or not math.isfinite(high) else high
    return text + f" ({max(lo, value_range[0]):.3f}–{min(hi, value_range[1]):.3f})"


def unique(values: pd.Series) -> list:
    """Distinct non-null values in order of first appearance."""
    return list(pd.unique(values.dropna()))


def source_order(sources: pd.Series) -> list:
    """The sources of ``sources`` in report order: ``random``, ``imagenet``, then the others as they appear."""
    seen = unique(sources)
    return [s for s in FIRST_SOURCES if s in seen] + [s for s in seen if s not in FIRST_SOURCES]


def source_label(source: str) -> str:
    """A source as a row label: "Random init", "ImageNet", else its name."""
    return SOURCE_LABELS.get(source, str(source))


def fraction_label(fraction: float) -> str:
    """An ft_fraction as a column label: "No FT", "FT 0.2", or "FT 20 patients" for a number of patients."""
    if fraction == 0:
        return "No FT"
    if fraction >= 1:  # a number of patients ('20 patients' in a suite)
        return "FT 1 patient" if fraction == 1 else f"FT {fraction:g} patients"
    return f"FT {fraction:g}"


def one_line(text: str | None, limit: int = 240) -> str:
    """A reason fit for one Markdown table cell: one line (a traceback's last line), no pipes, bounded."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if not lines:
        return "(no reason recorded)"
    line = lines[-1] if lines[0].startswith("Traceback") else " ".join(lines)
    line = line.replace("|", "\\|")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def bare_backbones(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with ``backbone`` back to the bare name (:func:`bench.report.frames.records_frame` appends
    " [<train mode>]")."""
    out = df.copy()
    suffixes = " [" + out["train_mode"].astype(str) + "]"
    out["backbone"] = [b[:-len(x)] if isinstance(b, str) and b.endswith(x) else b
                       for b, x in zip(out["backbone"], suffixes)]
    return out
