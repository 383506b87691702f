"""Analysis of stored results: pure functions, numpy in, numbers out (no torch, no I/O)."""
from __future__ import annotations

from bench.analysis.metrics import accuracy, binary_metrics, overfit_ratio

__all__ = ["accuracy", "binary_metrics", "overfit_ratio"]

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
    "bootstrap_auc_ci",
    "cca",
    "delong_auc_ci",
    "delong_test",
    "delong_variance",
    "holm",
    "linear_cka",
    "pwcca",
    "seed_summary",
]
