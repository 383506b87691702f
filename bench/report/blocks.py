"""The report as a document: a list of small typed blocks, built by the table modules and rendered by
:mod:`bench.report.render_md` (Markdown) and :mod:`bench.report.render_tex` (LaTeX).

Text in a block is inline Markdown (``**bold**``, a code span in backquotes, ``*emphasis*``, ``_emphasis_``); each
renderer turns it into its own markup. A block says what a piece of the report is, never how it looks.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["Block", "BulletList", "Figure", "Heading", "Note", "Paragraph", "Table"]


@dataclass(frozen=True)
class Heading:
    """A heading: ``level`` 1 is the report's title, 2 a section (a target, *Flagged cells*, ...)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of inline Markdown (a table's title is one too)."""

    text: str


@dataclass(frozen=True)
class BulletList:
    """An unordered list, one inline-Markdown item per entry."""

    items: list[str]


@dataclass(frozen=True)
class Table:
    """A table: header cells, body rows (text), and the lines printed under it (interval rule, marks, ...)."""

    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def with_notes(self, notes: list[str]) -> Table:
        """The same table with ``notes`` under it (in place of any it had)."""
        return replace(self, notes=list(notes))


@dataclass(frozen=True)
class Note:
    """A one-line remark in emphasis, standing where there is nothing to show ("No records.")."""

    text: str


@dataclass(frozen=True)
class Figure:
    """An image beside the report (``path`` relative to it) with its caption."""

    path: str
    caption: str


Block = Heading | Paragraph | BulletList | Table | Note | Figure
"""Any block of a report."""
