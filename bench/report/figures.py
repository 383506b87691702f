"""The report's figures, drawn with seaborn on the Agg backend (imported on first use): the per-layer SVCCA figure
(the paper's Figure 1) and, on request, the training-accuracy curves."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis.intervals import metric_range
from bench.report.frames import SVCCA_LAYERS, SVCCA_REFERENCES, as_float
from bench.report.table import CONFIDENCE, METRIC_NAMES, fraction_label, source_label, unique

__all__ = ["accuracy_curves_figure", "svcca_figure"]


def _t_errorbar(metric: str):
    """A seaborn ``errorbar`` callable: the 95 % t interval over seeds, cut at the metric's range (none for one)."""
    from bench.analysis.stats import seed_summary

    def t_interval(values) -> tuple[float, float]:
        s = seed_summary(np.asarray(values, dtype=float), confidence=CONFIDENCE, value_range=metric_range(metric))
        return (s["low"], s["high"]) if s["n"] >= 2 else (s["mean"], s["mean"])

    return t_interval


def svcca_figure(frame: pd.DataFrame, path: str | Path, *, measure: str = "svcca") -> Path:
    """The paper's Figure 1: per-layer similarity, one line per target, error bars = 95 % t interval over seeds
    (cut at [0, 1]).

    Solid lines are network B (fine-tuned on the 20 %), dashed lines the BN-only reference B'. With several
    (backbone, source) pairs there is one panel per pair. Written with seaborn (Agg backend) to ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = frame[np.isfinite(frame[measure].to_numpy(dtype=float))].copy()
    order = [layer for layer in SVCCA_LAYERS if layer in set(data["layer"])]
    data["layer"] = pd.Categorical(data["layer"], categories=order, ordered=True)
    data["network"] = data["reference"].map(SVCCA_REFERENCES)
    data["panel"] = data["backbone"].astype(str) + " pre-trained on " + data["source"].astype(str)
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=data, x="layer", y=measure, hue="target", style="network", col="panel", kind="line",
                       markers=True, dashes={SVCCA_REFERENCES["finetuned"]: "", SVCCA_REFERENCES["bn_only"]: (4, 2)},
                       errorbar=_t_errorbar(measure), err_style="bars", height=3.6, aspect=1.3,
                       facet_kws={"sharey": True})
    grid.set_axis_labels("layer", METRIC_NAMES.get(measure, measure) + " (A vs B)")
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.set_ylim(0, 1.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.savefig(path, dpi=120)
    plt.close(grid.figure)
    return path


def accuracy_curves_figure(records: list[dict], path: str | Path) -> Path | None:
    """Training-accuracy curves per cell (on request: ``bench report --curves``), one panel per target.

    Solid lines: the running training accuracy of each fine-tuning epoch (mean over seeds, 95 % t interval as a
    band), one colour per source, one line style per fine-tune fraction. Dotted horizontal lines: the final
    evaluation accuracy (``val_acc``) of the same cells, mean over seeds. Per-epoch accuracy on the evaluation
    images is not recorded (the evaluation set is never looked at during training), so the gap between the two is
    shown at the end of training only, as in Falconi's beta. Returns None when no record has a history.
    """
    rows, finals = [], []
    for rec in records:
        cell = rec.get("cell") or {}
        if rec.get("status") != "ok" or not rec.get("history"):
            continue
        label = {"target": cell.get("target"), "source": source_label(cell.get("source")),
                 "fine-tune": fraction_label(float(cell.get("ft_fraction") or 0))
                 + (f" ({cell.get('transfer')})" if cell.get("transfer") != "full" else ""), "seed": cell.get("seed")}
        for entry in rec["history"]:
            if entry.get("running_train_acc") is not None:
                rows.append({**label, "epoch": entry.get("epoch"), "accuracy": entry["running_train_acc"]})
        finals.append({**label, "val_acc": as_float((rec.get("metrics") or {}).get("val_acc"))})
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data, final = pd.DataFrame(rows), pd.DataFrame(finals)
    sources = unique(data["source"])
    palette = dict(zip(sources, sns.color_palette(n_colors=len(sources))))
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=data, x="epoch", y="accuracy", hue="source", style="fine-tune", col="target",
                       kind="line", palette=palette, errorbar=_t_errorbar("accuracy"), height=3.4, aspect=1.2)
    for target, ax in grid.axes_dict.items():
        means = final[final["target"] == target].groupby(["source", "fine-tune"])["val_acc"].mean()
        for (source, _), value in means.items():
            if math.isfinite(value):
                ax.axhline(value, color=palette[source], linestyle=":", linewidth=1.2)
        ax.set_ylim(0, 1.02)
    grid.set_axis_labels("fine-tuning epoch", "accuracy (solid: training, dotted: final evaluation)")
    grid.set_titles("{col_name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.savefig(path, dpi=110)
    plt.close(grid.figure)
    return path
