"""The axes of a suite, and ``ft_fraction``: a share of the target's patients or a number of them."""
from __future__ import annotations

import math
import numbers
import re
from typing import Any, Literal, Union

from pydantic import Field, field_serializer, field_validator

from bench.suite.base import DEFAULT_TRAIN_MODE, FrozenModel

_PATIENTS = re.compile(r"\s*([-+]?[0-9.eE+-]+|nan|inf)\s*patients?\s*", re.IGNORECASE)
_SHARE_HELP = "0 = no fine-tuning, 0.1 = 10% of the target's patients"
_COUNT_HELP = "'1 patient' or '20 patients'"


def parse_ft_fraction(value: Any) -> float:
    """One ``ft_fraction`` value as the suite writes it -> the float a cell carries.

    A share of the target's patients is a number in [0, 1) (``0.1``); a number of patients is written with
    its unit (``20 patients``, ``1 patient``) and becomes the whole float ``20.0``, exactly the value (and so
    the cell id) a bare ``20`` had before the unit was required. A bare number >= 1 is refused: ``1.0`` read
    as a share would fine-tune on every patient, read as a count on one; the suite must say which.
    Raises ``ValueError`` with the fix.
    """
    if isinstance(value, bool):
        raise ValueError(  # noqa: TRY004  (pydantic turns a ValueError, not a TypeError, into the field's message)
            f"ft_fraction {value!r}: give a share in [0, 1) ({_SHARE_HELP}) or a number of patients ({_COUNT_HELP}), "
            "not true/false")
    if isinstance(value, str):
        m = _PATIENTS.fullmatch(value)
        if m is None:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"ft_fraction {value!r}: give a share in [0, 1) ({_SHARE_HELP}) or a number of "
                                 f"patients ({_COUNT_HELP})") from None
            return _share(number, value)
        try:
            n = float(m.group(1))
        except ValueError:
            raise ValueError(f"ft_fraction {value!r}: the number of patients must be a whole number >= 1 "
                             f"({_COUNT_HELP})") from None
        if not math.isfinite(n) or not n.is_integer():
            raise ValueError(f"ft_fraction {value!r}: a number of patients must be whole ({_COUNT_HELP}); for a "
                             f"share of the patients write a number below 1 (0.1 = 10%)")
        if n < 1:
            raise ValueError(f"ft_fraction {value!r}: a number of patients must be at least 1 ({_COUNT_HELP}); "
                             "for no fine-tuning write 0")
        return float(n)
    if isinstance(value, numbers.Real):
        return _share(float(value), value)
    raise ValueError(f"ft_fraction {value!r}: give a share in [0, 1) ({_SHARE_HELP}) or a number of patients "
                     f"({_COUNT_HELP})")


def _share(f: float, shown: Any) -> float:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"ft_fraction {shown!r}: not a finite number; give a share in [0, 1) ({_SHARE_HELP}) or a "
                         f"number of patients ({_COUNT_HELP})")
    if f < 0:
        raise ValueError(f"ft_fraction {shown!r}: a share must be in [0, 1) ({_SHARE_HELP}); it cannot be "
                         "negative")
    if f >= 1 and f.is_integer():
        if f == 1:
            why, fix = f"{shown!r} would fine-tune on every target patient and leave none to evaluate", _COUNT_HELP
        else:
            why, fix = "1 would already be every target patient, leaving none to evaluate", f"'{int(f)} patients'"
        raise ValueError(f"ft_fraction {shown!r}: a share must be below 1 ({why}); for a number of patients "
                         f"write {fix}")
    if f >= 1:
        raise ValueError(f"ft_fraction {shown!r}: a share must be below 1 (0.1 = 10% of the target's patients); a "
                         f"number of patients is a whole number of patients with its unit ({_COUNT_HELP})")
    return f


def ft_fraction_text(f: float) -> float | str:
    """How a suite writes an ``ft_fraction`` value: a share as the number, a count as ``'20 patients'``.
    The inverse of :func:`parse_ft_fraction`; ``model_dump`` writes it, so a dumped config validates again."""
    if f >= 1:
        n = int(f)
        return f"{n} patient" if n == 1 else f"{n} patients"
    return f


class Axes(FrozenModel):
    backbone: list[str] = Field(min_length=1)
    source: list[str] = Field(min_length=1)
    # Shares of the target's patients in [0, 1) and numbers of patients ('20 patients' in a suite: a float 20.0
    # here, in every cell and in its id). See parse_ft_fraction.
    ft_fraction: list[float] = Field(min_length=1)
    target: list[str] = Field(min_length=1)
    transfer: list[Literal["full", "hybrid"]] = Field(default=["full"], min_length=1)
    # Names from the suite's ``train_modes`` ("default" = the ``finetune`` block as it is).
    train_mode: list[str] = Field(default=[DEFAULT_TRAIN_MODE], min_length=1)
    seeds: Union[int, list[int]] = 1

    @field_validator("ft_fraction", mode="before")
    @classmethod
    def _fractions(cls, v):
        if not isinstance(v, (list, tuple)):
            return v  # pydantic says it is not a list
        return [parse_ft_fraction(f) for f in v]

    @field_serializer("ft_fraction")
    def _fractions_text(self, v: list[float]) -> list[float | str]:
        return [ft_fraction_text(f) for f in v]

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds_type(cls, v):
        if isinstance(v, bool) or (isinstance(v, list) and any(isinstance(x, bool) for x in v)):
            raise ValueError(f"seeds {v!r}: give a count (3 -> seeds 0, 1, 2) or a list of whole numbers, not true/false")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError("seeds must be a positive count (3 -> seeds 0, 1, 2) or a list of seeds")
        if isinstance(v, list) and not v:
            raise ValueError("seeds is an empty list: give a count (3 -> seeds 0, 1, 2) or a list of seeds ([0, 1, 2])")
        return v

    @field_validator("backbone", "source", "ft_fraction", "target", "transfer", "train_mode", "seeds")
    @classmethod
    def _distinct(cls, v, info):
        if isinstance(v, list):
            seen: list = []
            for x in v:
                if x in seen:
                    shown = ft_fraction_text(x) if info.field_name == "ft_fraction" else x
                    raise ValueError(f"{shown!r} is listed twice; each value of an axis must be distinct (a duplicate "
                                     f"would be the same cells twice, counted twice in the report): remove one")
                seen.append(x)
        return v

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
