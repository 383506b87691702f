"""The report of a suite, rendered only from its records: Markdown, LaTeX, an HTML page and the figures.

Nothing here trains, predicts or re-scores: every number is read from a record's ``metrics`` or recomputed from its
stored ``predictions`` by :mod:`bench.analysis` (intervals, DeLong tests), and aggregated over seeds. The tables
follow the layout of Bulathsinghalage & Liu, "Transfer learning pre-training dataset effect analysis for breast
cancer imaging":

- :func:`table_transfer` is their Tables 1-3: one target, rows backbone x pre-training source, columns "No FT",
  "FT 0.1", "FT 0.2", ...
- :func:`table_all_vs_hybrid` is their Table 4: rows target x source, cells "full vs hybrid".
- :func:`table_svcca` is their Figure 1 as a table (rows target x reference, columns conv1 .. block4), and
  :func:`svcca_figure` the figure itself.
- a suite that names its paper (``reference:``) also gets the paper's published values beside ours, one table per
  table of the paper (:mod:`bench.report.paper`); a synthetic twin says that it reproduces no published number.

Cell text (one table cell = every seed of one backbone x source x ft_fraction x target x transfer):

- ``0.812 ± 0.031``: mean over the seeds that finished with a value, ± the half-width of its 95 % interval (the
  rule, from :mod:`bench.analysis.intervals`, is printed under each table: t over seeds with two or more seeds, the
  patient bootstrap of the AUC with one; no "±" when there is no interval);
- ``0.507 (0.000–1.000)``: the same, when mean ± half-width would leave what the metric can take ([0, 1]; β ≥ 0):
  the interval's bounds, cut at that range, in brackets instead of the "±";
- ``0.812 ± 0.031 †``: the cell differs significantly from the reference row of the same column (random
  initialisation; in the full-vs-hybrid table, the full transfer), by :mod:`bench.analysis.paired`;
- ``1.31 ‡`` in the beta table: Falconi's flag, training accuracy more than 10 points above evaluation accuracy;
- ``0.812 (1 failed)``: seeds that did not give a value are counted in brackets;
- ``NA``: every seed is status ``na`` (not applicable; the reason is stated in the report);
- ``failed``: every seed failed; ``n/a``: every seed finished but the metric is undefined for it
  (e.g. beta without fine-tuning, AUC on a one-class evaluation set); ``—``: no record at all.

Under a table, when they apply: a *few seeds* note for cells whose t interval rests on two seeds, with each of
their seeds' patient-bootstrap AUC interval (:func:`bench.analysis.intervals.seed_bootstraps`), and one sentence
when ± and † disagree in that table (overlapping intervals with †, or separate ones without).

Row order: backbones and targets in order of first appearance in the records (pass records in suite-expansion order
to get the suite's order); sources ``random`` first, ``imagenet`` second, then the others in order of first
appearance.

The package, in the order data flows through it:

- :mod:`~bench.report.frames`: records to frames (per seed) and the per-cell statistics of one report;
- :mod:`~bench.report.table`, :mod:`~bench.report.cells`, :mod:`~bench.report.notes`, :mod:`~bench.report.checks`:
  what the tables share (labels, formatting, cell text, the lines under a table, the check marks);
- one builder per table kind, each giving typed blocks (:mod:`~bench.report.blocks`): :mod:`~bench.report.auc`
  (the main table), :mod:`~bench.report.sens_spec`, :mod:`~bench.report.gain`, :mod:`~bench.report.hybrid`,
  :mod:`~bench.report.modes` (train modes), :mod:`~bench.report.beta`, :mod:`~bench.report.paper`,
  :mod:`~bench.report.flagged` (flagged and failed cells), :mod:`~bench.report.svcca`;
- :mod:`~bench.report.document`: the whole report as one block list;
- :mod:`~bench.report.render_md`, :mod:`~bench.report.render_tex` and :mod:`~bench.report.render_html`: the three
  renderers of that list (the HTML page adds a header and the figures of :mod:`~bench.report.figures_html`);
- :mod:`~bench.report.figures` and :mod:`~bench.report.write`: the figures and the report folder.
"""
from __future__ import annotations

from bench.report.auc import table_transfer
from bench.report.figures import accuracy_curves_figure, svcca_figure
from bench.report.frames import (  # noqa: F401  (names bench.report had before it became a package)
    AXES,
    CHECK_COLUMNS,
    RECORD_METRICS,
    SVCCA_LAYERS,
    SVCCA_REFERENCES,
    predictions_frame,
    records_frame,
    svcca_frame,
)
from bench.report.hybrid import table_all_vs_hybrid
from bench.report.modes import MODE_KEYS, mode_tests, table_train_modes  # noqa: F401
from bench.report.render_md import TABLEFMT  # noqa: F401
from bench.report.svcca import table_svcca
from bench.report.table import (  # noqa: F401
    ALPHA,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    FIRST_SOURCES,
    HIGHER_IS_BETTER,
    METRIC_NAMES,
    N_RESAMPLES,
    NO_RECORD,
    OVERFIT,
    SIGNIFICANT,
    SOURCE_LABELS,
    metric_caption,
)
from bench.report.write import render_report, render_report_html, render_report_latex, write_report

__all__ = [
    "HIGHER_IS_BETTER",
    "accuracy_curves_figure",
    "metric_caption",
    "mode_tests",
    "predictions_frame",
    "records_frame",
    "render_report",
    "render_report_html",
    "render_report_latex",
    "svcca_figure",
    "svcca_frame",
    "table_all_vs_hybrid",
    "table_svcca",
    "table_train_modes",
    "table_transfer",
    "write_report",
]
