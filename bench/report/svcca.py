"""The representation section: the paper's Figure 1 as a table (rows target x network, columns conv1 .. block4),
per-layer similarity of the source-pretrained network A with B (fine-tuned) and B′ (BN-only reference), from the
SVCCA records (:mod:`bench.runner.svcca`). The figure itself is :func:`bench.report.figures.svcca_figure`."""
from __future__ import annotations

import math

import pandas as pd

from bench.analysis.intervals import metric_range, seed_intervals
from bench.report.blocks import Block, Figure, Heading, Note, Paragraph, Table
from bench.report.frames import SVCCA_LAYERS, SVCCA_REFERENCES, svcca_frame
from bench.report.notes import few_seeds_notes, range_note
from bench.report.render_md import table_or_note
from bench.report.table import CONFIDENCE, NO_RECORD, format_value, leaves_range, metric_caption, one_line, unique

__all__ = ["svcca_blocks", "svcca_table", "table_svcca"]


def svcca_table(frame: pd.DataFrame, measure: str = "svcca") -> Table | Note:
    """The block behind :func:`table_svcca` (same arguments), without notes."""
    if frame.empty or measure not in frame.columns:
        return Note("No SVCCA records.")
    layers = [layer for layer in SVCCA_LAYERS if layer in set(frame["layer"])]
    layers += [layer for layer in unique(frame["layer"]) if layer not in layers]
    keys = ["backbone", "source", "target", "reference", "layer"]
    summary = seed_intervals(frame, measure, keys=keys, confidence=CONFIDENCE)
    lookup = {tuple(r[k] for k in keys): r for _, r in summary.iterrows()}
    combos = list(frame[["backbone", "source"]].drop_duplicates().itertuples(index=False))
    many = len(combos) > 1
    rows = []
    for backbone, source in combos:
        for target in unique(frame.loc[(frame["backbone"] == backbone) & (frame["source"] == source), "target"]):
            first = True
            for ref, ref_label in SVCCA_REFERENCES.items():
                texts = []
                for layer in layers:
                    r = lookup.get((backbone, source, target, ref, layer))
                    texts.append(NO_RECORD if r is None or not math.isfinite(r["mean"]) else
                                 format_value(r["mean"], r["half_width"], low=r["low"], high=r["high"],
                                              value_range=metric_range(measure)))
                if all(t == NO_RECORD for t in texts):
                    continue
                rows.append([*([f"{backbone} / {source}"] if many else []), target if first else "",
                             ref_label, *texts])
                first = False
    return Table([*(["Network A"] if many else []), "Target", "Network", *layers], rows)


def table_svcca(frame: pd.DataFrame, *, measure: str = "svcca") -> str:
    """Per-layer similarity of network A (source-pretrained) with B (fine-tuned) and B' (BN-only reference).

    Args:
        frame: output of :func:`bench.report.frames.svcca_frame`.
        measure: ``"svcca"``, ``"pwcca"`` or ``"cka"``.

    Returns:
        A Markdown table: rows target x network (B, B'), columns conv1 .. block4, cells mean over seeds ± the
        half-width of the t interval (no "±" with one seed).
    """
    return table_or_note(svcca_table(frame, measure))


def _pooling_text(settings: dict) -> str:
    """What one datapoint of a layer's activations is, from the SVCCA run's settings."""
    if settings.get("pooling") == "mean":
        return "one per image (spatially averaged maps)"
    return (f"every spatial position of every image, subsampled to at most {settings.get('max_datapoints', '?'):,} "
            "per layer" if isinstance(settings.get("max_datapoints"), int) else "spatial positions")


def _protocol(settings: dict) -> str:
    """The paragraph that says how the SVCCA runs were made (split, networks A, B, B′, SVCCA settings)."""
    share = settings.get("ft_share", 0.2)
    epochs = ((settings.get("cell") or {}).get("finetune") or {}).get("epochs", "?")
    return ("Per target, a stratified, patient-grouped split into "
            f"{share:g} / {1 - share:g}. Network A = the source-pretrained network; B = A fine-tuned on the small "
            f"share ({epochs} epochs); B′ = A with only its BatchNorm statistics re-estimated on the small share (no "
            "gradient step). All are fed the large share; each layer's output is compared with A's by SVCCA (keep "
            f"{settings.get('keep', 0.99):g} of the spectrum, rule `{settings.get('rule', '?')}`), datapoints = "
            f"{_pooling_text(settings)}. 1 = fine-tuning left the layer's representation unchanged (up to a linear "
            "map).")


def _svcca_notes(frame: pd.DataFrame) -> list[str]:
    """The lines under the SVCCA table: the t interval, the seeds per target, the range rule when it applies."""
    n_seeds = frame.groupby(["backbone", "source", "target"])["seed"].nunique()
    summary = seed_intervals(frame, "svcca", keys=["backbone", "source", "target", "reference", "layer"],
                             confidence=CONFIDENCE)
    leaves = any(leaves_range(r.mean, r.half_width, metric_range("svcca")) for r in summary.itertuples())
    return [("Interval: ± = half-width of the 95 % t interval of the mean over seeds (t(0.975, n − 1) · s / √n); "
             f"seeds per target: {', '.join(map(str, sorted(set(n_seeds))))}."
             + (range_note("svcca") if leaves else "")),
            *few_seeds_notes(summary)]


def svcca_blocks(svcca_records: list[dict], figure: str | None) -> list[Block]:
    """The representation section: protocol, SVCCA (and CKA) tables, a caution for layers with few datapoints per
    neuron, the figure (``figure``: its path relative to the report) and the failed runs."""
    frame = svcca_frame(svcca_records)
    ok = [r for r in svcca_records if r.get("status") == "ok"]
    failed = [r for r in svcca_records if r.get("status") == "failed"]
    settings = (ok[0].get("config") or {}) if ok else {}
    blocks: list[Block] = [Heading("Representations: per-layer SVCCA before vs after fine-tuning"),
                           Paragraph(_protocol(settings))]
    if not frame.empty:
        table = svcca_table(frame, "svcca")
        if isinstance(table, Table):
            table = table.with_notes(_svcca_notes(frame))
        blocks += [Paragraph(f"**{metric_caption('svcca')}** (A vs B and A vs B′; rows: target × network, columns: "
                             "layer)"), table]
        if "cka" in frame.columns:
            blocks += [Paragraph(f"**{metric_caption('cka')}** (companion measure, same activations)"),
                       svcca_table(frame, "cka")]
        few = frame[frame["datapoints"] < 5 * frame["neurons"]]
        if not few.empty:
            layers = ", ".join(sorted(set(few["layer"]), key=lambda x: SVCCA_LAYERS.index(x) if x in SVCCA_LAYERS
                                      else 99))
            blocks.append(Paragraph(f"Caution: layer(s) {layers} had fewer than 5 datapoints per neuron for some "
                                    "runs; canonical correlations are then biased upwards."))
    if figure:
        blocks.append(Figure(figure, "Per-layer SVCCA similarity, one line per target"))
    if failed:
        blocks.append(Paragraph(f"{len(failed)} SVCCA run(s) failed: " + "; ".join(
            f"{(r.get('job') or {}).get('target')} seed {(r.get('job') or {}).get('seed')}: {one_line(r.get('reason'))}"
            for r in failed)))
    return blocks
