"""The HTML report page in a real browser: headless Chromium (the system's ``chromium``) driven by Playwright.

Nothing leaves the page, no console error, the tables show report.md's numbers, sorting works, and every figure is
drawn (a screenshot of each has real content). Skipped, with the reason, where Playwright or Chromium is missing:
``pip install playwright`` and a system Chromium (``apt-get install chromium``); ``playwright install`` is not
needed. The full page is saved as ``$BENCH_HTML_SCREENSHOT`` (default: the test's temporary folder).
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_report_html import markdown_tables, suite_records, svcca_records

from bench.report import write_report

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (apt-get install chromium)")

# Every table of <main> as rows of cell texts (header first), as the browser lays them out.
TABLES_JS = """() => Array.from(document.querySelectorAll("main table[data-report-table]")).map(
  t => Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.textContent.trim())))"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "tiny"
    write_report(suite_records(), out, suite="tiny", svcca_records=svcca_records(),
                 description="a tiny suite <for> the browser")
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        except Exception as exc:  # noqa: BLE001  (a Chromium Playwright cannot drive: say why, do not fail)
            pytest.skip(f"Playwright cannot start {CHROMIUM}: {str(exc).splitlines()[0]}")
        yield browser
        browser.close()


def _colours(png: bytes) -> tuple[int, float]:
    """Distinct colours and the standard deviation of the grey levels of a screenshot."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int32)
    packed = (image[..., 0] << 16) | (image[..., 1] << 8) | image[..., 2]  # one int per colour: a 1-d unique is fast
    return len(np.unique(packed)), float(image.mean(axis=2).std())


def test_the_page_in_chromium(report, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
               else route.abort())
    page.goto((report / "index.html").as_uri(), wait_until="load")

    # Nothing but the page itself (and its own data: images) is asked for, and no script fails.
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert [u for u in requests if u.startswith("file:")] == [(report / "index.html").as_uri()]
    assert errors == []

    # The tables show report.md's cells, in report.md's order.
    assert page.evaluate(TABLES_JS) == markdown_tables((report / "report.md").read_text())

    # Every figure is loaded and drawn: many colours, not one flat tone. One screenshot of the whole page, each
    # figure's image cut out of it by its box (a screenshot per figure took about a second each).
    from PIL import Image

    shot = Path(os.environ.get("BENCH_HTML_SCREENSHOT", tmp_path / "html_report.png"))
    page.screenshot(path=str(shot), full_page=True)
    whole = Image.open(shot).convert("RGB")
    figures = page.locator("figure.report-figure")
    n = figures.count()
    assert n >= 8  # per target: AUC vs share, ΔAUC vs random init, β, ROC; hybrid for one target; SVCCA
    for i in range(n):
        figure = figures.nth(i)
        assert figure.locator("img").evaluate("img => img.complete && img.naturalWidth > 100")
        box = figure.bounding_box()
        assert box["width"] > 200 and box["height"] > 150, figure.get_attribute("data-figure")
        img = figure.locator("img").bounding_box()  # the page is not scrolled: viewport = page coordinates
        crop = whole.crop((int(img["x"]), int(img["y"]), int(img["x"] + img["width"]), int(img["y"] + img["height"])))
        buf = io.BytesIO()
        crop.save(buf, format="PNG")
        colours, spread = _colours(buf.getvalue())
        assert colours >= 16 and spread > 5, (figure.get_attribute("data-figure"), colours, spread)
    assert _colours(shot.read_bytes())[0] > 100

    # Clicking a header sorts the table by that column; continued labels are filled in.
    table = page.locator("main table[data-report-table]").first
    header = table.locator("thead th").nth(2)
    column = [row[2] for row in page.evaluate(TABLES_JS)[0][1:]]
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    after = [row for row in page.evaluate(TABLES_JS)[0][1:]]
    assert sorted(column, key=lambda t: float(t.split()[0])) == [row[2] for row in after]
    assert all(row[0] for row in after)  # every row names its backbone once sorted
    assert errors == []

    page.close()


def test_the_page_prints(report, browser, tmp_path):
    """The print stylesheet gives a PDF (tables and figures kept whole; navigation dropped)."""
    page = browser.new_page()
    page.goto((report / "index.html").as_uri())
    page.emulate_media(media="print")
    assert page.locator("nav.toc").is_hidden()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    page.close()
