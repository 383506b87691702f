"""Analysis of stored results: pure functions, numpy in, numbers out (no torch, no I/O)."""
from __future__ import annotations

from bench.analysis.metrics import (
    FALCONI_GAP,
    accuracy,
    binary_metrics,
    falconi_flag,
    overfit_ratio,
)

__all__ = ["FALCONI_GAP", "accuracy", "binary_metrics", "falconi_flag", "overfit_ratio"]

from bench.analysis.intervals import cell_intervals, seed_intervals
from bench.analysis.paired import align_predictions, combine_seed_z, paired_tests
from bench.analysis.stats import (
    bootstrap_auc_ci,
    delong_auc_ci,
    delong_test,
    delong_variance,
    holm,
    seed_summary,
)

# The function svcca is deliberately not re-exported: it would shadow the module, and bench.analysis.svcca.cca
# would stop working. Use `from bench.analysis.svcca import svcca`.
from bench.analysis.svcca import SimilarityWarning, cca, linear_cka, pwcca

__all__ += [
    "SimilarityWarning",
    "align_predictions",
    "bootstrap_auc_ci",
    "cca",
    "cell_intervals",
    "combine_seed_z",
    "delong_auc_ci",
    "delong_test",
    "delong_variance",
    "holm",
    "linear_cka",
    "paired_tests",
    "pwcca",
    "seed_intervals",
    "seed_summary",
]
