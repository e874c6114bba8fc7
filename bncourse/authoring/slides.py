"""Offline reveal.js lecture slides from the course notebooks (``bncourse slides``).

One deck per notebook, ``OUT/<notebook stem>.html``, plus ``OUT/index.html`` linking them.
A deck is nbconvert's reveal.js rendering of the notebook, driven by each cell's
``metadata.slideshow.slide_type``:

=============  ===============================================================
``slide``      starts a new horizontal slide
``subslide``   starts a new vertical slide under the current one
``fragment``   appears on the next key press, on the current slide
``-``          continues the current slide (or fragment)
``skip``       not shown
``notes``      speaker notes of the current slide (``S`` opens the speaker view)
=============  ===============================================================

and, before the notebook's first cell, a generated title slide (the notebook's ``# ``
heading and the course name).  So a deck has ``1 + n_slide + n_subslide`` slides, where the
first visible cell always starts a slide (nbconvert's rule) even if it is marked ``-``.

Cells tagged ``hide-output`` show their code without output; stderr streams (warnings)
and widget views are dropped everywhere.  Figures are embedded as ``data:`` URIs, LaTeX
(``$...$``, ``$$...$$``) is typeset by MathJax 2.

Fitting a slide on its ``SLIDE_WIDTH`` x ``SLIDE_HEIGHT`` (1280 x 800) page, in this order:

1. a code cell longer than :data:`CODE_LINES_SHOWN` lines is folded: the slide shows its
   first line and its line count in a closed ``<details>`` (click to open the highlighted
   code); its outputs are shown as usual.  The PDF shows the folded form;
2. a figure is at most :data:`IMAGE_MAX_HEIGHT` px tall (aspect ratio kept) and a text
   output at most :data:`TEXT_OUTPUT_MAX_HEIGHT` px (longer ones scroll);
3. a slide still taller than the page is zoomed out, in the browser when it is shown (and
   for every slide before printing), by the largest CSS zoom in [:data:`MIN_ZOOM`, 1] with
   which it fits; one that does not fit even at ``MIN_ZOOM`` stays at ``MIN_ZOOM`` and
   scrolls.  Such slides need a ``subslide`` split in the notebook.

None of this changes the slide count above.

Nothing is loaded from the network: MathJax comes from the ``jupyter-server-mathjax``
Python package and reveal.js from its npm package (pinned version and checksum below,
fetched once with ``npm pack`` into ``build/vendor/``); both are copied to ``OUT/assets/``
and every ``src``/``href``/``@import`` in a deck is a relative path.  With ``pdf=True``
each deck is also printed to ``OUT/<stem>.pdf`` by headless Chromium (``?print-pdf``).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import copy
import hashlib
import html
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bncourse import notebook_file
from bncourse.authoring.release import strip_solutions
from bncourse.authoring.slide_content import (
    MAX_SLIDE_WORDS,
    chunk_visible,
    exercise_card,
    prose_words,
    split_details,
    split_markdown,
    strip_notes_prefix,
)
from bncourse.errors import BNCourseError, NotebookError
from bncourse.notebook_file import cell_tags

__all__ = [
    "ASSETS_DIRNAME",
    "CODE_LINES_SHOWN",
    "COURSE_NAME",
    "FOLD_KEY",
    "IMAGE_MAX_HEIGHT",
    "MIN_ZOOM",
    "REVEAL_INTEGRITY",
    "REVEAL_VERSION",
    "TEXT_OUTPUT_MAX_HEIGHT",
    "Deck",
    "SlideAssetError",
    "build",
    "ensure_assets",
    "ensure_reveal",
    "fold_code",
    "mathjax_dir",
    "notebook_title",
    "prepare_notebook",
    "print_pdf",
    "render_deck",
    "vendor_dir",
    "write_index",
]

COURSE_NAME = "Batch Normalization — a notebook course"

#: reveal.js release used for the decks, and the sha512 of its npm tarball (from the
#: registry's ``dist.integrity``); the tarball is checked against it before unpacking.
REVEAL_VERSION = "5.1.0"
REVEAL_INTEGRITY = (
    "sha512-KDt7m0+xwKV6nAZt4CNPVFBf42sTKRQapg0bGGKB5PKO5XvChnMfwlZkybydHiQJ7p5+6LbHKRGrhXODdoNIaA=="
)
REVEAL_THEME = "white"
#: The files of reveal.js a deck uses (relative to the package root), copied to
#: ``OUT/assets/reveal.js/``; LICENSE travels with them (MIT).
REVEAL_FILES = (
    "LICENSE",
    "dist/reveal.js",
    "dist/reveal.css",
    f"dist/theme/{REVEAL_THEME}.css",
    "dist/theme/fonts/source-sans-pro",
    "plugin/notes/notes.js",
)
ASSETS_DIRNAME = "assets"
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 800

_TEMPLATES = Path(__file__).resolve().parent / "templates" / "slides"
_TEMPLATE_NAME = "bncourse_reveal"
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_HIDE_OUTPUT_TAG = "hide-output"
#: A code cell with more source lines than this shows only its first line on a slide, in a
#: closed ``<details>`` toggle ("code, N lines"); its outputs are shown as usual.
CODE_LINES_SHOWN = 4
#: Key in a prepared cell's metadata read by the deck template (see ``prepare_notebook``).
FOLD_KEY = "bncourse_fold"
#: Key in the metadata of a prepared exercise card (a markdown cell).
CARD_KEY = "bncourse_exercise_card"
#: Key in a prepared code cell's metadata: the slide shows its outputs, not its code.
HIDE_INPUT_KEY = "bncourse_hide_input"
#: Font size (slide px) of prose on a slide, and of code and text outputs.
BODY_PX, CODE_PX = 32, 22
#: Left and right padding (slide px) of a slide's content.
SIDE_PADDING = 28
#: Largest height (slide px, of ``SLIDE_HEIGHT``) of a figure; it is as wide as the slide
#: allows within that height, keeping its ratio.
IMAGE_MAX_HEIGHT = 600
#: Largest height (slide px) of a text output (stream, plain text); longer ones scroll.
TEXT_OUTPUT_MAX_HEIGHT = 420
#: Smallest zoom the deck applies to a slide whose content is still taller than the slide.
MIN_ZOOM = 0.9
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class SlideAssetError(BNCourseError):
    """reveal.js or MathJax cannot be found or fetched, or a deck cannot be printed."""


@dataclass(frozen=True)
class Deck:
    """One built deck: where its notebook and HTML are, its title and its slide count."""

    notebook: Path
    html: Path
    title: str
    n_slides: int
    pdf: Path | None = None


# --------------------------------------------------------------------------- assets


def vendor_dir() -> Path:
    """Where fetched third-party files live: ``$BNCOURSE_VENDOR_DIR``, else ``build/vendor``.

    ``build/`` is the one beside ``pyproject.toml`` in a source checkout, else the current
    directory's.  Never committed (``build/`` is ignored by git).
    """
    env = os.environ.get("BNCOURSE_VENDOR_DIR")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parent.parent
    base = root if (root / "pyproject.toml").is_file() else Path.cwd()
    return base / "build" / "vendor"


def _sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _unpack_npm_tarball(tarball: Path, dest: Path) -> None:
    """Unpack an npm tarball's ``package/`` folder to ``dest`` (refusing unsafe members)."""
    tmp = Path(tempfile.mkdtemp(prefix=".reveal-", dir=dest.parent))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                    raise SlideAssetError(f"{tarball.name}: refusing tar member {member.name!r}")
            tar.extractall(tmp)
        package = tmp / "package"
        if not (package / "dist" / "reveal.js").is_file():
            raise SlideAssetError(f"{tarball.name} has no package/dist/reveal.js")
        if dest.exists():
            shutil.rmtree(dest)
        package.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_reveal(vendor: Path | None = None, *, fetch: bool = True) -> Path:
    """The folder of reveal.js ``REVEAL_VERSION`` (holding ``dist/reveal.js``), fetched if needed.

    Looks in ``vendor/reveal.js-<version>`` (default :func:`vendor_dir`).  If it is not
    there and ``fetch`` is true, runs ``npm pack reveal.js@<version>`` (the npm registry
    is the only network access, and only this once), checks the tarball's sha512 against
    :data:`REVEAL_INTEGRITY` and unpacks it there.  Raises :class:`SlideAssetError` with
    what to do when npm is missing or fails, or the checksum differs.
    """
    vendor = vendor_dir() if vendor is None else Path(vendor)
    dest = vendor / f"reveal.js-{REVEAL_VERSION}"
    if (dest / "dist" / "reveal.js").is_file() and (dest / "LICENSE").is_file():
        return dest
    where = f"reveal.js {REVEAL_VERSION} is not in {dest}"
    if not fetch:
        raise SlideAssetError(f"{where}; run `make slides` (or bncourse.authoring.slides.ensure_assets()) "
                              "once with access to the npm registry")
    npm = shutil.which("npm")
    if npm is None:
        raise SlideAssetError(f"{where} and `npm` is not installed to fetch it: install Node.js "
                              f"and npm (`apt-get install -y npm`), or unpack the npm package "
                              f"reveal.js@{REVEAL_VERSION} there (its package/ folder)")
    vendor.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="npm-pack-", dir=vendor) as tmp:
        proc = subprocess.run(
            [npm, "pack", f"reveal.js@{REVEAL_VERSION}", "--pack-destination", tmp,
             "--silent", "--no-fund", "--no-audit"],
            cwd=tmp, capture_output=True, text=True, timeout=300, check=False,
        )
        tarballs = sorted(Path(tmp).glob("reveal.js-*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise SlideAssetError(f"{where} and `npm pack reveal.js@{REVEAL_VERSION}` failed "
                                  f"(exit {proc.returncode}): {' | '.join(tail)}")
        data = tarballs[0].read_bytes()
        if _sri_sha512(data) != REVEAL_INTEGRITY:
            raise SlideAssetError(f"npm gave a reveal.js {REVEAL_VERSION} tarball whose sha512 "
                                  f"is {_sri_sha512(data)}, expected {REVEAL_INTEGRITY}")
        _unpack_npm_tarball(tarballs[0], dest)
    return dest


def mathjax_dir() -> Path:
    """MathJax 2.7's folder (with ``MathJax.js``) as shipped by ``jupyter-server-mathjax``."""
    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise SlideAssetError("MathJax comes from the Python package jupyter-server-mathjax, which "
                              "is not installed: `pip install jupyter-server-mathjax` "
                              "(it is in bncourse's [dev] and [lab] extras)")
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    if not (static / "MathJax.js").is_file():
        raise SlideAssetError(f"jupyter-server-mathjax has no static/MathJax.js in {static}")
    return static


def ensure_assets(vendor: Path | None = None, *, fetch: bool = True) -> tuple[Path, Path]:
    """``(reveal_dir, mathjax_dir)``: both third-party folders, fetching reveal.js if needed."""
    return ensure_reveal(vendor, fetch=fetch), mathjax_dir()


def _copy_if_changed(src: Path, dst: Path) -> None:
    if src.is_dir():
        for child in src.iterdir():
            _copy_if_changed(child, dst / child.name)
        return
    st = src.stat()
    if dst.is_file() and dst.stat().st_size == st.st_size and dst.stat().st_mtime >= st.st_mtime:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def copy_assets(out: Path, reveal: Path, mathjax: Path) -> Path:
    """Copy the reveal.js files a deck uses and all of MathJax to ``out/assets``; return it."""
    assets = out / ASSETS_DIRNAME
    for rel in REVEAL_FILES:
        src = reveal / rel
        if not src.exists():
            raise SlideAssetError(f"reveal.js copy in {reveal} lacks {rel}")
        _copy_if_changed(src, assets / "reveal.js" / rel)
    _copy_if_changed(mathjax, assets / "mathjax")
    return assets


# --------------------------------------------------------------------------- notebooks


def notebook_title(nb: Any, path: Path) -> str:
    """The deck title: the first ``# `` heading of the first markdown cell.

    Falls back to ``nb.metadata.title`` and then to the file name.
    """
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = _HEADING.search(cell.source)
            if m:
                return m.group(1).strip()
            break
    title = nb.metadata.get("title")
    return str(title) if title else path.stem


def _slide_type(cell: Any) -> str:
    meta = cell.get("metadata", {}).get("slideshow", {})
    return str(meta.get("slide_type", "-")) if isinstance(meta, dict) else "-"


def _keep_output(output: Any) -> bool:
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return False
    return not (output.get("output_type") in ("display_data", "execute_result")
                and _WIDGET_MIME in output.get("data", {}))


def fold_code(source: str) -> dict[str, Any] | None:
    """How a code cell's source is folded on a slide, or ``None`` when it is shown in full.

    Sources of at most :data:`CODE_LINES_SHOWN` lines (trailing blank lines not counted)
    are shown; longer ones get ``{"lines": n, "first": <first non-blank line>}``, which the
    template renders as a closed ``<details>`` whose summary is that first line.
    """
    lines = source.rstrip().splitlines()
    if len(lines) <= CODE_LINES_SHOWN:
        return None
    first = next(line for line in lines if line.strip())
    return {"lines": len(lines), "first": first.rstrip()}


def _widget_images(nb: Any, cell: Any) -> list[Any]:
    """The figures a widget cell showed when the notebook was executed: the ``image/png``
    outputs held by the Output widgets under the cell's widget views (in the notebook's saved
    widget state), i.e. the widget's default state."""
    state = (nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
             .get("state", {}))
    if not isinstance(state, dict):
        return []
    images: list[Any] = []
    seen: set[str] = set()

    def visit(model_id: str) -> None:
        if model_id in seen or model_id not in state:
            return
        seen.add(model_id)
        model = state[model_id]
        inner = model.get("state", {}) if isinstance(model, dict) else {}
        if model.get("model_name") == "OutputModel":
            images.extend(o for o in inner.get("outputs", []) if "image/png" in o.get("data", {}))
        for value in inner.values():
            refs = value if isinstance(value, list) else [value]
            for ref in refs:
                if isinstance(ref, str) and ref.startswith("IPY_MODEL_"):
                    visit(ref[len("IPY_MODEL_"):])

    for output in cell.get("outputs", []):
        view = output.get("data", {}).get(_WIDGET_MIME)
        if isinstance(view, dict) and isinstance(view.get("model_id"), str):
            visit(view["model_id"])
    return images


def _output_text(output: Any) -> str:
    """The text of a stream or ``text/plain`` output."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _has_image(cell: Any) -> bool:
    return any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {}))


def _with_type(cell: Any, slide_type: str) -> Any:
    cell.metadata["slideshow"] = {**cell.metadata.get("slideshow", {}), "slide_type": slide_type}
    return cell


def _slide_cells(nb: Any) -> list[Any]:
    """The notebook's cells as the deck shows them (see :func:`prepare_notebook`)."""
    import nbformat

    out: list[Any] = []
    pending_start: str | None = None  # the slide start of a dropped cell, passed on

    def emit(cell: Any) -> None:
        nonlocal pending_start
        kind = _slide_type(cell)
        if pending_start and kind not in ("skip", "notes"):
            if kind not in ("slide", "subslide"):
                _with_type(cell, pending_start)
            pending_start = None
        out.append(cell)

    def notes(text: str) -> None:
        if text.strip():
            out.append(nbformat.v4.new_markdown_cell(text, metadata={"slideshow": {"slide_type": "notes"}}))

    for cell in nb.cells:
        tags = cell_tags(cell)
        kind = _slide_type(cell)
        if "instructor" in tags:
            continue
        if cell.cell_type == "markdown":
            if kind == "notes":
                cell.source = strip_notes_prefix(cell.source)
                out.append(cell)
                continue
            if kind == "skip":
                out.append(cell)
                continue
            main, answers = split_details(cell.source)
            override = cell.metadata.get("slide")
            shown = split_markdown(main, override if isinstance(override, str) else None)
            parts = chunk_visible(shown.visible)
            cell.source = parts[0]
            emit(cell)
            notes(shown.notes)
            heading = None  # the heading a continued slide continues: the last one before it
            for before, part in itertools.pairwise(parts):
                heading = next((line for line in reversed(before.splitlines())
                                if line.lstrip().startswith("#")), heading)
                if heading and not part.lstrip().startswith("#"):
                    part = f"{heading.rstrip()} (continued)\n\n{part}"
                emit(nbformat.v4.new_markdown_cell(part, metadata={"slideshow": {"slide_type": "subslide"}}))
            overrides = cell.metadata.get("slide_answers")
            for k, (summary, answer) in enumerate(answers):
                override = overrides[k] if isinstance(overrides, list) and k < len(overrides) else overrides
                text = split_markdown(answer, override if isinstance(override, str) else None)
                for n, part in enumerate(chunk_visible(text.visible)):
                    title = f"### {summary}" + (" (continued)" if n else "")
                    emit(nbformat.v4.new_markdown_cell(f"{title}\n\n{part}",
                                                       metadata={"slideshow": {"slide_type": "subslide"}}))
                notes(text.notes)
            continue
        if cell.cell_type != "code":
            emit(cell)
            continue
        if "check" in tags or kind == "skip":  # a check's verdict on the instructor's solution
            if kind in ("slide", "subslide"):
                pending_start = kind
            continue
        if "exercise" in tags:  # one card naming it, never its body (stub or solution)
            card = exercise_card(strip_solutions(cell.source))
            if card is None:
                continue
            previous = next((c for c in reversed(out) if _slide_type(c) not in ("skip", "notes")), None)
            name = card.split("<code>", 1)[1].split("(", 1)[0]
            joins = previous is not None and previous.cell_type == "markdown" and f"`{name}`" in previous.source
            emit(nbformat.v4.new_markdown_cell(card, metadata={
                "slideshow": {"slide_type": "-" if joins and kind in ("slide", "subslide") else kind},
                CARD_KEY: {"joins_its_lead": joins}}))
            continue
        widget_images = _widget_images(nb, cell)
        if _HIDE_OUTPUT_TAG in tags:
            cell.outputs = []
        else:
            cell.outputs = [o for o in cell.outputs if _keep_output(o)]
        if widget_images:  # its default state, still; the notebook has the sliders
            cell.outputs = copy.deepcopy(widget_images)
        printed = ""
        if _has_image(cell):  # the figure is the slide: its code stays in the notebook, its
            cell.metadata[HIDE_INPUT_KEY] = True  # printed numbers go to the speaker notes
            printed = "".join(_output_text(o) for o in cell.outputs if "image/png" not in o.get("data", {}))
            cell.outputs = [o for o in cell.outputs if any(k.startswith("image/") for k in o.get("data", {}))]
        else:
            fold = fold_code(cell.source)
            if fold is not None:
                cell.metadata[FOLD_KEY] = fold
        emit(cell)
        if printed.strip():
            notes("```\n" + printed.rstrip() + "\n```")
        if widget_images:
            out.append(nbformat.v4.new_markdown_cell(
                '<p class="bncourse-widget-note">Interactive in the notebook: move the sliders.</p>',
                metadata={"slideshow": {"slide_type": "-"}}))
    return _figures_on_their_own(out)


#: Words of prose a slide may hold before a figure, and after it, on the same slide.
FIGURE_LEAD_WORDS, FIGURE_TAIL_WORDS = 25, 12
#: The room a display equation takes on a slide, counted in words of prose.
EQUATION_WORDS = 15


def _figures_on_their_own(cells: list[Any]) -> list[Any]:
    """A figure, an exercise card or code with its output is a slide's one idea:
    such a cell starts a new slide when the slide already holds one or more than
    :data:`FIGURE_LEAD_WORDS` words (:data:`MAX_SLIDE_WORDS` for a card under the text that
    names its exercise), and markdown after it (same slide) starts one when it
    holds more than :data:`FIGURE_TAIL_WORDS` words."""
    words, figure = 0, False
    for cell in cells:
        kind = _slide_type(cell)
        if kind in ("skip", "notes"):
            continue
        if kind in ("slide", "subslide"):
            words, figure = 0, False
        n = 0  # the room the cell takes, in words: a display equation is as tall as 2 lines
        if cell.cell_type == "markdown":
            n = prose_words(cell.source) + EQUATION_WORDS * (cell.source.count("$$") // 2)
        image = (cell.cell_type == "code" and _has_image(cell)) or CARD_KEY in cell.metadata
        code = cell.cell_type == "code" and not image and bool(cell.get("outputs"))
        idea = image or code
        lead = FIGURE_LEAD_WORDS
        if cell.metadata.get(CARD_KEY, {}).get("joins_its_lead"):
            lead = MAX_SLIDE_WORDS  # a card stays under the text that introduces it
        if kind not in ("slide", "subslide") and (
                (idea and (figure or words > lead))
                or (figure and n > FIGURE_TAIL_WORDS)):
            _with_type(cell, "subslide")
            words, figure = 0, False
        words += n
        figure = figure or idea
    return cells


def _drop_repeated_title(cells: list[Any], title: str) -> None:
    """The generated title slide shows the notebook's ``# `` heading: the first slide of its
    own cells does not repeat it."""
    first = next((c for c in cells if _slide_type(c) not in ("skip", "notes")), None)
    if first is None or first.cell_type != "markdown":
        return
    lines = first.source.splitlines()
    if lines and (m := _HEADING.match(lines[0])) and m.group(1).strip() == title:
        first.source = "\n".join(lines[1:]).strip()


def prepare_notebook(nb: Any, path: Path) -> Any:
    """A copy of ``nb`` ready for the slides exporter.

    Adds the title slide (a markdown cell, slide_type ``slide``) in front, makes the first
    visible cell start a slide (as nbconvert does for a notebook on its own) and turns every
    cell into what the deck shows of it (:mod:`bncourse.authoring.slide_content`):

    - a markdown cell shows its ``metadata.slide`` text, or else its headings, display
      equations, tables, list items and first sentence; the cell's full text becomes a speaker
      note; its ``<details>`` answers become the next slide;
    - an exercise becomes one card with its signature and what it asks (never its body);
      check cells and cells tagged ``instructor`` or of slide type ``skip`` are dropped;
    - a code cell with a figure shows the figure and not its code; a widget shows the figures
      of its default state; other code longer than :data:`CODE_LINES_SHOWN` lines is folded
      (``metadata[FOLD_KEY]``, see :func:`fold_code`); stderr streams, widget views and the
      outputs of cells tagged ``hide-output`` are dropped.

    The notebook itself is not modified.
    """
    import nbformat

    nb = copy.deepcopy(nb)
    title = notebook_title(nb, path)
    nb.metadata["title"] = title
    nb.cells = _slide_cells(nb)
    nb.metadata.pop("widgets", None)
    _drop_repeated_title(nb.cells, title)
    # nbconvert starts a slide at the first visible cell whatever its type; keep that rule
    # for the notebook's own first visible cell now that the title slide comes before it.
    for cell in nb.cells:
        if _slide_type(cell) not in ("skip", "notes"):
            _with_type(cell, "slide")
            break
    title_cell = nbformat.v4.new_markdown_cell(
        '<div class="bncourse-title-slide">\n'
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="bncourse-course">{html.escape(COURSE_NAME)}</p>\n'
        f'<p class="bncourse-source">{html.escape(path.name)}</p>\n'
        "</div>",
        metadata={"slideshow": {"slide_type": "slide"}, "tags": ["bncourse-title"]},
    )
    nb.cells.insert(0, title_cell)
    return nb


def _count_slides(nb: Any) -> int:
    """Slides in a prepared notebook: first visible cell + later slide/subslide cells."""
    types = [_slide_type(c) for c in nb.cells]
    visible = [i for i, t in enumerate(types) if t not in ("skip", "notes")]
    if not visible:
        return 0
    return 1 + sum(t in ("slide", "subslide") for t in types[visible[0] + 1:])


def _exporter() -> Any:
    from nbconvert.exporters import SlidesExporter

    return SlidesExporter(
        extra_template_basedirs=[str(_TEMPLATES)],
        template_name=_TEMPLATE_NAME,
        reveal_url_prefix=f"{ASSETS_DIRNAME}/reveal.js",
        reveal_theme=REVEAL_THEME,
        reveal_transition="slide",
        reveal_width=str(SLIDE_WIDTH),
        reveal_height=str(SLIDE_HEIGHT),
        mathjax_url=f"{ASSETS_DIRNAME}/mathjax/MathJax.js",
        embed_images=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )


def render_deck(notebook: Path, out: Path) -> Deck:
    """Write ``out/<stem>.html``, the deck of one notebook; assets are expected in ``out/assets``."""
    notebook = Path(notebook)
    nb = prepare_notebook(notebook_file.read(notebook), notebook)
    resources = {
        "metadata": {"name": notebook.stem, "path": str(notebook.parent)},
        "bncourse": {"assets": ASSETS_DIRNAME, "fold_key": FOLD_KEY, "min_zoom": MIN_ZOOM,
                     "hide_input_key": HIDE_INPUT_KEY, "body_px": BODY_PX, "code_px": CODE_PX,
                     "side_padding": SIDE_PADDING, "image_max_height": IMAGE_MAX_HEIGHT,
                     "text_output_max_height": TEXT_OUTPUT_MAX_HEIGHT},
    }
    body, _ = _exporter().from_notebook_node(nb, resources=resources)
    target = out / f"{notebook.stem}.html"
    target.write_text(body, encoding="utf-8")
    return Deck(notebook=notebook, html=target, title=str(nb.metadata["title"]),
                n_slides=_count_slides(nb))


def write_index(out: Path, decks: list[Deck]) -> Path:
    """Write ``out/index.html``: one line per deck (title, slide count, PDF if any)."""
    items = []
    for d in decks:
        pdf = f' · <a href="{html.escape(d.pdf.name)}">PDF</a>' if d.pdf else ""
        items.append(f'<li><a href="{html.escape(d.html.name)}">{html.escape(d.title)}</a> '
                     f'<span class="n">({d.n_slides} slides)</span>{pdf}</li>')
    body = "\n".join(items) if items else "<li>No notebooks found.</li>"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(COURSE_NAME)}: slides</title>
<style>
body {{ font-family: sans-serif; max-width: 46em; margin: 3em auto; line-height: 1.5; }}
.n {{ color: #777; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>{html.escape(COURSE_NAME)}</h1>
<p>Lecture slides, one deck per notebook. Keys: arrows or space to move, <kbd>S</kbd> speaker
notes, <kbd>Esc</kbd> overview. Everything here works offline.</p>
<ol>
{body}
</ol>
</body>
</html>
"""
    target = out / "index.html"
    target.write_text(page, encoding="utf-8")
    return target


# --------------------------------------------------------------------------- PDF


def print_pdf(deck: Path, target: Path, *, timeout_s: float = 120.0) -> Path:
    """Print a deck to PDF with headless Chromium (reveal.js ``?print-pdf`` view).

    Waits until MathJax has typeset and reveal.js has laid out the pages; any request that
    would leave the machine is aborted and makes this fail.  Playwright's sync API cannot
    run inside an asyncio loop (Jupyter, another playwright session), so there it runs in
    a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _print_pdf(deck, target, timeout_s)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print_pdf, deck, target, timeout_s).result()


def _print_pdf(deck: Path, target: Path, timeout_s: float) -> Path:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise SlideAssetError("`bncourse slides --pdf` needs the playwright Python package "
                              "(`pip install playwright`; no browser download needed) and "
                              "Debian's chromium") from exc
    from bncourse.authoring import browser

    blocked: list[str] = []
    with sync_playwright() as pw:
        chromium = browser.launch_chromium(pw)
        try:
            context = chromium.new_context(viewport={"width": SLIDE_WIDTH, "height": SLIDE_HEIGHT})
            browser.block_network(context, blocked)
            page = context.new_page()
            page.goto(deck.resolve().as_uri() + "?print-pdf", wait_until="load")
            try:
                page.wait_for_function(
                    "() => window.bncourseSlides && window.bncourseSlides.mathDone "
                    "&& window.bncourseSlides.revealReady && window.bncourseSlides.pdfReady",
                    timeout=timeout_s * 1000,
                )
            except Exception as exc:
                raise SlideAssetError(f"{deck.name}: reveal.js/MathJax did not finish in "
                                      f"{timeout_s:.0f} s in print view") from exc
            page.pdf(path=str(target), prefer_css_page_size=True, print_background=True)
        finally:
            chromium.close()
    if blocked:
        raise SlideAssetError(f"{deck.name} tried to load from the network: {blocked[:3]}")
    return target


# --------------------------------------------------------------------------- build


def build(out: Path, notebooks: list[Path] | None = None, pdf: bool = False) -> list[Path]:
    """Build one offline deck per notebook in ``out`` and an index page.

    Args:
        out: output folder (created); decks are ``out/<stem>.html``, assets ``out/assets/``.
        notebooks: notebooks to convert; ``None`` means ``notebooks/*.ipynb`` (cwd-relative).
        pdf: also print each deck to ``out/<stem>.pdf`` with headless Chromium.

    Returns the paths written: each deck (and its PDF), then ``out/index.html``.
    """
    out = Path(out)
    if notebooks is None:
        notebooks = sorted(Path("notebooks").glob("*.ipynb"))
    paths = [Path(p) for p in notebooks]
    stems: dict[str, Path] = {}
    for p in paths:
        if p.suffix != ".ipynb":
            raise NotebookError(f"{p}: expected a .ipynb notebook")
        if p.stem in stems:
            raise NotebookError(f"two notebooks would write {p.stem}.html: {stems[p.stem]} and {p}")
        stems[p.stem] = p
    reveal, mathjax = ensure_assets()
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out, reveal, mathjax)
    decks = [render_deck(p, out) for p in paths]
    written: list[Path] = []
    for i, d in enumerate(decks):
        written.append(d.html)
        if pdf:
            target = print_pdf(d.html, out / f"{d.html.stem}.pdf")
            decks[i] = Deck(d.notebook, d.html, d.title, d.n_slides, target)
            written.append(target)
    written.append(write_index(out, decks))
    (out / ASSETS_DIRNAME / "README.txt").write_text(
        f"Third-party files for the decks, copied by `bncourse slides`:\n"
        f"reveal.js/  reveal.js {REVEAL_VERSION} (MIT, see reveal.js/LICENSE), npm package reveal.js\n"
        f"mathjax/    MathJax 2.7 (Apache-2.0, see mathjax/LICENSE), from jupyter-server-mathjax\n",
        encoding="utf-8",
    )
    return written

