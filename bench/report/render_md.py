"""The Markdown renderer of a report's blocks (:mod:`bench.report.blocks`): GitHub-flavoured tables, one note per
line under each table (Markdown hard breaks)."""
from __future__ import annotations

from collections.abc import Iterable

from tabulate import tabulate

from bench.report.blocks import Block, BulletList, Figure, Heading, Note, Paragraph, Table

__all__ = ["TABLEFMT", "markdown", "markdown_table", "table_or_note"]

TABLEFMT = "github"


def markdown_table(table: Table) -> str:
    """The table's header and rows as a GitHub-flavoured Markdown table (without its notes).

    Cells are printed as they are: ``disable_numparse`` keeps tabulate from turning "0.800" into "0.8".
    """
    return tabulate(table.rows, headers=table.headers, tablefmt=TABLEFMT, disable_numparse=True)


def table_or_note(block: Table | Note) -> str:
    """What a ``table_*`` function returns: the Markdown table without its notes, or the note standing in for it."""
    return markdown_table(block) if isinstance(block, Table) else _note(block)


def _note(note: Note) -> str:
    return f"_{note.text}_"


def _lines(block: Block) -> list[str]:
    """The Markdown lines of one block, followed by a blank line."""
    match block:
        case Heading(text=text, level=level):
            return [f"{'#' * level} {text}", ""]
        case Paragraph(text=text):
            return [text, ""]
        case Note():
            return [_note(block), ""]
        case BulletList(items=items):
            return [f"- {item}" for item in items] + [""]
        case Table(notes=notes):
            return [markdown_table(block), ""] + (["  \n".join(notes), ""] if notes else [])
        case Figure(path=path, caption=caption):
            return [f"![{caption}]({path})", ""]
    raise TypeError(f"not a report block: {block!r}")


def markdown(blocks: Iterable[Block]) -> str:
    """The Markdown document of ``blocks``, ending with one newline."""
    return "\n".join(line for block in blocks for line in _lines(block)).rstrip() + "\n"
