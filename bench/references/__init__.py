"""The seed studies' published numbers, machine-readable (``bench references``; the report's paper-vs-ours tables).

Each study's numbers are package data, ``bench/references/<study>.csv``: one row per value the paper prints in the
tables its suite reproduces, keyed by the cells of the study's own suite (``suites/<study>.yaml``) in bench's names::

    study, table, backbone, source, ft_fraction, target, transfer, train_mode, metric, value

``value`` is empty where the paper prints NA; ``train_mode`` is ``default`` for suites without that axis. The
``# table <name>: ...`` comment lines of a file say where each table is in the paper's text; the other comments say
what was left out and which mapping was chosen (also in docs/references.md).

Metrics (``metric``) and the quantity of ours each is compared with (:data:`OURS`):

- ``auc``: ROC AUC (our ``auc``);
- ``a_auc``: Shen et al.'s flip-averaged "A-AUC" (our ``auc`` of a suite with ``tta: flips``);
- ``falconi_auc``: Falconi et al.'s "AUC", their eq. 13, (1 + TPR - FPR) / 2: a balanced accuracy at the decision
  threshold, not a ROC AUC (our ``balanced_accuracy``);
- ``train_acc``, ``test_acc``, ``beta``: Falconi et al.'s accuracies and overfit ratio (our ``train_acc``,
  ``val_acc`` and ``beta``).

Plain Python (csv and importlib.resources): no torch, no pandas, so ``bench report`` and suite validation stay light.
"""
from __future__ import annotations

import csv
from importlib import resources

from bench.errors import UserError

__all__ = ["COLUMNS", "METRICS", "OURS", "UnknownStudyError", "check_study", "load_references", "studies",
           "table_notes", "twin_of"]

COLUMNS = ("study", "table", "backbone", "source", "ft_fraction", "target", "transfer", "train_mode", "metric",
           "value")
"""The keys of one reference row, in order (the CSV header and the JSON objects of ``bench references --json``)."""

METRICS: dict[str, str] = {
    "auc": "AUC",
    "a_auc": "A-AUC (flip-averaged prediction)",
    "falconi_auc": "Falconi's \"AUC\" = (1 + TPR − FPR) / 2",
    "train_acc": "training accuracy",
    "test_acc": "test accuracy",
    "beta": "β = train acc / test acc",
}
"""Every metric a reference row may name, with its display name."""

OURS: dict[str, str] = {"auc": "auc", "a_auc": "auc", "falconi_auc": "balanced_accuracy", "train_acc": "train_acc",
                        "test_acc": "val_acc", "beta": "beta"}
"""The record metric each published metric is compared with."""

TWIN_SUFFIX = "-synth"


class UnknownStudyError(UserError, ValueError):
    """A study name that has no published numbers in bench; the message lists the known ones."""


def _files() -> dict[str, object]:
    return {p.name[:-4]: p for p in resources.files(__name__).iterdir() if p.name.endswith(".csv")}


def studies() -> list[str]:
    """The studies with published numbers, sorted (the stems of ``bench/references/*.csv``)."""
    return sorted(_files())


def check_study(name: str) -> str:
    """``name`` if it is a known study, else :class:`UnknownStudyError` naming the closest and all known ones."""
    from bench.registry import closest

    known = studies()
    if name in known:
        return name
    hint = closest(str(name), known)
    did_you_mean = f" Did you mean: {', '.join(map(repr, hint))}?" if hint else ""
    raise UnknownStudyError(f"unknown study {name!r}.{did_you_mean} Known studies: {', '.join(known)} (bench "
                            "references lists their published numbers).")


def _lines(study: str) -> list[str]:
    return _files()[check_study(study)].read_text(encoding="utf-8").splitlines()


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def load_references(study: str | None = None, *, printed: bool = False) -> list[dict]:
    """The published values of one study (or of every study, in :func:`studies` order), in file order.

    Args:
        study: a name from :func:`studies`; None for all.
        printed: give ``value`` as the paper prints it (``"0.340"``, ``"NA"``) instead of a float or None.

    Returns:
        One dict per value with exactly the keys :data:`COLUMNS`: ``ft_fraction`` a number (an int when whole:
        ``0``, ``20``), ``value`` a float, or None where the paper prints NA.

    Raises:
        UnknownStudyError: ``study`` is not a known study.
    """
    out: list[dict] = []
    for name in [check_study(study)] if study is not None else studies():
        lines = _lines(name)
        body = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.startswith("#")]
        reader = csv.reader(ln for _, ln in body)
        header = next(reader)
        if tuple(header) != COLUMNS:  # an internal invariant of the shipped files (tested)
            raise ValueError(f"bench/references/{name}.csv: header {header}; expected {list(COLUMNS)}")
        for (lineno, _), row in zip(body[1:], reader):
            rec = dict(zip(COLUMNS, row))
            if len(row) != len(COLUMNS) or rec["study"] != name or rec["metric"] not in METRICS:
                raise ValueError(f"bench/references/{name}.csv line {lineno}: malformed reference row {row}")
            rec["ft_fraction"] = _number(rec["ft_fraction"])
            text = rec["value"].strip()
            rec["value"] = (text or "NA") if printed else (float(text) if text else None)
            out.append(rec)
    return out


def table_notes(study: str) -> dict[str, str]:
    """Where each table of ``study`` is in the paper's text, by table name (the ``# table <name>: ...`` lines)."""
    notes = {}
    for ln in _lines(study):
        if ln.startswith("# table "):
            name, _, text = ln[len("# table "):].partition(":")
            notes[name.strip()] = text.strip()
    return notes


def twin_of(suite_name: str | None) -> str | None:
    """The study whose synthetic twin ``suite_name`` is (``falconi-synth`` -> ``falconi``), else None."""
    if not suite_name or not suite_name.endswith(TWIN_SUFFIX):
        return None
    study = suite_name[:-len(TWIN_SUFFIX)]
    return study if study in studies() else None
