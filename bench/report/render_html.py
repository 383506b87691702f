"""The HTML renderer of a report's blocks (:mod:`bench.report.blocks`): one self-contained HTML5 page.

The blocks are the Markdown report's, so the page shows the same numbers: every :class:`Table` becomes a real
``<table class="report-table" data-report-table>`` whose cells hold the Markdown cell texts (inline Markdown turned
into ``<strong>``, ``<code>``, ``<em>``), with the table's notes under it. Figures are embedded (``data:`` URIs or
inline SVG); a :class:`Figure` whose image is not given shows its caption only. Nothing on the page refers
outside it: CSS and the few lines of script that sort a table by a clicked header are inline, and the page reads
the same without script. ``@media print`` drops the navigation and keeps tables and figures on one page each.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from bench.report.blocks import Block, BulletList, Figure, Heading, Note, Paragraph, Table
from bench.report.render_tex import _LABEL_HEADERS

__all__ = ["html_inline", "html_page", "html_table", "plain_text"]

_NUMBER = re.compile(r"^[-+−]?\d")
_NOT_A_NUMBER = ("NA", "n/a", "failed", "—")
_INLINE = re.compile(r"(\*\*.+?\*\*|`[^`]+`|\*[^*\s][^*]*\*|(?<![\w\\])_[^_\s][^_]*_(?![\w]))")

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; --accent: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, header.page-header, nav.toc { max-width: 1320px; margin: 0 auto; padding: 0 24px; }
header.page-header { padding-top: 24px; }
h1 { font-size: 1.7rem; margin: 0.4em 0; }
h2 { font-size: 1.3rem; margin: 1.8em 0 0.6em; padding-bottom: 0.2em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.4em 0 0.5em; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--head);
  padding: 0.1em 0.3em; border-radius: 4px; }
p, li { max-width: 80em; }
nav.toc { font-size: 0.9rem; color: var(--muted); }
nav.toc ul { display: flex; flex-wrap: wrap; gap: 4px 16px; list-style: none; padding: 0; margin: 8px 0; }
nav.toc a { color: var(--accent); text-decoration: none; }
.table-wrap { overflow-x: auto; margin: 0.6em 0 0.2em; }
table.report-table { border-collapse: collapse; font-size: 0.9rem; font-variant-numeric: tabular-nums; }
table.report-table th, table.report-table td { border: 1px solid var(--line); padding: 4px 9px; text-align: left;
  vertical-align: top; }
table.report-table td.num, table.report-table th.num { text-align: right; }
table.report-table td.num, table.report-table td.short { white-space: nowrap; }
table.report-table td.long { min-width: 12em; }
table.report-table thead th { background: var(--head); position: sticky; top: 0; }
table.report-table tbody tr:nth-child(even) { background: #fbfcfd; }
table.report-table td.carried { color: var(--muted); }
.sortable th { cursor: pointer; user-select: none; }
.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 0.7em; }
.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 0.7em; }
.table-notes { font-size: 0.82rem; color: var(--muted); margin: 0.2em 0 1.2em; }
.table-notes p { margin: 0.15em 0; }
p.note { font-style: italic; color: var(--muted); }
figure.report-figure { display: inline-table; vertical-align: top; margin: 0.8em 1.6em 1.4em 0; }
figure.report-figure img, figure.report-figure svg { display: block; max-width: 100%; height: auto; }
figure.report-figure figcaption { display: table-caption; caption-side: bottom; font-size: 0.85rem;
  color: var(--muted); margin-top: 0.3em; }
@media print {
  body { font-size: 10pt; }
  nav.toc { display: none; }
  main, header.page-header { max-width: none; padding: 0; }
  table.report-table thead th { position: static; }
  .table-wrap { overflow: visible; }
  table.report-table, figure.report-figure { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

# Click a header to sort by that column (numbers by their leading value, else text); click again to reverse.
# Blank label cells (a row continuing the backbone above) first take the label they continue, shown muted.
SCRIPT = """
(function () {
  function key(cell) {
    var t = cell.textContent.trim(), m = t.match(/^[-\\u2212]?\\d+(\\.\\d+)?/);
    return m ? [0, parseFloat(m[0].replace("\\u2212", "-")), t] : [1, 0, t];
  }
  function cmp(a, b) { return a[0] - b[0] || a[1] - b[1] || a[2].localeCompare(b[2]); }
  document.querySelectorAll("table[data-report-table]").forEach(function (table) {
    table.classList.add("sortable");
    var body = table.tBodies[0];
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.addEventListener("click", function () {
        body.querySelectorAll("td[data-carry]").forEach(function (td) {
          td.textContent = td.getAttribute("data-carry"); td.classList.add("carried"); td.removeAttribute("data-carry");
        });
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) { return dir * cmp(key(a.cells[col]), key(b.cells[col])); });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def html_inline(text: str) -> str:
    """Inline Markdown (``**bold**``, a code span, ``*emphasis*``, ``_emphasis_``) to HTML, escaping everything
    else; an underscore inside a word (``efficientnet_lite0``) stays an underscore, as in GitHub Markdown."""
    text = str(text)
    out = []
    for part in _INLINE.split(text):
        if not part:
            continue
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append("<strong>" + html_inline(part[2:-2]) + "</strong>")
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            out.append("<code>" + html.escape(part[1:-1]) + "</code>")
        elif part[0] in "*_" and part.endswith(part[0]) and len(part) > 2:
            out.append("<em>" + html_inline(part[1:-1]) + "</em>")
        else:
            out.append(html.escape(part.replace("\\|", "|")))
    return "".join(out)


def plain_text(text: str) -> str:
    """What :func:`html_inline` shows of ``text``, as plain text (markup gone, nothing escaped)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_inline(text)))


def _slug(text: str, used: set[str]) -> str:
    """A unique id for a heading."""
    base = re.sub(r"[^a-z0-9]+", "-", plain_text(text).lower()).strip("-") or "section"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}-{i}", i + 1
    used.add(slug)
    return slug


def _numeric(cells: list[str]) -> bool:
    """True for a column of numbers (a cell may also say NA, n/a, failed or —): right-aligned, never wrapped."""
    return all(_NUMBER.match(t) for c in cells if (t := c.strip()) and t not in _NOT_A_NUMBER)


def _column_class(is_label: bool, cells: list[str]) -> str:
    """How a column is laid out: ``num`` (right, on one line), ``short`` text (on one line), ``long`` text (wrapped,
    never narrower than a short paragraph) or ``text``."""
    if not is_label:
        return "num"
    longest = max((len(plain_text(c)) for c in cells), default=0)
    return "short" if longest <= 24 else "long" if longest > 60 else "text"


def html_table(table: Table) -> str:
    """The table and its notes: ``<table class="report-table" data-report-table>``, label columns left-aligned,
    number columns (:func:`_numeric`) right-aligned; a blank label cell keeps the label it continues in
    ``data-carry`` (shown once the table is sorted)."""
    columns = [[row[i] for row in table.rows if i < len(row)] for i in range(len(table.headers))]
    label = [h in _LABEL_HEADERS or not _numeric(col) for h, col in zip(table.headers, columns)]
    kinds = [_column_class(is_label, col) for is_label, col in zip(label, columns)]
    head = "".join(f'<th scope="col" class="{kinds[i]}">{html_inline(h)}</th>' for i, h in enumerate(table.headers))
    rows, carry = [], [""] * len(table.headers)
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            is_label = i < len(label) and label[i]
            kind = kinds[i] if i < len(kinds) else "text"
            if is_label and cell == "" and carry[i]:
                cells.append(f'<td class="{kind}" data-carry="{html.escape(carry[i])}"></td>')
                continue
            if is_label:
                carry[i] = plain_text(cell)
            cells.append(f'<td class="{kind}">{html_inline(cell)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<p>{html_inline(n)}</p>" for n in table.notes)
    return (f'<div class="table-wrap"><table class="report-table" data-report-table>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>\n"
            + (f'<div class="table-notes">{notes}</div>\n' if notes else ""))


def _figure(block: Figure, figures: dict[str, str]) -> str:
    """A figure from ``figures[path]`` (an ``<svg>`` element or a ``data:`` URI); the caption alone otherwise."""
    image = figures.get(block.path, "")
    caption = f"<figcaption>{html_inline(block.caption)}</figcaption>"
    attrs = f'class="report-figure" data-figure="{html.escape(block.path)}"'
    if image.lstrip().startswith("<svg"):
        return f"<figure {attrs}>{image}{caption}</figure>\n"
    if image.startswith("data:"):
        alt = html.escape(plain_text(block.caption))
        return f'<figure {attrs}><img src="{html.escape(image)}" alt="{alt}">{caption}</figure>\n'
    return (f'<figure class="report-figure missing" data-figure="{html.escape(block.path)}">'
            f"{caption}<p class=\"note\">(figure {html.escape(block.path)} is not embedded in this page)</p>"
            "</figure>\n")


def _html(block: Block, figures: dict[str, str], ids: set[str]) -> str:
    """The HTML of one block."""
    match block:
        case Heading(text=text, level=level):
            level = min(max(level, 1), 6)
            return f'<h{level} id="{_slug(text, ids)}">{html_inline(text)}</h{level}>\n'
        case Paragraph(text=text):
            return f"<p>{html_inline(text)}</p>\n"
        case Note(text=text):
            return f'<p class="note">{html_inline(text)}</p>\n'
        case BulletList(items=items):
            return "<ul>\n" + "".join(f"<li>{html_inline(i)}</li>\n" for i in items) + "</ul>\n"
        case Table():
            return html_table(block)
        case Figure():
            return _figure(block, figures)
    raise TypeError(f"not a report block: {block!r}")


def html_page(blocks: Iterable[Block], *, title: str, figures: dict[str, str] | None = None,
              header: Sequence[Block] = ()) -> str:
    """The self-contained HTML5 page of ``blocks``, ending with one newline.

    Args:
        blocks: the page's body, in reading order (:mod:`bench.report.blocks`); level-2 headings are listed in
            the navigation at the top.
        title: the page title (``<title>``; inline Markdown is dropped) and its ``<h1>``.
        figures: ``Figure.path`` -> the image, as an ``<svg>`` element or a ``data:`` URI.
        header: blocks shown under the title, before the navigation (suite, when and where it ran, counts).

    Returns:
        The page: inline CSS and script, no reference outside it.
    """
    figures = dict(figures or {})
    ids: set[str] = {"top"}
    head_html = "".join(_html(b, figures, ids) for b in header)
    body = [_html(b, figures, ids) for b in blocks]
    toc = [(m.group(1), m.group(2)) for part in body for m in [re.match(r'<h2 id="([^"]+)">(.*)</h2>', part)] if m]
    nav = ('<nav class="toc" aria-label="Sections"><ul>' + "".join(f'<li><a href="#{i}">{t}</a></li>'
                                                                   for i, t in toc) + "</ul></nav>\n") if toc else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(plain_text(title))}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<header class="page-header" id="top">\n<h1>{html_inline(title)}</h1>\n{head_html}</header>\n'
            f"{nav}<main>\n{''.join(body)}</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n")
