"""One registry mechanism for everything pluggable: backbones, datasets.

Built-ins register themselves at their definition (as timm's ``@register_model`` does). Third-party
plugins come from installed entry points (group ``bench.<kind>s``), from a module a suite names in
``plugins:``, or from a *resolver*: a function that turns a structured name such as ``timm:resnet34``
or ``my_pkg.nets:build`` into an entry on first use. Every entry remembers its origin (built-in,
entry point, plugin module, resolver) for ``bench list``. A lookup of an unknown name fails loudly
with the closest valid names (lm-eval's ``Registry``).
"""
from __future__ import annotations

import contextlib
import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from bench.errors import UserError

T = TypeVar("T")

BUILT_IN = "built-in"
# Origin recorded for entries registered while a plugin module is being imported (see ``origin``).
_origin_stack: list[str] = []


class UnknownNameError(UserError, KeyError):
    """Raised for a name no registry entry matches; ``str()`` is the user-facing message."""

    def __init__(self, kind: str, name: str, suggestions: list[str], available: list[str], *, hint: str = ""):
        self.kind, self.name, self.suggestions, self.available = kind, name, suggestions, available
        msg = f"unknown {kind} {name!r}."
        if suggestions:
            msg += f" Did you mean: {', '.join(repr(s) for s in suggestions)}?"
        if available:
            msg += f" Available: {', '.join(available)}."
        elif not suggestions:
            msg += " Available: (none)."
        if hint:
            msg += f" {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class PluginError(UnknownNameError):
    """A plugin (entry point, module or resolver target) exists but cannot be loaded; the message says why."""

    def __init__(self, kind: str, name: str, message: str):
        self.kind, self.name, self.suggestions, self.available = kind, name, [], []
        KeyError.__init__(self, message)


def closest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """The closest valid names to ``name`` (did-you-mean suggestions)."""
    return difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.5)


@contextlib.contextmanager
def origin(label: str):
    """Record ``label`` as the origin of every entry registered inside the block (plugin imports)."""
    _origin_stack.append(label)
    try:
        yield
    finally:
        _origin_stack.pop()


class Registry(Generic[T]):
    """A name -> object mapping with did-you-mean lookups, lazy entry-point plugins and resolvers.

    Args:
        kind: what is registered, used in messages ("backbone", "dataset").
        group: entry-point group; names are discovered on first use, each plugin is imported only
            when it is looked up (a broken plugin breaks only its own name).
        coerce: ``coerce(name, obj) -> T`` turns what an entry point or resolver returns into an entry
            (e.g. a bare model factory into a ``BackboneSpec``); default: the object as it is.
    """

    def __init__(self, kind: str, group: str | None = None, coerce: Callable[[str, object], T] | None = None):
        self.kind = kind
        self.group = group
        self.coerce = coerce or (lambda name, obj: obj)
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._entry_points: dict[str, EntryPoint] | None = None if group else {}
        self._resolvers: list[tuple[Callable[[str], bool], Callable[[str], object], str]] = []

    def register(self, name: str, obj: T | None = None, *, origin: str | None = None):
        """Register ``obj`` under ``name``; used bare (``register("x", obj)``) or as a decorator."""

        def add(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered; pick another name")
            self._items[name] = o
            self._origins[name] = origin or (_origin_stack[-1] if _origin_stack else BUILT_IN)
            return o

        return add(obj) if obj is not None else add

    def add_resolver(self, matches: Callable[[str], bool], resolve: Callable[[str], object], label: str) -> None:
        """Resolve names for which ``matches(name)`` is true with ``resolve(name)`` on first lookup.

        ``resolve`` returns the object (passed through ``coerce``) or raises :class:`UnknownNameError`.
        ``label`` is the origin shown by ``bench list`` and the pattern shown in error messages.
        """
        self._resolvers.append((matches, resolve, label))

    # ------------------------------------------------------------------ plugins
    def _discover(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._entry_points

    def _load_entry_point(self, name: str) -> T:
        ep = self._discover()[name]
        label = f"entry point {ep.value}" + (f" ({ep.dist.name} {ep.dist.version})" if ep.dist else "")
        try:
            with origin(label):
                obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the built-ins
            raise PluginError(self.kind, name, f"{self.kind} plugin {name!r} (entry point {ep.value} in group "
                              f"{self.group!r}) failed to import: {type(exc).__name__}: {exc}. Fix or uninstall "
                              "the package that declares it.") from exc
        if name not in self._items:  # a plugin may register itself on import; else the entry point *is* it
            self.register(name, self.coerce(name, obj), origin=label)
        return self._items[name]

    def _resolve(self, name: str) -> T | None:
        for matches, resolve, label in self._resolvers:
            if matches(name):
                obj = self.coerce(name, resolve(name))
                self.register(name, obj, origin=label)
                return obj
        return None

    # ------------------------------------------------------------------ lookups
    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        if name in self._discover():
            return self._load_entry_point(name)
        obj = self._resolve(name)
        if obj is not None:
            return obj
        names = self.names()
        hint = "; ".join(label for _, _, label in self._resolvers)
        hint = f"Also accepted: {hint}." if hint else ""
        raise UnknownNameError(self.kind, name, closest(name, names), names,
                               hint=" ".join(filter(None, [hint, self._misspelt_group(name)])))

    def _misspelt_group(self, name: str) -> str:
        """A hint when an installed package declares ``name`` in an entry-point group close to ours (a typo)."""
        if not self.group:
            return ""
        groups = [g for g in entry_points().groups
                  if g != self.group and difflib.SequenceMatcher(None, g, self.group).ratio() >= 0.85]
        for g in groups:
            for ep in entry_points(group=g):
                if ep.name == name:
                    dist = f" by {ep.dist.name}" if ep.dist else ""
                    return (f"{name!r} is declared{dist} in entry-point group {g!r}, not {self.group!r}: fix the "
                            "group in its pyproject.toml and reinstall it.")
        return ""

    def __contains__(self, name: object) -> bool:
        try:
            self.get(str(name))
        except UnknownNameError:
            return False
        return True

    def origin_of(self, name: str) -> str:
        """Where an entry comes from: "built-in", "entry point pkg.mod:obj (dist 1.0)", a resolver label..."""
        if name not in self._items and name in self._discover():
            ep = self._discover()[name]
            return f"entry point {ep.value}" + (f" ({ep.dist.name} {ep.dist.version})" if ep.dist else "")
        self.get(name)
        return self._origins[name]

    def names(self) -> list[str]:
        """Registered names, including installed entry points not imported yet and names resolved so far."""
        return sorted(set(self._items) | set(self._discover()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_plugin_module(spec: str, adopt: Callable[[object], None] | None = None):
    """Import a module a suite names (``plugins: [my_pkg.my_backbone]``) so that it registers itself.

    ``adopt(module)`` then runs under the same origin label, to register what the module only defines (the
    object an entry point would name, e.g. a module-level ``SPEC``). Returns the module.
    """
    try:
        with origin(f"plugin module {spec}"):
            module = importlib.import_module(spec)
            if adopt is not None:
                adopt(module)
    except ImportError as exc:
        raise ImportError(f"plugin module {spec!r} could not be imported: {exc}. "
                          "Install it or put it on PYTHONPATH.") from exc
    return module


FactoryT = Callable[..., object]
