"""The text of one table cell (every seed of one backbone x source x ft_fraction x target x transfer) and the
lookups the tables share: columns, intervals and significance marks by cell. The cell text rules are in
:mod:`bench.report`'s docstring."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.intervals import CELL_KEYS, metric_range, seed_intervals
from bench.report.table import CONFIDENCE, NO_RECORD, SIGNIFICANT, format_value

__all__ = ["cell_text", "fractions", "interval_lookup", "significance_marks", "undefined_column"]


def _t_interval(values: np.ndarray, metric: str) -> dict | None:
    """The t interval over seeds of ``values``, cut at the metric's range; None with fewer than two values."""
    if len(values) < 2:
        return None
    return seed_intervals(pd.DataFrame({"k": 0, "v": values}), "v", keys=["k"], confidence=CONFIDENCE,
                          value_range=metric_range(metric)).iloc[0].to_dict()


def cell_text(rows: pd.DataFrame, metric: str, *, interval: dict | None = None, mark: str = "") -> str:
    """The text of one table cell from all of its records (one per seed); see :mod:`bench.report`.

    ``interval`` is the cell's row of :func:`bench.analysis.intervals.cell_intervals` (``half_width``, ``low``,
    ``high``); without it the t interval over seeds is used. ``mark`` (†, ‡, ⚑, ...) follows the number.
    """
    if rows.empty:
        return NO_RECORD
    ok = rows[rows["status"] == "ok"]
    values = ok[metric].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    counts = rows.loc[rows["status"] != "ok", "status"].value_counts()
    notes = [f"{counts[s]} {'NA' if s == 'na' else s}" for s in sorted(counts.index, key=lambda s: (s != "failed", s))]
    if len(ok) > len(values):
        notes.append(f"{len(ok) - len(values)} n/a")
    if len(values):
        iv = interval if interval is not None else _t_interval(values, metric)
        number = (format_value(values.mean()) if iv is None else
                  format_value(values.mean(), iv["half_width"], low=iv["low"], high=iv["high"],
                               value_range=metric_range(metric)))
        return (number + (f" {mark}" if mark else "")
                + (f" ({', '.join(notes)})" if notes else ""))
    if len(counts) == 1 and len(ok) == 0:  # every seed has the same non-ok status
        return "NA" if counts.index[0] == "na" else str(counts.index[0])
    if len(counts) == 0:  # every seed finished, none has a value
        return "n/a"
    return ", ".join(notes)


def undefined_column(rows: pd.DataFrame, metric: str) -> bool:
    """True when runs finished in this column but none has the metric and none failed (beta at No FT)."""
    ok = rows[rows["status"] == "ok"]
    return (len(ok) > 0 and not np.isfinite(ok[metric].to_numpy(dtype=float)).any()
            and not (rows["status"] == "failed").any())


def fractions(df: pd.DataFrame, *, positive_only: bool = False) -> list[float]:
    """The ft_fractions of ``df`` in increasing order (only those above 0 with ``positive_only``)."""
    values = sorted(set(df["ft_fraction"].dropna().tolist()))
    return [f for f in values if f > 0] if positive_only else values


def interval_lookup(intervals: pd.DataFrame | None) -> dict[tuple, dict]:
    """(cell keys) -> the cell's interval row (``half_width``, ``low``, ``high``, ...)."""
    if intervals is None or intervals.empty:
        return {}
    return {tuple(r[k] for k in CELL_KEYS): r.to_dict() for _, r in intervals.iterrows()}


def significance_marks(tests: pd.DataFrame | None) -> dict[tuple, str]:
    """(cell keys) -> :data:`bench.report.table.SIGNIFICANT`, for the significant comparisons of a
    :func:`bench.analysis.paired.paired_tests` result."""
    if tests is None or tests.empty:
        return {}
    return {tuple(r[k] for k in CELL_KEYS): SIGNIFICANT for _, r in tests[tests["significant"]].iterrows()}
