"""bench: a transfer-learning benchmark harness for breast-cancer imaging.

The Python API, the same steps the command line takes::

    from bench import load_suite, run_suite, suite_records, write_report

    suite = load_suite("smoke")                  # a name in suites/ or a path to a .yaml file
    print(len(suite.cells), suite.cells[0].axes)  # the expanded cells (backbone x source x ... x seed)
    run_suite(suite, results_root="results")     # computes what is missing; one JSON record per cell
    write_report(suite_records(suite, "results"), "reports/smoke", suite=suite.name)

Names are imported on first use, so ``import bench`` is instant and loads neither torch nor timm.
"""
from __future__ import annotations

from bench.lazy import lazy_exports

_WHERE = {
    # suites: from a file or a dict to typed, expanded cells
    "load_suite": "bench.suite",
    "build_suite": "bench.suite",
    "expand": "bench.suite",
    "list_suites": "bench.suite",
    "Suite": "bench.suite",
    "Cell": "bench.suite",
    # running and the result store
    "run_suite": "bench.runner.run",
    "build_plan": "bench.runner.plan",
    "suite_records": "bench.runner.run",
    "load_records": "bench.records",
    "run_cell": "bench.runner.cell",
    # backbones and datasets
    "create_backbone": "bench.backbones",
    "register_backbone": "bench.backbones",
    "BackboneSpec": "bench.backbones",
    "load_dataset": "bench.data",
    "register_dataset": "bench.data",
    # analysis (numpy/pandas only) and reports
    "svcca": "bench.analysis.svcca",
    "linear_cka": "bench.analysis.svcca",
    "binary_metrics": "bench.analysis.metrics",
    "records_frame": "bench.report",
    "render_report": "bench.report",
    "write_report": "bench.report",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
