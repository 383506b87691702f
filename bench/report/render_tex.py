"""The LaTeX renderer of a report's blocks (:mod:`bench.report.blocks`): a standalone article with booktabs tables.

The blocks are the Markdown report's, so both show the same numbers; "±", "†" and "‡" become ``$\\pm$``,
``$^{\\dagger}$`` and ``$^{\\ddagger}$``. Compiles with pdflatex (packages booktabs, graphicx).
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

from bench.report.blocks import Block, BulletList, Figure, Heading, Note, Paragraph, Table
from bench.report.checks import DEGENERATE, PARTIAL, UNCALIBRATED
from bench.report.table import OVERFIT, SIGNIFICANT

__all__ = ["latex", "latex_escape", "latex_inline", "latex_table"]

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"±": r"$\pm$", SIGNIFICANT: r"$^{\dagger}$", OVERFIT: r"$^{\ddagger}$", DEGENERATE: r"$^{!}$",
                  UNCALIBRATED: r"$^{\diamond}$", PARTIAL: r"$^{\ominus}$", "—": "---", "–": "--",
                  "β": r"$\beta$", "α": r"$\alpha$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "×": r"$\times$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "−": "-", "·": r"$\cdot$", "√": r"$\surd$", "…": r"\dots{}",
                  "₀": r"$_0$", "₁": r"$_1$", "′": "$'$", "✗": r"$\times$"}
_LABEL_HEADERS = ("Backbone", "Pre-training", "Target", "Network", "Network A", "Column", "Metric")
_PREAMBLE = [r"\documentclass{article}", r"\usepackage[utf8]{inputenc}", r"\usepackage[T1]{fontenc}",
             r"\usepackage{booktabs}", r"\usepackage{graphicx}", r"\usepackage[margin=2cm,landscape]{geometry}",
             r"\begin{document}", ""]


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and the report's symbols (±, †, β, ...) in math mode."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    for uni, tex in _LATEX_UNICODE.items():
        out = out.replace(uni, tex)
    return out


def latex_inline(text: str) -> str:
    """Markdown inline markup (**bold**, `code`, _emphasis_) to LaTeX, escaping everything else."""
    if text.startswith("_") and text.endswith("_") and len(text) > 2:
        return r"\emph{" + latex_inline(text[1:-1]) + "}"
    parts = re.split(r"(\*\*.+?\*\*|`[^`]+`|\*[^*]+\*)", text)
    out = []
    for part in parts:
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append(r"\textbf{" + latex_inline(part[2:-2]) + "}")
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            out.append(r"\texttt{" + latex_escape(part[1:-1]) + "}")
        elif part.startswith("*") and part.endswith("*") and len(part) > 2:
            out.append(r"\emph{" + latex_escape(part[1:-1]) + "}")
        else:
            out.append(latex_escape(part))
    return "".join(out)


def latex_table(table: Table) -> str:
    """A booktabs tabular via pandas' Styler.to_latex (without the notes); cells escaped here (Styler does not).

    Label columns (backbone, source, target, ...) are left-aligned, number columns right-aligned.
    """
    frame = pd.DataFrame([[latex_escape(c) for c in row] for row in table.rows],
                         columns=[latex_escape(h) for h in table.headers])
    n_label = sum(1 for h in table.headers if h in _LABEL_HEADERS)
    column_format = "l" * n_label + "r" * (len(table.headers) - n_label)
    return frame.style.hide(axis="index").to_latex(hrules=True, column_format=column_format)


def _lines(block: Block) -> list[str]:
    """The LaTeX lines of one block, followed by a blank line."""
    match block:
        case Heading(text=text, level=level):
            return [(r"\section*{" if level == 1 else r"\subsection*{") + latex_inline(text) + "}", ""]
        case Paragraph(text=text):
            return [latex_inline(text), ""]
        case Note(text=text):
            return [r"\emph{" + latex_inline(text) + "}", ""]
        case BulletList(items=items):
            return [r"\begin{itemize}", *(r"\item " + latex_inline(i) for i in items), r"\end{itemize}", ""]
        case Table(notes=notes):
            return [r"\begin{center}", latex_table(block).rstrip(), r"\end{center}", "",
                    *(r"{\footnotesize " + latex_inline(n) + r"\par}" for n in notes), ""]
        case Figure(path=path):
            return [r"\begin{center}", r"\includegraphics[width=0.9\linewidth]{" + path + "}", r"\end{center}", ""]
    raise TypeError(f"not a report block: {block!r}")


def latex(blocks: Iterable[Block]) -> str:
    """The standalone LaTeX document of ``blocks``, ending with one newline."""
    lines = [*_PREAMBLE, *(line for block in blocks for line in _lines(block)), r"\end{document}"]
    return "\n".join(lines) + "\n"
