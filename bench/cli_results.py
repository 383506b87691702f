"""``bench report`` and ``bench verify``: the subcommands that read a results folder (no torch import), and the
report writing that ``bench run`` shares with them."""
from __future__ import annotations

import sys
from pathlib import Path

from bench.cli_common import CliError, resolve_reports_root
from bench.records import (
    MANIFEST,
    SVCCA_DIR,
    current_records,
    damaged_records,
    in_suite_order,
    latest_per_cell,
    latest_svcca_records,
    load_records,
    read_record_any,
    record_file_problem,
)


def folder_svcca_records(folder: Path, suite=None) -> list[dict]:
    if suite is None:  # `bench report`: whatever the folder holds (no torch import)
        return latest_svcca_records(folder / SVCCA_DIR)
    from bench.runner.svcca import svcca_dir, svcca_records

    return svcca_records(svcca_dir(folder.parent, folder.name), suite)


def write_suite_reports(records: list[dict], suite: str, reports_root: Path, svcca_records: list[dict] | None = None,
                        folder: Path | None = None, reference: str | None = None) -> Path:
    from bench.report import write_report

    man = read_record_any(folder / MANIFEST) if folder is not None else None
    records = in_suite_order(records, man)
    shown = {r.get("cell_id") for r in records}
    stale = 0 if folder is None else sum(1 for p in folder.glob("*.json")
                                         if not p.name.startswith("_") and p.stem not in shown)
    if stale:
        print(f"note: {stale} record(s) in {folder} belong to an earlier configuration of the suite (for instance "
              "before BatchNorm re-estimation) and are left out of the report", file=sys.stderr)
    # The study the suite reproduces (its `reference:`): given by `bench run`, else from the folder's manifest, so
    # `bench report` shows the paper's numbers beside ours without loading the suite (or torch).
    config = (man or {}).get("config") or {}
    if reference is None:
        reference = config.get("reference")
    return write_report(records, reports_root / suite, suite=suite, svcca_records=svcca_records, stale=stale,
                        reference=reference, description=config.get("description") or None)


def _folder_records(results_dir: str, empty: str) -> tuple[Path, list[dict]]:
    """The results folder and its records (damaged files named on stderr); ``empty``: the error without records."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise CliError(f"{folder}: no such results folder. Run 'bench run SUITE' first, or pass results/<suite>.")
    records = load_records(folder)
    if not records:
        raise CliError(f"{folder}: {empty}")
    _note_damaged(folder, records)
    return folder, records


def cmd_report(args) -> int:
    folder, records = _folder_records(args.results_dir, "no cell records (*.json) found; is this a results/<suite> "
                                                        "folder?")
    if args.suite:
        from bench.suite import suite_name_problem

        if suite_name_problem(args.suite):
            raise CliError(f"--suite: {suite_name_problem(args.suite)}")
    reports = resolve_reports_root(args.reports)
    records = current_records(folder, records)
    records, dropped = latest_per_cell(records)
    if dropped:
        print(f"note: {dropped} older record(s) with the same axes but another config were left out "
              f"(the newest of each is reported)", file=sys.stderr)
    suite = args.suite or records[0].get("suite") or folder.name
    path = write_suite_reports(records, suite, reports, folder_svcca_records(folder), folder=folder)
    if args.curves:
        from bench.report import accuracy_curves_figure

        curves = accuracy_curves_figure(records, path.parent / "curves.png")
        print(f"curves: {curves}" if curves else "curves: no record has a fine-tuning history", file=sys.stderr)
    print(f"report: {path} (+ report.tex, index.html{', svcca.png' if (path.parent / 'svcca.png').exists() else ''})")
    if args.print:
        print(path.read_text())
    return 0


def _note_damaged(folder: Path, records: list[dict]) -> None:
    """Say which *.json files of a results folder are not readable records (they are left out)."""
    bad = damaged_records(folder, skip={f"{r.get('cell_id')}.json" for r in records})
    if bad:
        print(f"note: {len(bad)} file(s) in {folder} are not complete records and were left out: "
              f"{', '.join(f'{p.name} ({record_file_problem(p)})' for p in bad[:5])}{' ...' if len(bad) > 5 else ''}"
              " ('bench run SUITE' recomputes a cell whose record is damaged)", file=sys.stderr)


def cmd_verify(args) -> int:
    """Recompute every stored metric from the record's own predictions; report any disagreement."""
    from bench.runner.cell import recompute_metrics

    folder, records = _folder_records(args.results_dir, "no cell records found; pass a results/<suite> folder")
    bad, checked = 0, 0
    for r in records:
        if r["status"] != "ok":
            continue
        checked += 1
        fresh = recompute_metrics(r)
        # only what the record stores: a metric added later (balanced_accuracy) is not a disagreement
        diffs = {k: (r["metrics"].get(k), v) for k, v in fresh.items()
                 if k in r["metrics"] and not _same(r["metrics"].get(k), v)}
        if diffs:
            bad += 1
            print(f"{r['cell_id']}: stored vs recomputed {diffs}")
    print(f"{checked} ok records checked against scikit-learn on their own predictions: "
          f"{'all agree' if not bad else f'{bad} disagree'}")
    return 1 if bad else 0


def _same(a, b, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol or (a != a and b != b)  # NaN == NaN here


def cmd_compare(args) -> int:
    """``bench compare RESULTS_A RESULTS_B``: the shared cells' AUCs, differences and tests, and the settings that
    differ, as Markdown on stdout (and an HTML page with ``--html``)."""
    from bench.analysis.compare import compare_records
    from bench.report.compare import TITLE, compare_blocks, compare_markdown

    html = Path(args.html) if args.html else None
    if html is not None and html.is_dir():  # checked before any work
        raise CliError(f"--html {html}: is a folder; pass a file name, e.g. {html / 'compare.html'}")
    runs = []
    for which, results_dir in (("A", args.results_a), ("B", args.results_b)):
        folder, records = _folder_records(results_dir, f"no cell records (*.json) found (RESULTS_{which}); pass a "
                                                       "results/<suite> folder")
        # the suite's own cell order (as `bench report`); the table follows run A's
        runs.append((folder, in_suite_order(current_records(folder, records), read_record_any(folder / MANIFEST))))
    (folder_a, records_a), (folder_b, records_b) = runs
    comparison = compare_records(records_a, records_b)
    if not comparison.n_shared:
        n_a, n_b = len(comparison.only_a), len(comparison.only_b)
        raise CliError(f"{folder_a} and {folder_b} share no finished (ok) cell: A has {n_a} ok cell(s), B has {n_b}; "
                       "cells are matched on backbone, source, target, ft_fraction, transfer, train_mode and seed. "
                       "Pass two results folders of the same suite (or of suites with common cells).")
    print(compare_markdown(comparison, name_a=str(folder_a), name_b=str(folder_b)), end="")
    if html is not None:
        from bench.report.render_html import html_page

        html.parent.mkdir(parents=True, exist_ok=True)
        blocks = compare_blocks(comparison, name_a=str(folder_a), name_b=str(folder_b), heading=False)
        html.write_text(html_page(blocks, title=TITLE), encoding="utf-8")
        print(f"html: {html}", file=sys.stderr)
    return 0
