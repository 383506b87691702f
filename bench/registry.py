"""One registry mechanism for everything pluggable: backbones, datasets.

Built-ins register themselves at their definition with a decorator (as timm's
``@register_model`` does); third-party plugins come only from installed entry points
(group ``bench.<kind>s``) or from a module a suite names explicitly. A lookup of an
unknown name fails loudly with the closest valid names (lm-eval's ``Registry``).
"""
from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name no registry entry matches; ``str()`` is the user-facing message."""

    def __init__(self, kind: str, name: str, suggestions: list[str], available: list[str]):
        self.kind, self.name, self.suggestions, self.available = kind, name, suggestions, available
        msg = f"unknown {kind} {name!r}."
        if suggestions:
            msg += f" Did you mean: {', '.join(repr(s) for s in suggestions)}?"
        msg += f" Available: {', '.join(available) if available else '(none)'}."
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def closest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """The closest valid names to ``name`` (did-you-mean suggestions)."""
    return difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.5)


class Registry(Generic[T]):
    """A name -> object mapping with did-you-mean lookups and lazy entry-point plugins.

    Args:
        kind: what is registered, used in messages ("backbone", "dataset").
        group: entry-point group scanned once, lazily, on the first lookup or listing.
    """

    def __init__(self, kind: str, group: str | None = None):
        self.kind = kind
        self.group = group
        self._items: dict[str, T] = {}
        self._plugins_loaded = group is None

    def register(self, name: str, obj: T | None = None):
        """Register ``obj`` under ``name``; used bare (``register("x", obj)``) or as a decorator."""

        def add(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered; pick another name")
            self._items[name] = o
            return o

        return add(obj) if obj is not None else add

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._items:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the built-ins
                raise ImportError(f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
            # A plugin may register itself on import; otherwise the entry point *is* the object.
            if ep.name not in self._items:
                self._items[ep.name] = obj

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            names = self.names()
            raise UnknownNameError(self.kind, name, closest(name, names), names) from None

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_plugin_module(spec: str) -> None:
    """Import a module a suite names (``plugins: [my_pkg.my_backbone]``) so that it registers itself."""
    try:
        importlib.import_module(spec)
    except ImportError as exc:
        raise ImportError(f"plugin module {spec!r} could not be imported: {exc}. "
                          "Install it or put it on PYTHONPATH.") from exc


FactoryT = Callable[..., object]
