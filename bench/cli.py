"""Command line: ``bench run | plan | status | validate | report | list``. It parses arguments and calls the library."""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.cli_common import AXES, CliError, resolve_reports_root, resolve_results_root  # noqa: F401  (AXES: bench.cli's name)
from bench.cli_results import (  # write_suite_reports: also bench.cli's name, used by tests
    folder_svcca_records,
    write_suite_reports,
    cmd_compare,
    cmd_report,
    cmd_verify,
)
from bench.errors import UserError

EPILOG = """examples:
  bench run smoke                      run the smoke suite on synthetic data, then render its report
  bench validate suites/smoke.yaml     check a suite; print cells, NA cells and pre-training jobs
  bench run smoke --workers 2          two worker processes; another 'bench run' may share the results folder
  bench plan smoke                     print the job graph, what is done, and a cost estimate
  bench status results/smoke           done / failed / running / pending cells, with reasons
  bench report results/smoke           re-render the tables from stored records (no training)
  bench compare results/smoke r2/smoke the same cells of two runs: AUCs, paired DeLong tests, settings that differ
  bench svcca synth-controls           run only the suite's per-layer SVCCA analysis (Figure 1), then report
  bench verify results/smoke           recompute every stored metric from the stored predictions
  bench list backbones                 list backbones and where they come from (also: datasets, suites)
  bench references falconi --json      the published numbers of a seed study, keyed by its suite's cells
"""


def _load_suite(args):
    """The suite named on the command line; ``--data-root`` reaches the dataset adapters as ``$BENCH_DATA_ROOT``."""
    from bench.suite import load_suite

    if args.data_root:
        os.environ["BENCH_DATA_ROOT"] = args.data_root
    return load_suite(args.suite)


def cmd_validate(args) -> int:
    from bench.data.preprocess import size_label

    suite = _load_suite(args)
    cells = suite.cells
    na = [c for c in cells if c.na_reason]
    print(f"suite {suite.name} ({suite.path}): OK")
    a = suite.config.axes
    print(f"  axes: {len(a.backbone)} backbone x {len(a.source)} source x {len(a.ft_fraction)} ft_fraction x "
          f"{len(a.target)} target x {len(a.transfer)} transfer x {len(a.train_mode)} train_mode x "
          f"{len(a.seed_list)} seed"
          f"{f' minus {len(suite.config.exclude)} exclusion(s)' if suite.config.exclude else ''}")
    print(f"  cells: {len(cells)} ({len(cells) - len(na)} to run, {len(na)} NA)")
    for reason, n in Counter(c.na_reason for c in na).items():
        print(f"    NA x{n}: {reason}")
    jobs = suite.pretrain_jobs
    print(f"  pre-training jobs: {len(jobs)}")
    for pid, cfg in jobs.items():
        print(f"    {pid}: {cfg['backbone']} on {cfg['source']}, seed {cfg['seed']}, {cfg['epochs']} epochs, "
              f"{size_label(cfg['image_size'])} px")
    rc = _check_backbones(suite, build_all=args.build)
    return max(rc, _report_blockers(suite, [c for c in cells if not c.na_reason]))


def _report_blockers(suite, cells) -> int:
    """Print what would stop these cells from starting here (missing data folders, ImageNet weights); 1 if any."""
    from bench.runner.preflight import blockers, format_blockers

    found = blockers(suite, cells)
    if not found:
        return 0
    print(f"error: suite {suite.name}: {format_blockers(found, len(cells))}\n'bench run' would stop before "
          "computing anything (or, with --run-rest, compute only the other cells)", file=sys.stderr)
    return 1


def _check_backbones(suite, *, build_all: bool) -> int:
    """Build the suite's plugin backbones (every backbone with --build) once and compare them with their specs."""
    from bench.backbones import BACKBONES
    from bench.registry import BUILT_IN

    a = suite.config.axes
    # timm models need no check (their stages come from timm's feature_info); plugins' specs are hand-written
    names = [b for b in a.backbone if build_all or (BACKBONES.origin_of(b) != BUILT_IN and not b.startswith("timm:"))]
    if not names:
        return 0
    # builds networks (torch): imported only when there is one to build
    from bench.backbones.check import check_backbone

    stage = suite.config.hybrid_stage if "hybrid" in a.transfer else None
    bad = 0
    for name in names:
        problems = check_backbone(name, hybrid_stage=stage)
        print(f"  backbone {name} ({BACKBONES.origin_of(name)}): built, " + ("spec OK" if not problems else
                                                                             f"{len(problems)} problem(s)"))
        for p in problems:
            print(f"error: backbone {name}: {p}", file=sys.stderr)
        bad += bool(problems)
    return 2 if bad else 0


def _executor_overrides(args, suite):
    from bench.runner import executor_settings

    if args.workers is not None and args.workers < 0:
        raise CliError(f"--workers {args.workers}: give 0 (run in this process) or a positive number of worker "
                       "processes")
    return executor_settings(suite, kind=args.executor, workers=args.workers, device=getattr(args, "device", None))


def cmd_run(args) -> int:
    from bench.runner import run_suite

    suite = _load_suite(args)
    settings = _executor_overrides(args, suite)
    if settings.device and settings.kind == "local":
        from bench.batches import device_problem

        if problem := device_problem(settings.device):
            raise CliError(problem)
    root = resolve_results_root(args.results)
    reports = resolve_reports_root(args.reports)  # checked before anything is computed
    n_na = sum(1 for c in suite.cells if c.na_reason)
    where = f"{settings.workers} worker process(es)" if settings.workers else "this process"
    print(f"suite {suite.name}: {len(suite.cells)} cells ({n_na} NA), {len(suite.pretrain_jobs)} pre-training "
          f"job(s); results in {root / suite.name}; executor {settings.kind}"
          + (f" ({where})" if settings.kind == "local" else f" (submitit, cluster {settings.cluster})"),
          file=sys.stderr)
    summary = run_suite(suite, results_root=root, progress=not args.no_progress, executor=settings,
                        retry_failed=args.retry_failed, run_rest=args.run_rest,
                        recompute_changed=args.recompute_changed)
    print(f"done in {summary.seconds:.1f}s: {summary.computed} computed, {summary.na} NA, {summary.failed} failed, "
          f"{summary.skipped} already done, {summary.pretrained} source pre-training(s)"
          + (f", {summary.by_others} computed by another runner" if summary.by_others else "")
          + (f", {summary.blocked} left pending (their data or weights are missing)" if summary.blocked else "")
          + (f"; SVCCA runs: {summary.analyses} computed, {summary.analyses_failed} failed"
             if suite.config.analysis.svcca else ""),
          file=sys.stderr)
    if summary.kept_failed:
        print(f"{summary.kept_failed} cell(s) failed in an earlier run and were kept, not retried "
              f"('bench status {root / suite.name}' shows why; 'bench run {args.suite} --retry-failed' retries "
              "them)", file=sys.stderr)
    path = _write_suite_report(suite, root, reports)  # SVCCA runs are jobs of the same plan: done above
    print(f"report: {path}")
    print(f"html:   {path.parent / 'index.html'} (open it in a browser; self-contained)")
    return 1 if summary.failed or summary.kept_failed or summary.blocked or summary.analyses_failed else 0


def _write_suite_report(suite, root: Path, reports: Path) -> Path:
    """The report of exactly the suite's current cells and SVCCA runs under ``root``."""
    from bench.runner import suite_records

    return write_suite_reports(suite_records(suite, root), suite.name, reports, folder_svcca_records(root / suite.name, suite),
                         folder=root / suite.name, reference=suite.config.reference)


def _run_svcca(suite, root: Path) -> int:
    """Run the suite's analysis.svcca (skipping finished runs); return the number of failed runs."""
    from bench.runner.svcca import run_svcca, svcca_dir

    summary = run_svcca(suite, results_root=root)
    print(f"svcca done in {summary.seconds:.1f}s: {summary.analyses} computed, {summary.analyses_failed} failed, "
          f"{summary.skipped} already done; records in {svcca_dir(root, suite.name)}", file=sys.stderr)
    return summary.analyses_failed


def cmd_svcca(args) -> int:
    """``bench svcca SUITE``: only the suite's per-layer SVCCA analysis, then the report."""
    suite = _load_suite(args)
    if suite.config.analysis.svcca is None:
        raise CliError(f"{suite.path or suite.name}: analysis.svcca: the suite asks for no SVCCA analysis; add e.g. "
                       "'analysis: {svcca: {targets: [synth-inbreast]}}' to it")
    root = resolve_results_root(args.results)
    reports = resolve_reports_root(args.reports)
    failed = _run_svcca(suite, root)
    path = _write_suite_report(suite, root, reports)
    print(f"report: {path}")
    return 1 if failed else 0


def cmd_plan(args) -> int:
    from bench.runner import build_plan
    from bench.runner.plan import format_plan

    suite = _load_suite(args)
    settings = _executor_overrides(args, suite)
    plan = build_plan(suite, resolve_results_root(args.results), retry_failed=args.retry_failed)
    print(format_plan(plan, workers=settings.workers if settings.kind == "local" else settings.array_parallelism))
    return _report_blockers(suite, [j.cell for j in plan.cells if j.kind == "cell"])


def cmd_status(args) -> int:
    from bench.runner.status import StatusError, folder_status, format_status

    if args.limit < 0:
        raise CliError(f"--limit {args.limit}: give 0 or more (cells listed per state)")
    try:
        st = folder_status(args.results_dir)
    except StatusError as exc:
        raise CliError(str(exc)) from None
    print(format_status(st, limit=args.limit))
    return 0


def cmd_data_check(args) -> int:
    import json

    from bench.data.check import check_dataset, format_summary

    bad = [kv for kv in (args.option or []) if "=" not in kv]
    if bad:
        raise CliError(f"--option takes key=value, got {bad[0]!r}")
    options = dict(kv.split("=", 1) for kv in (args.option or []))
    if args.policy:
        options["policy"] = args.policy
    root = args.root or (Path(args.data_root) / args.name if args.data_root else None)
    summary = check_dataset(args.name, root, options, skip_bad=args.skip_bad,
                            progress=not args.json)
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    if summary["problems"]:
        if not args.json:
            print(f"error: {len(summary['problems'])} referenced file(s) missing or unreadable (listed above); "
                  "fix them or pass --skip-bad", file=sys.stderr)
        return 1
    if not summary["images"]:
        print(f"error: no usable image in {summary['root']} (see the warnings and exclusions"
              f"{'' if args.json else ' above'}): nothing to train or test on; check that --root is the dataset's "
              f"folder and that its images are in place", file=sys.stderr)
        return 1
    if not (summary["positives"] and summary["negatives"]):
        missing = "malignant (label 1)" if not summary["positives"] else "benign/normal (label 0)"
        print(f"error: {args.name} at {summary['root']} has no {missing} image among its {summary['images']} usable "
              f"image(s), so it cannot serve the benign/malignant task (no AUC); see the warnings"
              f"{'' if args.json else ' above'} for the label policy, class folders or exclusions", file=sys.stderr)
        return 1
    return 0


def _list_backbones() -> None:
    from tabulate import tabulate

    from bench.backbones import BACKBONES
    from bench.backbones.specs import imagenet_location, spec_stage_names
    from bench.registry import PluginError

    rows = []
    for n in BACKBONES.names():
        try:
            s = BACKBONES.get(n)
        except PluginError as exc:  # a broken plugin is listed with its error, the others still work
            rows.append([n, BACKBONES.origin_of(n), "", "", "", f"BROKEN: {exc}"])
            continue
        stages = " ".join(f"{name}={m}:{c}" for name, m, c in zip(spec_stage_names(s), s.stages, s.channels))
        rows.append([n, BACKBONES.origin_of(n), stages, f"{s.input_size} (min {s.min_size})", imagenet_location(n),
                     s.description])
    print(tabulate(rows, headers=["backbone", "origin", "stages (name=module:channels)", "input px",
                                  "imagenet weights", "description"], tablefmt="plain"))
    print("\nAlso usable by name: timm:<model> (any timm model, e.g. timm:resnet34) and package.module:factory.")


def cmd_ls(args) -> int:
    if args.what == "backbones":
        _list_backbones()
    elif args.what == "datasets":
        from bench.data import DATASETS

        for n in DATASETS.names():
            s = DATASETS.get(n)
            print(f"{n:24s} {s.modality:12s} {s.description}")
    else:
        from bench.suite import list_suites, suite_description

        names = list_suites()
        width = max((len(n) for n in names), default=0)
        print("\n".join(f"{n:{width}s}  {suite_description(n)}".rstrip() for n in names))
    return 0


def cmd_references(args) -> int:
    """``bench references [STUDY] [--json]``: the seed studies' published numbers (package data, no torch)."""
    import json

    from bench.references import COLUMNS, load_references, table_notes

    rows = load_references(args.study)  # an unknown study is a UserError: one line, exit 2
    if args.json:
        print(json.dumps(rows))
        return 0
    from tabulate import tabulate

    printed = load_references(args.study, printed=True)
    print(tabulate([[r[k] for k in COLUMNS] for r in printed], headers=list(COLUMNS), tablefmt="simple",
                   disable_numparse=True))
    print()
    for study in dict.fromkeys(r["study"] for r in rows):
        for table, where in table_notes(study).items():
            print(f"{study} table {table}: {where}")
    print(f"{len(rows)} values as the papers print them (NA: the paper prints NA; null in --json); --json for one "
          "JSON list")
    return 0


def _executor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["local", "slurm"], help="override the suite's executor.kind")
    p.add_argument("--workers", type=int, help="local executor: worker processes (0 = run in this process)")


def _device_arg(value: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"{value!r}: give cpu, cuda or cuda:N (N the GPU's index, from 0)")
    return value


class _Parser(argparse.ArgumentParser):
    """No abbreviated flags: a typo like ``--worker 2`` must be an error, not a real run with ``--workers 2``.
    Sub-command parsers are made of the same class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


SUITE_HELP = "suite name (file stem in suites/) or path to a .yaml file"
RESULTS_HELP = "results root (default: ./results or $BENCH_RESULTS)"
REPORTS_HELP = "reports root (default: ./reports or $BENCH_REPORTS)"
DATA_ROOT_HELP = "folder with one sub-folder per real dataset (default $BENCH_DATA_ROOT)"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description="Transfer-learning benchmark harness for breast imaging.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a suite (skipping finished cells), then render its report")
    r.add_argument("suite", help=SUITE_HELP)
    r.add_argument("--results", help=RESULTS_HELP)
    r.add_argument("--reports", help=REPORTS_HELP)
    r.add_argument("--data-root", help=DATA_ROOT_HELP)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    _executor_args(r)
    r.add_argument("--device", type=_device_arg, help="cpu, cuda or cuda:N (default: a GPU where there is one); "
                                                      "the record's provenance.device says which ran each cell")
    r.add_argument("--retry-failed", action="store_true",
                   help="recompute cells that failed in an earlier run (by default they are kept)")
    r.add_argument("--run-rest", action="store_true",
                   help="when some cells cannot start (missing data folder or ImageNet weights), compute the others "
                        "and leave those pending (by default nothing is computed)")
    r.add_argument("--recompute-changed", action="store_true",
                   help="recompute finished cells whose dataset or weights changed since (old records are moved to "
                        "<results>/<suite>/_replaced/); by default the run refuses")
    r.set_defaults(func=cmd_run)

    pl = sub.add_parser("plan", help="print the run plan: pre-training jobs, the cells waiting on them, NA cells, "
                                     "what is done, and a cost estimate from recorded timings")
    pl.add_argument("suite", help=SUITE_HELP)
    pl.add_argument("--results", help=RESULTS_HELP)
    pl.add_argument("--retry-failed", action="store_true", help="plan as 'bench run --retry-failed' would")
    pl.add_argument("--data-root", help=DATA_ROOT_HELP)
    _executor_args(pl)
    pl.set_defaults(func=cmd_plan)

    st = sub.add_parser("status", help="done / failed / running / pending cells of a results folder, with reasons")
    st.add_argument("results_dir", help="a results/<suite> folder")
    st.add_argument("--limit", type=int, default=20, help="list at most this many cells per state (default 20)")
    st.set_defaults(func=cmd_status)

    v = sub.add_parser("validate", help="check a suite without training; print cells and pre-training jobs")
    v.add_argument("suite")
    v.add_argument("--data-root", help=DATA_ROOT_HELP)
    v.add_argument("--build", action="store_true",
                   help="build every backbone once and check it against its spec (plugins are always checked)")
    v.set_defaults(func=cmd_validate)

    rep = sub.add_parser("report", help="render the report of a results folder from its records alone")
    rep.add_argument("results_dir", help="a results/<suite> folder")
    rep.add_argument("--reports", help=REPORTS_HELP)
    rep.add_argument("--suite", help="suite name used for the report folder (default: from the records)")
    rep.add_argument("--print", action="store_true", help="also print the Markdown report")
    rep.add_argument("--curves", action="store_true",
                     help="also plot training/evaluation accuracy per cell to reports/<suite>/curves.png")
    rep.set_defaults(func=cmd_report)

    cmp = sub.add_parser("compare", help="compare two results folders cell by cell: AUC A, AUC B, their paired "
                                         "DeLong test (Holm-adjusted) and the settings that differ")
    cmp.add_argument("results_a", help="a results/<suite> folder (run A)")
    cmp.add_argument("results_b", help="another results/<suite> folder (run B; differences are B - A)")
    cmp.add_argument("--html", metavar="PATH", help="also write the comparison as an HTML page to PATH")
    cmp.set_defaults(func=cmd_compare)

    sv = sub.add_parser("svcca", help="run only the suite's per-layer SVCCA analysis (analysis.svcca), then report")
    sv.add_argument("suite", help=SUITE_HELP)
    sv.add_argument("--results", help=RESULTS_HELP)
    sv.add_argument("--reports", help=REPORTS_HELP)
    sv.add_argument("--data-root", help=DATA_ROOT_HELP)
    sv.set_defaults(func=cmd_svcca)

    ver = sub.add_parser("verify", help="recompute each record's AUC, accuracy and beta from its predictions")
    ver.add_argument("results_dir", help="a results/<suite> folder")
    ver.set_defaults(func=cmd_verify)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    chk = data.add_parser("check", help="read a whole dataset and print its counts, exclusions and problems")
    chk.add_argument("name", help="dataset name (bench ls datasets)")
    chk.add_argument("--root", help="the dataset's folder")
    chk.add_argument("--data-root", help="folder holding one sub-folder per dataset (default $BENCH_DATA_ROOT)")
    chk.add_argument("--policy", help="label policy of the dataset, where it has one")
    chk.add_argument("-o", "--option", action="append", help="dataset option key=value (repeatable)")
    chk.add_argument("--skip-bad", action="store_true", help="skip missing/unreadable files, count them as excluded")
    chk.add_argument("--json", action="store_true", help="print exactly one JSON object")
    chk.set_defaults(func=cmd_data_check)

    refs = sub.add_parser("references", help="the published numbers of the seed studies, keyed by their suites' cells",
                          epilog="examples:\n  bench references\n  bench references bulathsinghalage-liu --json",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    refs.add_argument("study", nargs="?", help="a study (default: all): bulathsinghalage-liu, falconi, shen, "
                                               "wei-morphhr")
    refs.add_argument("--json", action="store_true", help="print exactly one JSON list of objects")
    refs.set_defaults(func=cmd_references)

    ls = sub.add_parser("list", aliases=["ls"], help="list backbones (with their origin), datasets or suites")
    ls.add_argument("what", choices=["backbones", "datasets", "suites"])
    ls.set_defaults(func=cmd_ls)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's pre-emption) turned into an exception, so that it unwinds like Ctrl-C: the
    local runner stops its worker processes instead of leaving them to finish their jobs as orphans."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _dispatch(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; bad input of any kind becomes one line on stderr and exit status 2 (no traceback)."""
    from pydantic import ValidationError

    try:
        return args.func(args)
    except UserError as exc:  # bad input of any kind: CliError, SuiteError, UnknownNameError, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # dataset options given on the command line
        from bench.suite import error_message

        print("error: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {error_message(e)} (got {e.get('input')!r})"
                                    for e in exc.errors()), file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:  # e.g. a read-only --results folder
        print(f"error: {exc.filename}: {exc.strerror}; check the folder's permissions, or pass another --results/"
              "--reports folder (finished cells are saved)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `bench ... | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{how}: finished cells are saved; run the same command again to resume", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
