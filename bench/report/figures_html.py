"""The figures of the HTML report page (:mod:`bench.report.render_html`): drawn with matplotlib (Agg backend,
imported on first use) from the frames the tables read (:class:`bench.report.frames.ReportData`), returned as
``data:`` URIs (SVG, base64) so the page carries them inline. No file I/O.

One style for all (:data:`STYLE`), one colour per pre-training source across figures, and deterministic output:
the SVG hash salt is fixed and no date is written, so the same records give byte-identical figures.

Each figure function returns None when the data lacks what it needs (no finite AUC, no random-init reference, no
hybrid cell, no fine-tuned cell, no published value), so the page leaves the figure out instead of drawing an
empty one.
"""
from __future__ import annotations

import base64
import io
import math
from contextlib import contextmanager

import numpy as np
import pandas as pd

from bench.analysis.metrics import FALCONI_GAP
from bench.analysis.stats import seed_summary
from bench.report.frames import ReportData
from bench.report.table import CONFIDENCE, fraction_label, source_label, source_order, unique

__all__ = ["STYLE", "auc_share_figure", "beta_figure", "data_uri", "figure_blocks", "hybrid_figure", "paper_figure",
           "roc_cell", "roc_figure", "source_gain_figure"]

STYLE = {
    "svg.hashsalt": "bench-report", "svg.fonttype": "path", "font.size": 9.0, "axes.titlesize": 10.0,
    "axes.labelsize": 9.0, "legend.fontsize": 8.0, "axes.grid": True, "grid.color": "#dddddd",
    "grid.linewidth": 0.6, "axes.edgecolor": "#888888", "axes.spines.top": False, "axes.spines.right": False,
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
}
"""matplotlib rc settings of every HTML figure, over matplotlib's defaults (in a context: global settings are left
alone, and settings made elsewhere do not reach the figures)."""
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
            "#64b5cd")


def data_uri(payload: bytes | str, mime: str) -> str:
    """``payload`` as a base64 ``data:`` URI of type ``mime`` (``image/svg+xml``, ``image/png``)."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def _style():
    """Matplotlib's defaults plus :data:`STYLE`, whatever the process set before (seaborn's theme, for one);
    restored on exit."""
    import matplotlib

    with _pyplot().rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(STYLE)
        yield


def _svg(fig) -> str:
    """The figure as an SVG data URI (no date, fixed hash salt), then closed."""
    plt = _pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return data_uri(buf.getvalue(), "image/svg+xml")


def _colours(sources: list) -> dict:
    """One colour per source, in report order (random first)."""
    return {s: _PALETTE[i % len(_PALETTE)] for i, s in enumerate(sources)}


def _panels(n: int, *, width: float = 4.6, height: float = 3.4, sharey: bool = True):
    """A figure of ``n`` panels side by side (at most three a row)."""
    plt = _pyplot()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=sharey,
                             layout="constrained")  # rows of panels: labels of one row clear of the titles below
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _share_ticks(ax, fractions: list[float]) -> None:
    """Fine-tune shares as evenly spaced categories, labelled as the table's columns."""
    ax.set_xticks(range(len(fractions)), [fraction_label(f) for f in fractions])
    ax.set_xlim(-0.4, len(fractions) - 0.6)


def _jitter(n: int, spread: float = 0.08) -> np.ndarray:
    """Fixed horizontal offsets for ``n`` seed dots (deterministic, centred)."""
    return np.linspace(-spread, spread, n) if n > 1 else np.zeros(n)


def auc_share_figure(data: ReportData, target: str) -> str | None:
    """AUC against the fine-tune share for ``target`` (transfer = full): one panel per backbone, one line per
    pre-training source through the cell means, the 95 % interval of the tables (:attr:`ReportData.auc_intervals`)
    as error bars, each seed a dot. None when no cell of the target has a finite AUC."""
    df = data.df
    sub = df[(df["target"] == target) & (df["transfer"] == "full") & (df["status"] == "ok")
             & np.isfinite(df["auc"].to_numpy(dtype=float))]
    if sub.empty:
        return None
    iv = data.auc_intervals
    iv = iv[(iv["target"] == target) & (iv["transfer"] == "full")]
    fractions = sorted(set(sub["ft_fraction"]))
    sources = source_order(sub["source"])
    colour = _colours(source_order(df["source"]))
    backbones = unique(sub["backbone"])
    with _style():
        fig, axes = _panels(len(backbones))
        for ax, backbone in zip(axes, backbones):
            for k, source in enumerate(sources):
                cells = sub[(sub["backbone"] == backbone) & (sub["source"] == source)]
                if cells.empty:
                    continue
                offset = (k - (len(sources) - 1) / 2) * 0.06
                xs, means, lows, highs = [], [], [], []
                for i, f in enumerate(fractions):
                    seeds = cells[cells["ft_fraction"] == f]["auc"].to_numpy(dtype=float)
                    if not len(seeds):
                        continue
                    ax.scatter(i + offset + _jitter(len(seeds), 0.02), seeds, s=16, color=colour[source], alpha=0.6,
                               linewidths=0, zorder=2)
                    row = iv[(iv["backbone"] == backbone) & (iv["source"] == source) & (iv["ft_fraction"] == f)]
                    mean = float(row["mean"].iloc[0]) if not row.empty else float(np.mean(seeds))
                    low = float(row["low"].iloc[0]) if not row.empty else math.nan
                    high = float(row["high"].iloc[0]) if not row.empty else math.nan
                    xs.append(i + offset), means.append(mean), lows.append(low), highs.append(high)
                means_a, lows_a, highs_a = np.array(means), np.array(lows), np.array(highs)
                has = np.isfinite(lows_a) & np.isfinite(highs_a)
                ax.plot(xs, means_a, marker="o", markersize=4, color=colour[source], label=source_label(source),
                        zorder=3)
                if has.any():
                    ax.errorbar(np.array(xs)[has], means_a[has],
                                yerr=[means_a[has] - lows_a[has], highs_a[has] - means_a[has]], fmt="none",
                                ecolor=colour[source], elinewidth=1, capsize=3, zorder=3)
            ax.axhline(0.5, color="#999999", linestyle=":", linewidth=1)
            _share_ticks(ax, fractions)
            ax.set_ylim(0, 1.02)
            ax.set_title(str(backbone))
            ax.set_xlabel("share of the target used for fine-tuning")
        axes[0].set_ylabel("AUC (mean, 95 % interval; dots: seeds)")
        legend = {}  # every source of any panel, once, in report order
        for ax in axes:
            legend.update({label: h for h, label in zip(*ax.get_legend_handles_labels()) if label not in legend})
        fig.legend(list(legend.values()), list(legend), title="pre-training", loc="outside right upper",
                   frameon=False)
        return _svg(fig)


def _paired_deltas(sub: pd.DataFrame, reference: str, axis: str, keys: list[str]) -> pd.DataFrame:
    """Per seed, the AUC of each cell minus the AUC of the ``reference`` cell of the same ``keys`` and seed; then
    the mean and 95 % t interval over seeds (none with one seed)."""
    ok = sub[(sub["status"] == "ok") & np.isfinite(sub["auc"].to_numpy(dtype=float))]
    ref = ok[ok[axis] == reference].set_index([*keys, "seed"])["auc"]
    ref = ref[~ref.index.duplicated()]
    rows = []
    for key, cells in ok[ok[axis] != reference].groupby([*keys, axis], sort=False):
        deltas = []
        for r in cells.itertuples():
            at = tuple(getattr(r, k) for k in keys) + (r.seed,)
            if at in ref.index:
                deltas.append(r.auc - ref[at])
        if deltas:
            s = seed_summary(np.asarray(deltas, dtype=float), confidence=CONFIDENCE, value_range=(-1.0, 1.0))
            rows.append({**dict(zip([*keys, axis], key)), "deltas": deltas, "mean": s["mean"], "low": s["low"],
                         "high": s["high"]})
    return pd.DataFrame(rows)


def source_gain_figure(data: ReportData, target: str) -> str | None:
    """Forest plot for ``target``: per backbone x fine-tune share x source, the paired ΔAUC against random
    initialisation (same backbone, share and seed), mean over seeds with its 95 % t interval, each seed a dot.
    None without a random-init reference or another source."""
    df = data.df
    sub = df[(df["target"] == target) & (df["transfer"] == "full")]
    deltas = _paired_deltas(sub, "random", "source", ["backbone", "ft_fraction"])
    if deltas.empty:
        return None
    colour = _colours(source_order(df["source"]))
    order = {s: i for i, s in enumerate(source_order(df["source"]))}
    deltas["_order"] = deltas["source"].map(order)
    deltas = deltas.sort_values(["backbone", "ft_fraction", "_order"], kind="stable",
                                key=lambda c: c.map({b: i for i, b in enumerate(unique(sub["backbone"]))})
                                if c.name == "backbone" else c)
    labels = [f"{r.backbone} · {fraction_label(r.ft_fraction)} · {source_label(r.source)}"
              for r in deltas.itertuples()]
    plt = _pyplot()
    with _style():
        fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(deltas)))
        for y, r in enumerate(deltas.itertuples()):
            c = colour[r.source]
            ax.scatter(r.deltas, [y + d for d in _jitter(len(r.deltas), 0.12)], s=10, color=c, alpha=0.45,
                       linewidths=0, zorder=2)
            if math.isfinite(r.low) and math.isfinite(r.high):
                ax.plot([r.low, r.high], [y, y], color=c, linewidth=1.6, zorder=3)
            ax.plot([r.mean], [y], marker="D", markersize=5, color=c, zorder=4)
        ax.axvline(0, color="#555555", linewidth=1)
        ax.set_yticks(range(len(deltas)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("ΔAUC vs random init, same seed (mean, 95 % t interval over seeds; dots: seeds)")
        ax.set_title(f"{target}: gain of each pre-training source over random initialisation")
        return _svg(fig)


def hybrid_figure(data: ReportData, target: str) -> str | None:
    """Full vs hybrid transfer for ``target``, paired by seed: one dot per backbone x source x share x seed, full
    AUC across, hybrid AUC up, colour = source; dots above the diagonal favour hybrid. None without pairs."""
    df = data.df
    sub = df[(df["target"] == target) & (df["status"] == "ok") & np.isfinite(df["auc"].to_numpy(dtype=float))]
    keys = ["backbone", "source", "ft_fraction", "seed"]
    full = sub[sub["transfer"] == "full"].drop_duplicates(keys).set_index(keys)["auc"]
    hybrid = sub[sub["transfer"] == "hybrid"].drop_duplicates(keys).set_index(keys)["auc"]
    pairs = pd.concat({"full": full, "hybrid": hybrid}, axis=1, join="inner").reset_index()
    if pairs.empty:
        return None
    colour = _colours(source_order(df["source"]))
    fractions = sorted(set(pairs["ft_fraction"]))
    markers = dict(zip(fractions, "osD^vP*X"))
    plt = _pyplot()
    with _style():
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1)
        for source in source_order(pairs["source"]):
            for f in fractions:
                p = pairs[(pairs["source"] == source) & (pairs["ft_fraction"] == f)]
                if not p.empty:
                    ax.scatter(p["full"], p["hybrid"], s=26, color=colour[source], marker=markers.get(f, "o"),
                               alpha=0.8, label=f"{source_label(source)}, {fraction_label(f)}")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("AUC, full transfer (all weights)")
        ax.set_ylabel("AUC, hybrid transfer")
        ax.set_title(f"{target}: full vs hybrid, paired by seed")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
        return _svg(fig)


def beta_figure(data: ReportData, target: str) -> str | None:
    """β = train acc / val acc per cell of ``target`` (transfer = full, fine-tuned cells): one panel per backbone,
    one line per source through the means, the 95 % interval of the β table, seeds as dots; a red ring and ‡ where
    Falconi's flag is set (training accuracy more than 10 points above evaluation accuracy). None without β."""
    df = data.df
    sub = df[(df["target"] == target) & (df["transfer"] == "full") & (df["status"] == "ok")
             & (df["ft_fraction"] > 0) & np.isfinite(df["beta"].to_numpy(dtype=float))]
    if sub.empty:
        return None
    iv = data.beta_intervals
    iv = iv[(iv["target"] == target) & (iv["transfer"] == "full")]
    fractions = sorted(set(sub["ft_fraction"]))
    colour = _colours(source_order(df["source"]))
    sources = source_order(sub["source"])
    backbones = unique(sub["backbone"])
    plt = _pyplot()
    with _style():
        fig, axes = _panels(len(backbones))
        for ax, backbone in zip(axes, backbones):
            for k, source in enumerate(sources):
                cells = sub[(sub["backbone"] == backbone) & (sub["source"] == source)]
                offset = (k - (len(sources) - 1) / 2) * 0.06
                xs, means = [], []
                for i, f in enumerate(fractions):
                    seeds = cells[cells["ft_fraction"] == f]["beta"].to_numpy(dtype=float)
                    if not len(seeds):
                        continue
                    x = i + offset
                    ax.scatter(x + _jitter(len(seeds), 0.02), seeds, s=16, color=colour[source], alpha=0.6,
                               linewidths=0, zorder=2)
                    row = iv[(iv["backbone"] == backbone) & (iv["source"] == source) & (iv["ft_fraction"] == f)]
                    mean = float(row["mean"].iloc[0]) if not row.empty else float(np.mean(seeds))
                    if not row.empty and math.isfinite(row["low"].iloc[0]) and math.isfinite(row["high"].iloc[0]):
                        ax.errorbar([x], [mean], yerr=[[mean - row["low"].iloc[0]], [row["high"].iloc[0] - mean]],
                                    fmt="none", ecolor=colour[source], elinewidth=1, capsize=3, zorder=3)
                    if (backbone, source, f, target, "full") in data.overfit:
                        ax.scatter([x], [mean], s=110, facecolors="none", edgecolors="#c0392b", linewidths=1.4,
                                   zorder=4, label="_flag")
                    xs.append(x), means.append(mean)
                if xs:
                    ax.plot(xs, means, marker="o", markersize=4, color=colour[source], label=source_label(source),
                            zorder=3)
            ax.axhline(1.0, color="#999999", linestyle=":", linewidth=1)
            _share_ticks(ax, fractions)
            ax.set_title(str(backbone))
            ax.set_xlabel("share of the target used for fine-tuning")
        axes[0].set_ylabel("β = train acc / val acc (1 = no overfitting)")
        handles, labels = axes[-1].get_legend_handles_labels()
        if data.overfit:
            handles.append(plt.Line2D([], [], marker="o", markersize=9, markerfacecolor="none", linestyle="none",
                                      markeredgecolor="#c0392b"))
            labels.append(f"‡ train acc > val acc + {FALCONI_GAP * 100:.0f} pts")
        fig.legend(handles, labels, title="pre-training", loc="outside right upper", frameon=False)
        return _svg(fig)


ROC_SEEDS_LABELLED = 5
"""Up to this many seeds the ROC figure labels each seed's curve with its AUC; beyond, one entry gives the range."""
ROC_SEEDS_DRAWN = 10
"""At most this many seeds' curves per panel (the first by seed number; the legend's AUC range covers them all)."""


def roc_cell(data: ReportData, target: str) -> tuple[str, float] | None:
    """The cell column whose ROC curves the page draws for ``target``: the first backbone and the largest fine-tune
    share that has stored predictions (transfer = full), as (backbone, share); None when no cell has them."""
    df = data.df
    with_preds = set(data.predictions["cell_id"])
    sub = df[(df["target"] == target) & (df["transfer"] == "full") & (df["status"] == "ok")
             & df["cell_id"].isin(with_preds)]
    if sub.empty:
        return None
    backbone = unique(sub["backbone"])[0]
    return backbone, float(sub[sub["backbone"] == backbone]["ft_fraction"].max())


def roc_figure(data: ReportData, target: str) -> str | None:
    """ROC curves of the :func:`roc_cell` column of ``target``: one panel per pre-training source, each seed a
    curve (scikit-learn's ``roc_curve`` on the stored per-image margins; at most :data:`ROC_SEEDS_DRAWN`), labelled
    with the record's AUC, the chance diagonal. None without one."""
    from sklearn.metrics import roc_curve

    chosen = roc_cell(data, target)
    if chosen is None:
        return None
    backbone, share = chosen
    df = data.df
    sub = df[(df["target"] == target) & (df["transfer"] == "full") & (df["status"] == "ok")
             & (df["backbone"] == backbone) & (df["ft_fraction"] == share)]
    preds = data.predictions
    by_cell = dict(tuple(preds[preds["cell_id"].isin(sub["cell_id"])].groupby("cell_id", sort=False)))
    colour = _colours(source_order(df["source"]))
    sources = [s for s in source_order(sub["source"]) if any(c in by_cell for c in sub[sub["source"] == s]["cell_id"])]
    with _style():
        fig, axes = _panels(len(sources), width=3.4, height=3.4)
        for ax, source in zip(axes, sources):
            rows = [r for r in sub[sub["source"] == source].sort_values("seed").itertuples()
                    if r.cell_id in by_cell and by_cell[r.cell_id]["label"].nunique() == 2]
            few = len(rows) <= ROC_SEEDS_LABELLED
            aucs = [float(r.auc) for r in rows]  # the records' AUC: the number the tables show
            for rec, auc in list(zip(rows, aucs))[:ROC_SEEDS_DRAWN]:
                preds = by_cell[rec.cell_id]
                fpr, tpr, _ = roc_curve(preds["label"], preds["score"])
                # a legend entry per seed while it stays short; with more seeds, one entry for all of them
                ax.plot(fpr, tpr, color=colour[source], linewidth=1.2 if few else 0.7, alpha=0.8 if few else 0.35,
                        label=f"seed {rec.seed}: AUC {auc:.3f}" if few else None)
            if not few:
                drawn = f", {ROC_SEEDS_DRAWN} drawn" if len(rows) > ROC_SEEDS_DRAWN else ""
                ax.plot([], [], color=colour[source],
                        label=f"{len(rows)} seeds{drawn}: AUC {min(aucs):.3f}–{max(aucs):.3f}")
            ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_aspect("equal")
            ax.set_title(source_label(source))
            ax.set_xlabel("1 − specificity")
            ax.legend(loc="lower right", frameon=False)
        axes[0].set_ylabel("sensitivity")
        fig.suptitle(f"{target}: {backbone}, {fraction_label(share)}, full transfer", y=1.02)
        return _svg(fig)


def paper_figure(frame: pd.DataFrame) -> str | None:
    """Paper value against ours for every published value with a number on both sides
    (:func:`bench.report.paper.paper_vs_ours`): the diagonal is agreement; bars are our 95 % interval; colour =
    metric. None when no value can be compared."""
    if frame is None or frame.empty or "paper" not in frame or "ours" not in frame:
        return None
    both = frame[np.isfinite(pd.to_numeric(frame["paper"], errors="coerce").to_numpy(dtype=float))
                 & np.isfinite(pd.to_numeric(frame["ours"], errors="coerce").to_numpy(dtype=float))]
    if both.empty:
        return None
    metric_col = "ours_metric" if "ours_metric" in both else "metric"
    metrics = unique(both[metric_col].astype(str))
    colour = _colours(metrics)
    plt = _pyplot()
    with _style():
        fig, ax = plt.subplots(figsize=(4.8, 4.2))
        values = np.concatenate([both["paper"].to_numpy(dtype=float), both["ours"].to_numpy(dtype=float)])
        lo, hi = min(0.0, float(values.min())), max(1.0, float(values.max()))
        ax.plot([lo, hi], [lo, hi], color="#999999", linestyle="--", linewidth=1)
        for metric in metrics:
            m = both[both[metric_col].astype(str) == metric]
            x, y = m["paper"].to_numpy(dtype=float), m["ours"].to_numpy(dtype=float)
            low = pd.to_numeric(m.get("low"), errors="coerce").to_numpy(dtype=float) if "low" in m else y * np.nan
            high = pd.to_numeric(m.get("high"), errors="coerce").to_numpy(dtype=float) if "high" in m else y * np.nan
            has = np.isfinite(low) & np.isfinite(high)
            if has.any():
                ax.errorbar(x[has], y[has], yerr=[y[has] - low[has], high[has] - y[has]], fmt="none",
                            ecolor=colour[metric], elinewidth=1, alpha=0.7)
            ax.scatter(x, y, s=22, color=colour[metric], label=metric, zorder=3)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("published value")
        ax.set_ylabel("ours (mean over seeds, 95 % interval)")
        ax.set_title("Paper vs ours")
        ax.legend(loc="upper left", frameon=True)
        return _svg(fig)


def figure_blocks(data: ReportData, *, paper: pd.DataFrame | None = None) -> tuple[list, dict[str, str]]:
    """The page's figures section: per target, AUC against the fine-tune share (always, where there is an AUC),
    ΔAUC of each source against random init, full vs hybrid, β and the ROC curves of one cell column (where the
    data has them); then paper vs ours.

    Returns:
        The blocks (level-3 headings per target and :class:`bench.report.blocks.Figure` blocks) and the images by
        ``Figure.path`` (data URIs), for :func:`bench.report.render_html.html_page`.
    """
    from bench.report.blocks import Figure, Heading

    blocks: list = []
    images: dict[str, str] = {}
    kinds = (("auc-share", auc_share_figure, "AUC against the share of the target used for fine-tuning (transfer = "
                                             "full): mean over seeds with the tables' 95 % interval, each seed a dot; "
                                             "one panel per backbone, one line per pre-training source."),
             ("source-gain", source_gain_figure, "Paired ΔAUC of each pre-training source against random "
                                                 "initialisation (same backbone, fine-tune share and seed): mean "
                                                 "over seeds, 95 % t interval, each seed a dot."),
             ("hybrid", hybrid_figure, "Full vs hybrid transfer, paired by seed: above the diagonal, hybrid "
                                       "scored higher."),
             ("beta", beta_figure, "Falconi's β per cell (fine-tuned cells); ‡ = training accuracy more than "
                                   f"{FALCONI_GAP * 100:.0f} points above evaluation accuracy."),
             ("roc", roc_figure, "ROC curves of one cell per pre-training source (the first backbone at the "
                                 "largest fine-tune share, named above the panels), each seed a curve, from the "
                                 "stored per-image margins."))
    for i, target in enumerate(unique(data.df["target"])):
        found = []
        for kind, draw, caption in kinds:
            image = draw(data, target)
            if image is not None:
                path = f"figures/{kind}-{i}.svg"
                images[path] = image
                found.append(Figure(path, f"`{target}`: {caption}"))
        if found:
            blocks += [Heading(f"Figures: target `{target}`", level=3), *found]
    image = paper_figure(paper) if paper is not None else None
    if image is not None:
        images["figures/paper-vs-ours.svg"] = image
        blocks += [Heading("Figures: paper vs ours", level=3),
                   Figure("figures/paper-vs-ours.svg", "Published values against ours (mean over seeds, 95 % "
                                                       "interval); on the diagonal they agree.")]
    return blocks, images
