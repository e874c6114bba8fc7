"""The slide decks in a real browser: headless Debian Chromium, network cut off.

For the fixture notebook and every course notebook in notebooks/: reveal.js starts, the
deck has the notebook's number of slides, MathJax typeset every formula (no raw ``$$``
left), every image decoded, the keyboard reaches the last slide through every slide, and
every slide fits: its content is at most ``OVERFLOW_TOLERANCE`` taller than the slide, at
the zoom the deck chose (never below ``slides.MIN_ZOOM``).  Screenshots of the title slide,
the first math slide and the most zoomed slide go to build/screenshots/slides/
<deck>-title.png, <deck>-math.png and <deck>-fit.png for review, and <deck>-overflow.txt
lists every slide that needed a zoom or does not fit.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bncourse.authoring import slides
from tests.browser_helpers import chromium_browser_session, watch_page
from tests.paths import COURSE_NOTEBOOKS, ROOT, notebook_params, require_notebook
from tests.slides_fixture import (
    ANSWER_TEXT,
    EXPECT,
    NOTES_TEXT,
    QUESTION,
    TITLE_NOTES_ONLY,
    ExpectedSlide,
    deck_slides,
    make_fixture_notebook,
)

pytestmark = pytest.mark.browser


SCREENSHOTS = ROOT / "build" / "screenshots" / "slides"
#: (h, v) of the fixture slide holding the long, folded code cell.
FOLD_SLIDE = (3, 3)


# ----------------------------------------------------------------- browser checks

_SLIDE_STATE = """() => {
  const out = [];
  for (const slide of Reveal.getSlides()) {
    const idx = Reveal.getIndices(slide);
    const clone = slide.cloneNode(true);
    clone.querySelectorAll('script, style, aside.notes').forEach(e => e.remove());
    const jax = Array.from(slide.querySelectorAll('script[type^="math/tex"]'))
      .filter(s => !s.closest('aside.notes'));
    const rendered = jax.filter(s => document.getElementById(s.id + '-Frame'));
    out.push({h: idx.h, v: idx.v || 0, text: clone.textContent, n_jax: jax.length,
              n_rendered: rendered.length});
  }
  return out;
}"""

_CURRENT_MATH_SIZE = """async () => {
  await new Promise(resolve => MathJax.Hub.Queue(resolve));
  const slide = Reveal.getCurrentSlide();
  return Array.from(slide.querySelectorAll('script[type^="math/tex"]'))
    .filter(s => !s.closest('aside.notes'))
    .map(s => { const f = document.getElementById(s.id + '-Frame');
                return f ? f.getBoundingClientRect().width : 0; });
}"""

_BROKEN_IMAGES = """() => Array.from(document.querySelectorAll('.slides img'))
  .filter(i => !(i.complete && i.naturalWidth > 0 && i.naturalHeight > 0))
  .map(i => (i.getAttribute('src') || '').slice(0, 60))"""


# Height of the current slide's content (at the zoom the deck's fit applied, in slide px),
# the slide height and that zoom.  Only the shown slide has a layout.
_OVERFLOW = """() => { const s = Reveal.getCurrentSlide();
  return [s.scrollHeight, Reveal.getConfig().height, parseFloat(s.dataset.bncourseZoom || '1')]; }"""

#: How much taller than the slide its content may measure: 1 %, 8 px of 800.  The deck's fit
#: makes every slide it can fit at most the slide height, so this only absorbs sub-pixel
#: rounding (scrollHeight is rounded, zoomed children are not) and the last block's bottom
#: margin, which is blank.  Anything more is cut off behind the slide's scroll bar, so a
#: looser bound (5 %, ~1.5 lines of text) would let real overflow through.
OVERFLOW_TOLERANCE = 0.01


# The deck has fitted the shown slide: reveal.js and MathJax are done and no refit the deck
# scheduled (fonts loading, a MathJax re-render) is still to come.  The deck counts its refits
# in bncourseSlides.fits (see fitCurrent in the deck template).
_FITTED = ("window.bncourseSlides && bncourseSlides.revealReady && bncourseSlides.mathDone "
           "&& bncourseSlides.pendingFits === 0")

# Keyups the page has received (a listener installed on first use): reveal.js navigates on
# keydown, so once the keyup of a key press arrived, the navigation and the refit it started
# (slidechanged) have run.
_KEYUPS = """() => { if (window.bncourseKeyups === undefined) { window.bncourseKeyups = 0;
    document.addEventListener('keyup', () => { window.bncourseKeyups += 1; }, true); }
  return window.bncourseKeyups; }"""


def _wait_fitted(page: Any, timeout: float = 30_000) -> None:
    """Wait until the deck has fitted the shown slide (no refit pending)."""
    page.wait_for_function(f"() => {_FITTED}", timeout=timeout)


def _press(page: Any, key: str) -> None:
    """Press ``key`` and wait until the page has handled it and the deck's refit is done."""
    keyups = page.evaluate(_KEYUPS)
    page.keyboard.press(key)
    page.wait_for_function(f"n => window.bncourseKeyups > n && {_FITTED}", arg=keyups)


def _toggle_fold(page: Any, *, opens: bool) -> None:
    """Click the shown slide's folded code; wait until it is open (``opens``) or closed and
    the deck has refitted the slide since the click (the toggle event comes after the click)."""
    fits = page.evaluate("() => bncourseSlides.fits")
    page.click("details.bncourse-fold > summary")
    try:
        page.wait_for_function(
            "([fits, opens]) => Reveal.getCurrentSlide().querySelector('details.bncourse-fold').open"
            f" === opens && bncourseSlides.fits > fits && {_FITTED}", arg=[fits, opens], timeout=15_000)
    except Exception as exc:  # playwright's TimeoutError
        state = page.evaluate("() => [Reveal.getCurrentSlide().querySelector('details.bncourse-fold').open,"
                              " bncourseSlides.fits, bncourseSlides.pendingFits]")
        raise AssertionError(f"no refit after the fold was {'opened' if opens else 'closed'} "
                             f"(open, fits, pending refits: {state}; fits before the click: {fits})") from exc


# Every slide with all its fragments shown, as a person in the back row sees it at 1280x800:
# words of visible prose (code, outputs, math, figures and notes not counted), the zoom the
# deck applied, the smallest prose font and the smallest figure text in screen px (a figure's
# text is FIG_FONT_PX at its natural CSS size), display equations wider than their box or
# taller than one line of a multi-line layout allows, and text under the (visible) controls.
#: What the lecturer would see of the navigation: the enabled arrow buttons, the slide number.
NAV = ".reveal .controls button.enabled, .reveal .slide-number"

_BARS = r"""async ([figFontPx, index]) => {
  const NAV = '""" + NAV + r"""';
  const slide = Reveal.getSlides()[index];
  const idx = Reveal.getIndices(slide);
  Reveal.slide(idx.h, idx.v || 0, 1e6);
  document.querySelector('.reveal').classList.remove('bncourse-pointer');  // as projected
  await new Promise(r => MathJax.Hub.Queue(['Rerender', MathJax.Hub, slide], r));
  bncourseSlides.fit(slide);
  const nav = Array.from(document.querySelectorAll(NAV))
    .filter(e => getComputedStyle(e).visibility !== 'hidden' && e.getBoundingClientRect().width > 0);
  const zoom = parseFloat(slide.dataset.bncourseZoom || '1');
  const scale = Reveal.getScale();
  const clone = slide.cloneNode(true);
  clone.querySelectorAll('script, style, aside.notes, pre, code, .MathJax, .MathJax_Display, ' +
    '.MathJax_Preview, .jp-OutputArea, img, details.bncourse-fold').forEach(e => e.remove());
  const texts = [], walk = document.createTreeWalker(clone, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) texts.push(walk.currentNode.textContent);  // a heading's last word
  const words = texts.join(' ').split(/\s+/).filter(w => /[A-Za-z0-9]/.test(w)).length;  // is not glued to the next
  let body = null;
  slide.querySelectorAll('.jp-RenderedHTMLCommon p, .jp-RenderedHTMLCommon li, .jp-RenderedHTMLCommon td')
    .forEach(el => {
      if (el.closest('aside.notes, .jp-OutputArea') || !el.textContent.trim()) return;
      const f = parseFloat(getComputedStyle(el).fontSize) * scale * zoom;
      body = body === null ? f : Math.min(body, f);
    });
  let fig = null, figWidth = null;
  slide.querySelectorAll('.jp-OutputArea img').forEach(img => {
    const css = parseFloat(img.getAttribute('width')) || img.naturalWidth;
    const r = img.getBoundingClientRect();
    const shown = Math.min(r.width, r.height * img.naturalWidth / img.naturalHeight);
    fig = fig === null ? figFontPx * shown / css : Math.min(fig, figFontPx * shown / css);
    figWidth = figWidth === null ? shown : Math.min(figWidth, shown);
  });
  const math = [];
  slide.querySelectorAll('.MathJax_Display').forEach(box => {
    const eq = box.querySelector('.MathJax');
    if (!eq) return;
    const r = eq.getBoundingClientRect(), room = box.getBoundingClientRect();
    const script = box.nextElementSibling && box.nextElementSibling.tagName === 'SCRIPT' ? box.nextElementSibling.textContent : '';
    const lines = 1 + (script.match(/\\\\/g) || []).length;
    math.push({width: r.width, room: room.width, height: r.height, lines});
  });
  const inline = Array.from(slide.querySelectorAll('span.MathJax'))
    .filter(m => !m.closest('.MathJax_Display, aside.notes'))
    .map(m => parseFloat(getComputedStyle(m.querySelector('.math') || m).fontSize)
              / parseFloat(getComputedStyle(m.parentElement).fontSize));
  let covered = 0;
  for (const c of nav.map(e => e.getBoundingClientRect())) {
    const walker = document.createTreeWalker(slide, NodeFilter.SHOW_TEXT);
    let n;
    while ((n = walker.nextNode())) {
      if (!n.textContent.trim() || n.parentElement.closest('aside.notes, script, style')) continue;
      const range = document.createRange(); range.selectNodeContents(n);
      for (const q of range.getClientRects()) {
        if (q.width && q.right > c.left && q.left < c.right && q.bottom > c.top && q.top < c.bottom) covered++;
      }
    }
  }
  return {h: idx.h, v: idx.v || 0, words, zoom, body, fig, figWidth, math, inline, covered};
}"""

#: Bars of the issue, at 1280x800: visible prose words per slide (max, and the share of
#: slides under WORDS_TYPICAL), the smallest zoom, prose and figure text in screen px.
MAX_WORDS, WORDS_TYPICAL, TYPICAL_SHARE = 80, 50, 0.9
MIN_BODY_PX, MIN_FIGURE_TEXT_PX = 28, 18
#: A figure is shown at least this wide (screen px) unless it is capped by its height.
MIN_FIGURE_WIDTH = 600
#: Height (screen px) of one line of a display equation: tall fractions and sums fit.
MATH_LINE_PX = 130


def _figure_font_px() -> float:
    """The smallest figure text, in CSS px at the figure's natural size (the course style)."""
    from bncourse.course import plots

    return float(plots.MIN_FONT_PT) * float(plots.STYLE["figure.dpi"]) / 72.0


def check_bars(page: Any, deck: Path, n_slides: int) -> list[dict[str, Any]]:
    """Show every slide of the open deck in turn (fragments shown, controls hidden, math
    typeset, fitted), measure it (_BARS) and photograph it; write the per-slide table to
    build/screenshots/slides/<deck>-bars.txt and the photos as one contact sheet,
    <deck>-contact.png (320x200 thumbnails, 6 per row); then assert the issue's bars."""
    from PIL import Image

    rows, thumbs = [], []
    for index in range(n_slides):
        rows.append(page.evaluate(_BARS, [_figure_font_px(), index]))
        thumbs.append(Image.open(io.BytesIO(page.screenshot())).convert("RGB").resize((320, 200)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cols = 6
    sheet = Image.new("RGB", (cols * 324, ((len(thumbs) + cols - 1) // cols) * 204), "#888888")
    for i, t in enumerate(thumbs):
        sheet.paste(t, ((i % cols) * 324 + 2, (i // cols) * 204 + 2))
    sheet.save(SCREENSHOTS / f"{deck.stem}-contact.png")
    (SCREENSHOTS / f"{deck.stem}-bars.txt").write_text("".join(
        f"slide {r['h']}.{r['v']}: {r['words']} words, zoom {r['zoom']:.3f}, body {r['body']}, "
        f"figure text {r['fig']}, equations {[round(m['width']) for m in r['math']]}\n" for r in rows))
    where = lambda r: f"{deck.name} slide {r['h']}.{r['v']}"  # noqa: E731
    for r in rows:
        assert r["words"] <= MAX_WORDS, f"{where(r)}: {r['words']} words of prose (bar {MAX_WORDS})"
        assert r["zoom"] >= slides.MIN_ZOOM, f"{where(r)}: zoom {r['zoom']}"
        assert r["body"] is None or r["body"] >= MIN_BODY_PX - 0.05, f"{where(r)}: prose at {r['body']:.1f} px"
        assert r["fig"] is None or r["fig"] >= MIN_FIGURE_TEXT_PX - 0.05, (
            f"{where(r)}: figure text at {r['fig']:.1f} px")
        assert r["figWidth"] is None or r["figWidth"] >= MIN_FIGURE_WIDTH or r["fig"] >= MIN_FIGURE_TEXT_PX, where(r)
        for m in r["math"]:
            assert m["width"] <= m["room"] + 1, f"{where(r)}: equation {m['width']:.0f} px wide in {m['room']:.0f}"
            assert m["height"] <= MATH_LINE_PX * m["lines"], f"{where(r)}: equation broken over lines: {m}"
        assert all(0.85 <= k <= 1.3 for k in r["inline"]), f"{where(r)}: inline math not sized like its text: {r['inline']}"
        assert r["covered"] == 0, f"{where(r)}: {r['covered']} text boxes under the navigation controls"
    typical = sum(r["words"] < WORDS_TYPICAL for r in rows) / len(rows)
    assert typical >= TYPICAL_SHARE, f"{deck.name}: only {typical:.0%} of slides under {WORDS_TYPICAL} words"
    return rows


def check_deck(browser: Any, deck: Path, notebook: Path) -> dict[str, Any]:
    """Open a deck in Chromium, assert everything the issue asks, save screenshots."""
    expect = deck_slides(notebook)
    context, page, log = watch_page(browser)
    try:
        page.goto(deck.resolve().as_uri(), wait_until="load")
        _wait_fitted(page, timeout=60_000)
        assert page.evaluate("() => Reveal.isReady() && Reveal.hasPlugin('notes')")
        total = page.evaluate("() => Reveal.getTotalSlides()")
        assert total == len(expect), f"{deck.name}: {total} slides, notebook has {len(expect)}"
        leaves = page.evaluate(
            "() => document.querySelectorAll('.slides section:not(:has(section))').length")
        assert leaves == len(expect)

        state = page.evaluate(_SLIDE_STATE)
        assert [(s["h"], s["v"]) for s in state] == [(e.h, e.v) for e in expect]
        for s, e in zip(state, expect, strict=True):
            where = f"{deck.name} slide ({e.h},{e.v})"
            assert "$$" not in s["text"], f"{where}: raw $$ left: {s['text'][:200]!r}"
            assert s["n_rendered"] == s["n_jax"], f"{where}: {s['n_jax'] - s['n_rendered']} not typeset"
            if e.n_math:
                assert s["n_rendered"] >= 1, f"{where}: has math in the notebook, none rendered"
        errors = page.evaluate(
            "() => document.querySelectorAll('.MathJax_Error, .merror').length")
        assert errors == 0, f"{deck.name}: {errors} MathJax errors"
        assert "Math Processing Error" not in page.evaluate("() => document.body.innerText")
        assert page.evaluate(_BROKEN_IMAGES) == []

        # Screenshots (instant transitions so the picture is the slide, not a blur).
        page.evaluate("() => Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        _press(page, "Home")
        assert page.evaluate("() => Reveal.isFirstSlide()")
        page.screenshot(path=str(SCREENSHOTS / f"{deck.stem}-title.png"))
        math_slides = [e for e in expect if e.n_math]
        if math_slides:
            m = math_slides[0]
            page.evaluate(f"() => Reveal.slide({m.h}, {m.v}, 1000)")  # all fragments shown
            _wait_fitted(page)
            widths = page.evaluate(_CURRENT_MATH_SIZE)
            assert widths and min(widths) > 0, f"{deck.name}: math with zero width {widths}"
            page.screenshot(path=str(SCREENSHOTS / f"{deck.stem}-math.png"))

        # Keyboard navigation: space steps through every fragment and slide to the end.
        _press(page, "Home")
        visited = {(0, 0)}
        fit: dict[tuple[int, int], tuple[int, int, float]] = {(0, 0): tuple(page.evaluate(_OVERFLOW))}
        for _ in range(4 * len(expect) + 50):
            if page.evaluate("() => Reveal.isLastSlide() && !Reveal.availableFragments().next"):
                break
            _press(page, "Space")
            idx = page.evaluate("() => Reveal.getIndices()")
            visited.add((idx["h"], idx["v"] or 0))
            height, limit, zoom = page.evaluate(_OVERFLOW)
            key = (idx["h"], idx["v"] or 0)
            fit[key] = max(fit.get(key, (0, limit, 1.0)), (height, limit, zoom))  # tallest seen
        assert page.evaluate("() => Reveal.isLastSlide()"), f"{deck.name}: never reached the end"
        assert visited == {(e.h, e.v) for e in expect}
        too_tall = {k: v for k, v in fit.items() if v[0] > v[1] * (1 + OVERFLOW_TOLERANCE)}
        (SCREENSHOTS / f"{deck.stem}-overflow.txt").write_text("".join(
            f"slide {h + 1}.{v + 1} (h={h}, v={v}): content {hh}px "
            f"{'>' if (h, v) in too_tall else '<='} slide {lim}px at zoom {z:.3f}\n"
            for (h, v), (hh, lim, z) in sorted(fit.items()) if z < 1 or hh > lim))
        assert all(slides.MIN_ZOOM <= z <= 1 for _, _, z in fit.values()), fit
        if fit and min(z for _, _, z in fit.values()) < 1:  # the most shrunk slide, for review
            (h, v), _ = min(fit.items(), key=lambda kv: kv[1][2])
            page.evaluate(f"() => Reveal.slide({h}, {v}, 1000)")
            _wait_fitted(page)
            page.screenshot(path=str(SCREENSHOTS / f"{deck.stem}-fit.png"))
        assert not too_tall, (
            f"{deck.name}: {len(too_tall)} slide(s) taller than the slide even at zoom "
            f"{slides.MIN_ZOOM} (see {SCREENSHOTS / f'{deck.stem}-overflow.txt'}): "
            + ", ".join(f"{h + 1}.{v + 1} {hh}px" for (h, v), (hh, _, _) in sorted(too_tall.items())))
        bars = check_bars(page, deck, len(expect))
        _press(page, "Home")
        assert page.evaluate("() => Reveal.getIndices().h") == 0
        log.assert_clean()
        return {"state": state, "expect": expect, "page": page, "fit": fit, "bars": bars}
    finally:
        context.close()


@contextlib.contextmanager
def open_deck(browser: Any, url: str) -> Iterator[tuple[Any, Any]]:
    """``(context, page)`` with ``url`` loaded and fitted; on a clean exit, asserts that the
    page logged no error and loaded nothing from the network."""
    context, page, log = watch_page(browser)
    try:
        page.goto(url, wait_until="load")
        _wait_fitted(page, timeout=60_000)
        yield context, page
        log.assert_clean()
    finally:
        context.close()


# ----------------------------------------------------------------- fixtures and tests


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser_session() as browser:
        yield browser


@pytest.fixture(scope="module")
def fixture_deck(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("slides_browser")
    nb = make_fixture_notebook(base / "nb" / "99_slides_fixture.ipynb")
    out = base / "out"
    slides.build(out, [nb])
    return nb, out / "99_slides_fixture.html"


def test_fixture_deck_in_chromium(chromium: Any, fixture_deck: tuple[Path, Path]) -> None:
    nb, deck = fixture_deck
    result = check_deck(chromium, deck, nb)
    expect: list[ExpectedSlide] = result["expect"]
    assert len(expect) == EXPECT.n_slides
    assert tuple((e.h, e.v) for e in expect if e.n_math) == EXPECT.math_slides
    n_jax = sum(s["n_jax"] for s in result["state"])
    assert n_jax == EXPECT.n_display_math + EXPECT.n_inline_math
    zoomed = tuple(k for k, (_, _, z) in sorted(result["fit"].items()) if z < 1)
    assert zoomed == EXPECT.zoomed_slides  # nothing needs shrinking
    # title slide: "99 — Slides fixture", the course name (5), the file name; then the title
    # cell without its heading (on the title slide already) and its notes-only sentence
    # (3 + 4 + 2); "The transform" + the fragment (2 + 6)
    assert [r["words"] for r in result["bars"]][:3] == [9, 9, 8]


def test_folded_code_opens_and_the_slide_refits(chromium: Any, fixture_deck: tuple[Path, Path]) -> None:
    _, deck = fixture_deck
    h, v = FOLD_SLIDE  # the long code cell, folded, with its output
    with open_deck(chromium, deck.resolve().as_uri() + f"#/{h}/{v}") as (_, page):
        code = "() => Reveal.getCurrentSlide().querySelector('details.bncourse-fold .jp-InputArea')"
        assert page.evaluate(f"() => ({code})().getBoundingClientRect().height") == 0  # closed
        before = page.evaluate(_OVERFLOW)
        _toggle_fold(page, opens=True)  # the deck refits the slide after the click
        assert page.evaluate(f"() => ({code})().getBoundingClientRect().height") > 100  # 12 lines
        after = page.evaluate(_OVERFLOW)
        assert before[2] == 1 and after[0] > before[0]  # taller, and still within the slide ...
        assert after[0] <= after[1] * (1 + OVERFLOW_TOLERANCE) and after[2] >= slides.MIN_ZOOM
        _toggle_fold(page, opens=False)
        assert page.evaluate(_OVERFLOW) == before


def test_fixture_fragment_and_notes(chromium: Any, fixture_deck: tuple[Path, Path]) -> None:
    _, deck = fixture_deck
    with open_deck(chromium, deck.resolve().as_uri() + "#/2") as (_, page):
        assert page.evaluate("() => Reveal.getIndices().h") == 2
        fragment_visible = "() => Reveal.getCurrentSlide().querySelector('.fragment').classList.contains('visible')"
        assert not page.evaluate(fragment_visible)
        # The notes are the slide's (a direct child), so they show from its first step.
        assert page.evaluate("() => Reveal.getCurrentSlide().querySelectorAll(':scope > aside.notes').length") == 1
        assert page.evaluate("() => Reveal.getCurrentSlide().querySelectorAll('.fragment aside.notes').length") == 0
        assert page.evaluate("() => Reveal.getCurrentSlide().querySelector(':scope > aside.notes')"
                             ".textContent").strip() == NOTES_TEXT
        _press(page, "ArrowRight")  # first press shows the fragment, stays on the slide
        assert page.evaluate("() => Reveal.getIndices().h") == 2
        assert page.evaluate(fragment_visible)
        assert TITLE_NOTES_ONLY in page.evaluate("() => Reveal.getSlide(1, 0).querySelector('aside.notes').textContent")


def test_speaker_view_shows_the_notes_from_the_first_step(chromium: Any, fixture_deck: tuple[Path, Path]) -> None:
    _, deck = fixture_deck
    with open_deck(chromium, deck.resolve().as_uri() + "#/2") as (context, page):
        with context.expect_page() as popup:
            page.keyboard.press("s")
        speaker = popup.value
        notes = "() => (document.querySelector('.speaker-controls-notes .value') || {textContent: ''}).textContent.trim()"
        speaker.wait_for_function(f"() => ({notes})().length > 0", timeout=20_000)
        assert speaker.evaluate(notes) == NOTES_TEXT  # no "Speaker notes:", fragment not yet shown


def test_answers_hidden_until_the_next_slide(chromium: Any, fixture_deck: tuple[Path, Path]) -> None:
    _, deck = fixture_deck
    with open_deck(chromium, deck.resolve().as_uri() + "#/4/0") as (_, page):
        shown = "() => Reveal.getCurrentSlide().innerText"
        assert QUESTION in page.evaluate(shown)
        answers_seen = ("() => Reveal.getSlide(4, 1).checkVisibility({checkOpacity: true, checkVisibilityCSS: true})"
                        " && Reveal.getSlide(4, 1).classList.contains('present')")
        assert not page.evaluate(answers_seen)
        _press(page, "Space")
        assert page.evaluate("() => Reveal.getIndices().v") == 1
        assert ANSWER_TEXT in page.evaluate(shown)
        page.wait_for_function(answers_seen)  # once the slide transition is over


def _pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def test_pdf_export(fixture_deck: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.browser_helpers import require_browser

    require_browser()
    nb, _ = fixture_deck
    written = slides.build(tmp_path, [nb], pdf=True)
    pdf = tmp_path / "99_slides_fixture.pdf"
    assert pdf in written
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert _pdf_pages(pdf) == EXPECT.n_slides  # one page per slide of the live deck, fragments shown
    assert 'href="99_slides_fixture.pdf"' in (tmp_path / "index.html").read_text()


def test_course_pdf_has_the_live_decks_pages(chromium: Any, tmp_path: Path) -> None:
    """A course deck printed to PDF: one page per slide of the live deck, in the same order
    (a slide that overflowed in print would add a page)."""
    notebook = require_notebook(next((p for p in COURSE_NOTEBOOKS if p.stem.startswith("03_")), None))
    written = slides.build(tmp_path, [notebook], pdf=True)
    deck, pdf = written[0], written[1]
    with open_deck(chromium, deck.resolve().as_uri()) as (_, page):
        live = page.evaluate("() => Reveal.getTotalSlides()")
    assert _pdf_pages(pdf) == live == len(deck_slides(notebook))


@pytest.fixture(scope="module")
def course_decks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("course_slides")
    if COURSE_NOTEBOOKS:
        slides.build(out, COURSE_NOTEBOOKS)
    return out


@pytest.mark.parametrize(
    "notebook", notebook_params()
)
def test_course_deck_in_chromium(chromium: Any, course_decks: Path, notebook: Path | None) -> None:
    notebook = require_notebook(notebook)
    check_deck(chromium, course_decks / f"{notebook.stem}.html", notebook)


def test_navigation_controls_show_only_while_the_pointer_moves(chromium: Any, fixture_deck: tuple[Path, Path]) -> None:
    """The arrows and the slide number would cover the corner of a full slide: hidden unless
    the mouse moves (then shown for a moment), so a projected slide never has them on text."""
    _, deck = fixture_deck
    with open_deck(chromium, deck.resolve().as_uri() + "#/2") as (_, page):
        shown = f"() => Array.from(document.querySelectorAll('{NAV}')).map(e => getComputedStyle(e).visibility)"
        page.evaluate("() => document.querySelector('.reveal').classList.remove('bncourse-pointer')")
        assert len(page.evaluate(shown)) >= 2  # an arrow or two, and the slide number
        assert set(page.evaluate(shown)) == {"hidden"}
        page.mouse.move(600, 400)
        page.mouse.move(640, 420)
        page.wait_for_function(f"() => ({shown})().every(v => v === 'visible')", timeout=5_000)
        page.wait_for_function(f"() => ({shown})().every(v => v === 'hidden')", timeout=10_000)
