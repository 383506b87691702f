"""What every part of a suite builds on: its error type, the frozen model base, constants, name hints."""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bench.errors import UserError
from bench.registry import closest

# Bump when the meaning of a cell changes (training protocol, metric definitions): it is part of
# every cell id, so old records are never mistaken for new ones.
# 2: seeds derived by hashing axes (init from (backbone, seed), split and batch order from
#    (target, ft_fraction, seed)); see bench/runner/seeds.py.
PROTOCOL_VERSION = 2

SPECIAL_SOURCES = ("random", "imagenet")
DEFAULT_TRAIN_MODE = "default"
ONE_STAGE_KEYS = ("epochs", "lr", "weight_decay", "warmup_epochs")
STAGES = ("conv1", "block1", "block2", "block3", "block4")
SUITES_DIR = Path(__file__).resolve().parent.parent.parent / "suites"


class SuiteError(UserError, ValueError):
    """A suite file is invalid; the message names file, field, bad value and the fix."""


class FrozenModel(BaseModel):
    """A suite block: unknown keys are errors, and a validated block never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def suite_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a suite, or None. It becomes the folders results/<name> and reports/<name>,
    so it must be one folder name: no '/', no '..', no spaces."""
    if re.fullmatch(r"[\w][\w.-]*", name) and name not in (".", ".."):
        return None
    suggestion = re.sub(r"[^\w.-]+", "-", name).strip("-.") or "my-suite"
    return (f"suite name {name!r} becomes the folder results/<name>: use one folder name of letters, digits, "
            f"'-', '_' and '.' (e.g. {suggestion!r})")


def closest_hint(name: str, choices: list[str]) -> str:
    """`` Did you mean: 'a', 'b'?`` for the closest of ``choices`` to ``name``, or ""."""
    h = closest(name, choices)
    return f" Did you mean: {', '.join(repr(x) for x in h)}?" if h else ""


class FrozenDict(dict):
    """A dict that cannot change: a cell's resolved config, whose canonical JSON is its id. It is a ``dict`` (JSON,
    pydantic and ``==`` see one), but every mutating method raises; :func:`freeze` builds it, nested values too."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("a cell's config is frozen (its id hashes it): copy it with dict(...) to change a value")

    __setitem__ = __delitem__ = __ior__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly

    def __reduce__(self):
        return FrozenDict, (dict(self),)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class FrozenList(list):
    """The list counterpart of :class:`FrozenDict` (``[48, 32] == FrozenList([48, 32])``)."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("a cell's config is frozen (its id hashes it): copy it with list(...) to change a value")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _readonly
    append = clear = extend = insert = pop = remove = reverse = sort = _readonly

    def __reduce__(self):
        return FrozenList, (list(self),)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def freeze(value):
    """``value`` with every dict and list in it (nested too) made read-only (:class:`FrozenDict`,
    :class:`FrozenList`); other values as they are."""
    if isinstance(value, dict):
        return FrozenDict((k, freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return FrozenList(freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(freeze(v) for v in value)
    return value
