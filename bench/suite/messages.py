"""Suite error messages: one line per problem, ``file: path.to.field: what is wrong (got value)``.

pydantic's own messages are reshaped here (unions reported once, our "Value error, " prefix dropped), and an
unknown key anywhere names the closest valid keys, which pydantic's message does not.
"""
from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from bench.registry import UnknownNameError, closest
from bench.suite.base import SuiteError


def _union_tag(part) -> bool:
    """A part of a pydantic error location that names a member of a union (``int``, ``list[int]``), not a field."""
    return isinstance(part, str) and (part in ("int", "float", "str", "bool") or part.startswith(("list[", "tuple[")))


def format_errors(exc: ValidationError, where: str, prefix: str = "") -> str:
    """One line per problem. Of a union (``seeds: 3`` or ``seeds: [0, 1]``), only the member the value was meant
    as: pydantic reports every member (``axes.seeds.int: ...`` and ``axes.seeds.list[int]: ...``)."""
    errors = exc.errors()
    keep = []
    for e in errors:
        loc = tuple(e["loc"])
        tag = next((i for i, part in enumerate(loc) if _union_tag(part)), None)
        if tag is not None and len(loc) == tag + 1 and e["type"].endswith("_type"):
            siblings = [o for o in errors if o is not e and tuple(o["loc"])[:tag] == loc[:tag]
                        and len(o["loc"]) > tag and _union_tag(o["loc"][tag]) and o["loc"][tag] != loc[tag]]
            if any(not (len(o["loc"]) == tag + 1 and o["type"].endswith("_type")) for o in siblings):
                continue  # the value is not of this member's type, and another member has a real complaint
        keep.append(e)
    return "\n".join(f"{where}: {prefix}{_loc(e['loc'])}: {error_message(e)} (got {e.get('input')!r})" for e in keep)


def error_message(error: dict) -> str:
    """A pydantic error's message without the "Value error, " that pydantic puts before our own messages."""
    msg = str(error.get("msg", ""))
    return msg[len("Value error, "):] if error.get("type") == "value_error" and msg.startswith("Value error, ") else msg


def _loc(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_of(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def check_unknown_keys(raw: Any, model: type[BaseModel], where: str, loc: tuple) -> None:
    """Unknown keys anywhere are errors naming the closest valid key (pydantic's own message doesn't)."""
    if not isinstance(raw, dict):
        return
    fields = model.model_fields
    for key, value in raw.items():
        if key not in fields:
            hint = closest(str(key), list(fields))
            raise SuiteError(f"{where}: {_loc(loc + (key,))}: unknown key {key!r}."
                             + (f" Did you mean: {', '.join(repr(h) for h in hint)}?" if hint else "")
                             + f" Valid keys here: {', '.join(fields)}.")
        sub = _model_of(fields[key].annotation)
        if sub is not None and isinstance(value, list):  # e.g. finetune.schedule: a list of stages
            for i, item in enumerate(value):
                check_unknown_keys(item, sub, where, loc + (key, i))
        elif sub is not None and get_origin(fields[key].annotation) is not list:
            check_unknown_keys(value, sub, where, loc + (key,))


def unknown_name(where: str, loc: str, err: UnknownNameError) -> SuiteError:
    return SuiteError(f"{where}: {loc}: {err}")


def lookup_error(registry, name) -> UnknownNameError:
    try:
        registry.get(name)
    except UnknownNameError as e:
        return e
    raise AssertionError("name exists")  # pragma: no cover
