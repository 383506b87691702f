"""How much fine-tuning adds, on the same images: each FT cell against its own No-FT network, rescored.

A No-FT cell is scored on the whole target; an FT cell on what remains after its fine-tune share. Comparing the two
columns of one row as printed compares different images. But a No-FT network never changes, and its record keeps
its score for every image of the target, so it can be *rescored* on any FT cell's evaluation images without
running anything: this module does that and tests FT against No FT on exactly those images (DeLong per seed,
seeds combined, Holm over the table: :func:`bench.analysis.paired.paired_tests`).

Pure functions: DataFrames in, DataFrames out; no I/O, no torch.
"""
from __future__ import annotations

import pandas as pd

from bench.analysis.intervals import CELL_KEYS
from bench.analysis.paired import paired_tests

__all__ = ["GAIN_KEYS", "finetune_gain_tests", "rescore_no_ft"]

GAIN_KEYS = list(CELL_KEYS)
STAGE = "stage"  # the axis the compared cells differ in: "no_ft" (rescored) or "ft"


def _bare(backbone: str, mode: str) -> str:
    suffix = f" [{mode}]"
    return backbone[:-len(suffix)] if isinstance(backbone, str) and backbone.endswith(suffix) else backbone


def rescore_no_ft(frame: pd.DataFrame, predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pair every fine-tuned full-transfer record with its No-FT record restricted to the same evaluation images.

    Parameters
    ----------
    frame : DataFrame
        :func:`bench.report.records_frame` of the records (``backbone`` may carry a `` [<train mode>]`` suffix).
    predictions : DataFrame
        :func:`bench.report.predictions_frame` of the same records.

    Returns
    -------
    (frame, predictions)
        One row per FT record (``stage`` "ft") and one per rescored No-FT network (``stage`` "no_ft", cell id
        ``<no-ft id>@<ft id>``, the FT row's axes), with the predictions of both; the No-FT network of a
        (backbone, source, target, seed) serves the FT cells of every train mode.
    """
    ok = frame[(frame["status"] == "ok") & (frame["transfer"] == "full")]
    no_ft = {(_bare(r.backbone, r.train_mode), r.source, r.target, r.seed): r.cell_id
             for r in ok[ok["ft_fraction"] == 0].itertuples()}
    by_cell = dict(tuple(predictions.groupby("cell_id", sort=False))) if not predictions.empty else {}
    rows, preds = [], []
    for r in ok[ok["ft_fraction"] > 0].itertuples():
        source_id = no_ft.get((_bare(r.backbone, r.train_mode), r.source, r.target, r.seed))
        mine = by_cell.get(r.cell_id)
        if source_id is None or mine is None or source_id not in by_cell:
            continue
        base = {k: getattr(r, k) for k in (*GAIN_KEYS, "seed", "train_mode")}
        pseudo = f"{source_id}@{r.cell_id}"
        rescored = by_cell[source_id][by_cell[source_id]["image_id"].isin(set(mine["image_id"]))]
        rows += [{**base, "cell_id": r.cell_id, "status": "ok", STAGE: "ft"},
                 {**base, "cell_id": pseudo, "status": "ok", STAGE: "no_ft"}]
        preds += [mine, rescored.assign(cell_id=pseudo)]
    columns = ["cell_id", "status", *GAIN_KEYS, "seed", "train_mode", STAGE]
    return (pd.DataFrame(rows, columns=columns),
            pd.concat(preds, ignore_index=True) if preds else predictions.iloc[:0])


def finetune_gain_tests(frame: pd.DataFrame, predictions: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """FT vs its No-FT network on the FT cell's evaluation images, per table cell (``GAIN_KEYS``).

    Returns :func:`bench.analysis.paired.paired_tests`'s columns: ``auc`` is the fine-tuned AUC, ``auc_reference``
    the No-FT network's AUC on the same images, ``difference`` the gain; Holm runs over every row passed in.
    """
    pairs, preds = rescore_no_ft(frame, predictions)
    if pairs.empty:
        return pd.DataFrame(columns=[*GAIN_KEYS, STAGE, "n_seeds", "auc", "auc_reference", "difference", "p_holm",
                                     "significant"])
    return paired_tests(pairs, preds, axis=STAGE, reference="no_ft", keys=GAIN_KEYS, alpha=alpha)
