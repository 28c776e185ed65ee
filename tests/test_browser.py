"""The rendered book, checked in a real browser at a phone's, a tablet's and a desktop's width.

Builds the book with `jupyter-book build --all -W -n` from a copy of its sources, opens every page of
`_toc.yml` in headless Chromium (one browser for all pages, windows 390, 800 and 1280 px wide, every network
request refused: the book must work offline) and fails on what a reader would see as broken:

- an image that did not load (`naturalWidth` 0), or an image without alt text (output figures take theirs
  from the cell metadata `"mystnb": {"image": {"alt": "..."}}`);
- clipped content, in one of three precise senses, measured with every dropdown open:
  1. a box with `overflow: hidden` (or `clip`) whose visible content reaches past it: content cut off;
  2. an element reaching past the content column (`article.bd-article`) without a scrolling box inside the
     column to hold it, or a page that scrolls sideways (at every width: a long inline code span once made
     a phone page 530 px wide);
  3. in a cell output, an aligned line (a table row: two or more spaces inside the line; a rule such as
     `=====`) that wraps. At 1280 px a cell output's `pre` must also not scroll sideways (torchinfo and
     receptive-field tables fit the column whole; prose lines may wrap); below 1200 px outputs scroll inside
     their own box and no line of theirs may wrap at all;
- at 1280 px, a table that scrolls sideways (its last columns off screen);
- a page missing from the navigation sidebar: every page must list every toc page, in toc order, and mark
  itself as the current one; at 1280 px the sidebar must be shown;
- more than one search field, or anything laid over the sidebar's search field, title or first link;
- a notebook page without its Colab link or with a wrong one, or a Colab link on a page that is not a
  notebook;
- a rendered traceback (an error output, or the text "Traceback (most recent call last)"), or a warning
  printed to stderr in an output;
- math that MathJax did not typeset offline, a request for the network, a missing local file, a JavaScript
  error or an error logged to the console, a page without a favicon.

`test_both_sidebars_open` clicks the theme's own buttons at each width: the navigation ("Site navigation")
and the page's contents ("On this page") must each be on screen after one click, or be shown already.

Reported as warnings only: code cells and formulas that scroll sideways, and tables below 1200 px (they
scroll inside their own box).

A full-page screenshot of every page at every width, as a reader first sees it, is saved in
`_build/screenshots/` (`01_lenet.png` at 1280 px, `01_lenet-390.png` at 390 px). The browser test is skipped,
with the reason, where Chromium or Playwright is not installed. Playwright drives the system's Chromium;
`playwright install` is never needed. The in-page measurements are in `browser_checks.js`.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHECKS = (Path(__file__).parent / "browser_checks.js").read_text()
# Phone (iPhone 12-15 class), tablet (portrait, the theme's layout below 992 px), desktop.
WIDTHS = (390, 800, 1280)
HEIGHT = {390: 844, 800: 1000, 1280: 900}
DESKTOP = 1200  # from here on both sidebars are shown and outputs must fit the column unscrolled
COLAB = "https://colab.research.google.com"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _find_chromium() -> str | None:
    for name in filter(None, [os.environ.get("CNNBOOK_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]):
        if found := shutil.which(name):
            return found
    return None


CHROMIUM = _find_chromium()
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the test is skipped below
    sync_playwright = None

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium; or set CNNBOOK_CHROMIUM to a binary)")
needs_playwright = pytest.mark.skipif(
    sync_playwright is None,
    reason="Playwright is not installed (pip install playwright; it drives the system's Chromium, so "
           "`playwright install` is not needed)")


def _toc_pages() -> list[str]:
    """The files of `_toc.yml` in reading order, without extension (e.g. "book/01_lenet")."""
    def walk(entries):
        for entry in entries:
            if "file" in entry:
                yield entry["file"]
            yield from walk(entry.get("sections", []))

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"], *walk(toc.get("chapters", []))]
    for part in toc.get("parts", []):
        pages += walk(part.get("chapters", []))
    return [re.sub(r"\.(md|ipynb)$", "", page) for page in pages]


PAGES = _toc_pages()


def _is_notebook(page: str) -> bool:
    return (ROOT / f"{page}.ipynb").exists() or not (ROOT / f"{page}.md").exists()


def _expected_colab_link(page: str) -> str:
    """Colab's address for a notebook of the toc. _config.yml sits at the root of the repository, so a toc path
    is also the path in the repository; a wrong `repository.path_to_book` would show up as a mismatch."""
    repo = CONFIG["repository"]
    owner_name = urlparse(repo["url"]).path.strip("/").removesuffix(".git")
    return f"{COLAB}/github/{owner_name}/blob/{repo.get('branch', 'main')}/{page}.ipynb"


def _placeholder_notebook(page: str) -> str:
    cell = {"cell_type": "markdown", "metadata": {}, "source": [f"# {Path(page).stem} (not written yet)"]}
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return json.dumps({"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the book from a copy of its sources, with warnings as errors; return the html folder."""
    copy = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "book", copy / "book",
                    ignore=shutil.ignore_patterns(".*", "__pycache__", "_build", "data", "*.pyc"))
    # A page that _toc.yml names but nobody has written yet would stop the build and hide every other page.
    # test_book.py::test_toc_and_notebooks_match fails on it; here it only gets a placeholder.
    missing = [page for page in PAGES if not any((ROOT / f"{page}{ext}").exists() for ext in (".md", ".ipynb"))]
    for page in missing:
        (copy / f"{page}.ipynb").write_text(_placeholder_notebook(page))
    if missing:
        warnings.warn(f"_toc.yml names pages that do not exist yet; checked as placeholders: {missing}")

    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
               "build", "--all", "-W", "-n", "--keep-going", str(copy)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr).replace(str(copy), "<book>")
        problems = [line for line in log.splitlines() if re.search(r"WARNING|ERROR|Error|Exception", line)]
        pytest.fail("jupyter-book build -W failed:\n" + "\n".join(problems[:40] or log.splitlines()[-40:]))
    return copy / "_build" / "html"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for every page and width (starting it is the slow part)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def windows(browser):
    """A browser context (a window size) per width, made when first asked for."""
    made = {}

    def window(width: int):
        if width not in made:
            made[width] = browser.new_context(viewport={"width": width, "height": HEIGHT[width]},
                                              device_scale_factor=1, service_workers="block")
            made[width].set_default_timeout(60_000)  # generous: the suite shares two cores with notebook runs
        return made[width]

    yield window
    for context in made.values():
        context.close()


def _open(context, site: Path, page_name: str, problems: list[str]):
    """A page of the site, opened offline, with its errors reported into `problems`."""
    page = context.new_page()

    def refuse_the_network(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            problems.append(f"needed the network: {route.request.resource_type} {route.request.url}")
            route.abort()

    page.route("**/*", refuse_the_network)
    page.on("requestfailed", lambda request: request.url.startswith("file:") and problems.append(
        f"missing file: {request.url.removeprefix(site.as_uri())} ({request.failure})"))
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    page.on("console", lambda message: message.type == "error" and problems.append(
        f"console error: {message.text}"))
    page.goto((site / f"{page_name}.html").as_uri(), wait_until="load")
    return page


def _screenshot(page, path: Path) -> None:
    """The whole page as a PNG. Chromium's own capture with its fast encoder is about twice as fast as
    Playwright's full_page screenshot on a long chapter."""
    width, height = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    cdp = page.context.new_cdp_session(page)
    try:
        shot = cdp.send("Page.captureScreenshot", {
            "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    finally:
        cdp.detach()
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("width", WIDTHS, ids=lambda width: f"{width}px")
@pytest.mark.parametrize("page_name", PAGES)
@needs_chromium
@needs_playwright
def test_page_renders_cleanly_in_chromium(page_name, width, site, windows):
    html = site / f"{page_name}.html"
    assert html.exists(), f"{page_name} is in _toc.yml but was not built"
    url = html.as_uri()
    problems: list[str] = []
    page = _open(windows(width), site, page_name, problems)
    try:
        page.evaluate("document.fonts.ready.then(() => true)")
        suffix = "" if width == 1280 else f"-{width}"
        _screenshot(page, SCREENSHOTS / f"{Path(page_name).name}{suffix}.png")  # before the checks open dropdowns
        measured = page.evaluate(CHECKS, {"desktop": width >= DESKTOP})
    finally:
        page.close()
    problems += measured["problems"]

    expected_nav = [(site / f"{p}.html").as_uri() for p in PAGES]
    navigation = list(dict.fromkeys(measured.get("nav", [])))
    if width >= DESKTOP and not measured.get("nav_visible"):
        problems.append(f"navigation: the sidebar is not visible in a {width} px window")
    problems += [f"navigation: {p} is missing from the sidebar" for p, link in zip(PAGES, expected_nav)
                 if link not in navigation]
    if set(expected_nav) <= set(navigation) and [n for n in navigation if n in expected_nav] != expected_nav:
        problems.append("navigation: the sidebar lists the pages in another order than _toc.yml")
    if page_name != PAGES[0] and measured.get("nav_current") != [url]:
        problems.append(f"navigation: the sidebar does not mark this page as the current one "
                        f"({measured.get('nav_current')})")
    icons = [Path(urlparse(href).path) for href in measured.get("favicon", []) if href.startswith("file:")]
    if not icons or not all(icon.is_file() for icon in icons):
        problems.append(f"favicon: none, or a missing file ({measured.get('favicon')})")

    colab = sorted(set(measured.get("colab", [])))
    if _is_notebook(page_name):
        if colab != [_expected_colab_link(page_name)]:
            problems.append(f"Colab link: expected {_expected_colab_link(page_name)}, found {colab or 'none'}")
    elif colab:
        problems.append(f"Colab link on a page that is not a notebook: {colab}")

    if measured["sideways"]:
        summary = "; ".join(f"{n['count']} {what} (widest {n['widest']} px in {n['box']} px)"
                            for what, n in measured["sideways"].items())
        warnings.warn(f"{page_name} at {width} px: scrolls sideways to be read whole: {summary}")
    if measured["altless_outputs"]:
        problems.append(f"{measured['altless_outputs']} output figure(s) without alt text "
                        '(cell metadata "mystnb": {"image": {"alt": "..."}})')
    assert not problems, f"{page_name} at {width} px ({url}):\n- " + "\n- ".join(problems)


# Where a sidebar is: on screen, wide enough to read, and its first link not covered by anything.
SIDEBAR_SHOWN = """(selector) => {
  const bar = document.querySelector(selector);
  if (!bar) return null;
  const r = bar.getBoundingClientRect();
  const style = getComputedStyle(bar);
  // a link inside the window: the theme scrolls a long sidebar to the current page's entry
  const link = [...bar.querySelectorAll('a')].find(a => {
    const l = a.getBoundingClientRect();
    return a.getClientRects().length && l.top >= 0 && l.bottom <= innerHeight;
  });
  let reachable = false;
  if (link) {
    const l = link.getBoundingClientRect();
    const top = document.elementFromPoint(l.left + Math.min(l.width / 2, 20), l.top + l.height / 2);
    reachable = !!top && (top === link || link.contains(top));
  }
  return {shown: style.visibility !== 'hidden' && style.display !== 'none' && r.width >= 150 && r.left >= -1 &&
                 r.right <= innerWidth + 1 && reachable,
          box: [Math.round(r.left), Math.round(r.right)]};
}"""
SIDEBARS = {"navigation": (".bd-sidebar-primary", ".primary-toggle"),
            "contents of the page": (".bd-sidebar-secondary", ".secondary-toggle")}


@pytest.mark.parametrize("width", WIDTHS, ids=lambda width: f"{width}px")
@needs_chromium
@needs_playwright
def test_both_sidebars_open(width, site, windows):
    """Each sidebar is on screen, at once or after one click on the theme's visible button for it.

    pydata-sphinx-theme 0.17 (with sphinx-book-theme 1.3) drew two buttons per sidebar and bound only the
    first, hidden one: below 992 px neither sidebar could be opened (pydata-sphinx-theme#2451)."""
    problems: list[str] = []
    for page_name in (PAGES[1], PAGES[-2]):  # two chapters: both have a navigation and a contents sidebar
        for what, (sidebar, toggle) in SIDEBARS.items():
            page = _open(windows(width), site, page_name, problems)
            try:
                state = page.evaluate(SIDEBAR_SHOWN, sidebar)
                if state is None:
                    problems.append(f"{page_name}: no {sidebar} at all")
                    continue
                if not state["shown"]:
                    buttons = [b for b in page.locator(toggle).all() if b.is_visible()]
                    if not buttons:
                        problems.append(f"{page_name}: the {what} is hidden and no button opens it")
                        continue
                    buttons[0].click()
                    page.wait_for_timeout(600)  # the slide-in transition
                    state = page.evaluate(SIDEBAR_SHOWN, sidebar)
                    if not state["shown"]:
                        problems.append(f"{page_name}: clicking the {what} button ({toggle}) does not show it "
                                        f"(its box spans x={state['box']} in a {width} px window)")
            finally:
                page.close()
    assert not problems, f"at {width} px:\n- " + "\n- ".join(problems)


def test_colab_links_point_at_the_published_repository():
    assert _expected_colab_link("book/00_introduction") == (
        "https://colab.research.google.com/github/classic-cnns/classic-cnns-book/blob/main/book/00_introduction.ipynb")
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == COLAB
    assert CONFIG["repository"]["path_to_book"] == "", "_config.yml is at the repository's root"
