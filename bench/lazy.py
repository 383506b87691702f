"""Lazy package exports (PEP 562): a package names where each public attribute lives, and the module defining it is
imported on first use, so ``import bench`` and ``import bench.runner`` stay cheap (no torch)."""
from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: dict[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """The ``(__getattr__, __dir__)`` pair of ``package``: ``where`` maps each exported name to the module that
    defines it; a name, once imported, is stored in ``namespace`` (the package's ``globals()``), so later look-ups
    and monkeypatching see a plain attribute."""

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
