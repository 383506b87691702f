"""Analysis of stored results: pure functions, numpy in, numbers out (no torch, no I/O)."""
from __future__ import annotations

from bench.analysis.metrics import accuracy, binary_metrics, overfit_ratio

__all__ = ["accuracy", "binary_metrics", "overfit_ratio"]
