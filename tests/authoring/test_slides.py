"""bncourse.authoring.slides without a browser: deck structure, offline references, assets, errors.

The offline check parses every deck (and every stylesheet it pulls in) and fails on any
reference a browser would load from outside the output folder: ``<script src>``,
``<link href>``, ``<img src>``, ``@import``, CSS ``url()``, module imports, ...
Plain ``<a href>`` links are not loads and may point anywhere.
"""

from __future__ import annotations

import copy
import io
import re
import sys
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from bs4 import BeautifulSoup

from bncourse.authoring import slides
from bncourse.cli import main
from bncourse.errors import NotebookError
from tests.paths import COURSE_NOTEBOOKS, notebook_params, require_notebook
from tests.slides_fixture import (
    ANSWER_TEXT,
    CHECK_OUTPUT,
    EXERCISE_ID,
    EXPECT,
    HIDDEN_OUTPUT_TEXT,
    LONG_CODE,
    LONG_CODE_FIRST_LINE,
    LONG_CODE_OUTPUT,
    NOTES_PREFIX,
    NOTES_TEXT,
    QUESTION,
    SHOWN_OUTPUT_TEXT,
    SKIPPED_TEXT,
    SOLUTION_LINE,
    STDERR_TEXT,
    TITLE,
    TITLE_NOTES_ONLY,
    count_math,
    deck_slides,
    expected_slides,
    make_fixture_notebook,
)

pytestmark = pytest.mark.slow  # builds reveal.js decks: not in `make test-fast`

# ----------------------------------------------------------------- offline scanner

_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+?)['"]?\s*\)""", re.IGNORECASE)
_JS_IMPORT = re.compile(r"""(?:\bimport\s*\(|\bfrom)\s*['"]([^'"]+)['"]""")
_LOAD_ATTRS = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "source": ("src", "srcset"),
    "video": ("src", "poster"), "audio": ("src",), "iframe": ("src",), "embed": ("src",),
    "object": ("data",), "input": ("src",), "track": ("src",), "base": ("href",),
}


def _css_refs(css: str) -> list[str]:
    css = _CSS_COMMENT.sub("", css)
    return _CSS_IMPORT.findall(css) + _CSS_URL.findall(css)


def loaded_references(page: Path) -> list[tuple[str, str]]:
    """``(where, reference)`` for everything a browser would fetch for this page.

    Follows relative stylesheets (``<link>`` and ``@import``) recursively.
    """
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    refs: list[tuple[str, str]] = []
    for tag, attrs in _LOAD_ATTRS.items():
        for el in soup.find_all(tag):
            for attr in attrs:
                value = el.get(attr)
                if not value:
                    continue
                values = [v.strip().split()[0] for v in value.split(",")] if attr == "srcset" else [value]
                refs += [(f"<{tag} {attr}>", v) for v in values]
    for el in soup.find_all(style=True):
        refs += [("style attribute", r) for r in _css_refs(el["style"])]
    for el in soup.find_all("style"):
        refs += [("<style>", r) for r in _css_refs(el.get_text())]
    for el in soup.find_all("script", src=False):
        refs += [("inline <script> import", r) for r in _JS_IMPORT.findall(el.get_text())]
    for el in soup.find_all("meta", attrs={"http-equiv": re.compile("refresh", re.I)}):
        refs.append(("<meta refresh>", el.get("content", "")))

    # Follow local stylesheets.
    seen: set[Path] = set()
    queue = [(page.parent / unquote(urlsplit(r).path)) for w, r in refs
             if w == "<link href>" and _is_relative(r) and r.split("?")[0].endswith(".css")]
    while queue:
        css_file = queue.pop().resolve()
        if css_file in seen or not css_file.is_file():
            continue
        seen.add(css_file)
        for r in _css_refs(css_file.read_text(encoding="utf-8", errors="replace")):
            refs.append((f"{css_file.name}", r))
            if _is_relative(r) and urlsplit(r).path.endswith(".css"):
                queue.append(css_file.parent / unquote(urlsplit(r).path))
    return refs


def _is_relative(ref: str) -> bool:
    parts = urlsplit(ref)
    return not parts.scheme and not ref.startswith("//") and not ref.startswith("/")


def offline_problems(page: Path) -> list[str]:
    """References that are not relative paths to files inside the output folder."""
    problems = []
    for where, ref in loaded_references(page):
        scheme = urlsplit(ref).scheme.lower()
        if scheme in ("data", "about") or ref.startswith("#"):
            continue
        if scheme in ("http", "https") or ref.startswith("//"):
            problems.append(f"{page.name}: {where} loads from the network: {ref}")
        elif not _is_relative(ref):
            problems.append(f"{page.name}: {where} is not relative: {ref}")
    # Relative references from the page itself must exist on disk.
    for where, ref in loaded_references(page):
        if where.startswith("<") and _is_relative(ref) and not ref.startswith("#") and ref:
            target = page.parent / unquote(urlsplit(ref).path)
            if not target.exists():
                problems.append(f"{page.name}: {where} points to a missing file: {ref}")
    return problems


def test_offline_scanner_catches_network_loads(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("/* https://in.a.comment */ @import url('b.css');")
    (tmp_path / "b.css").write_text("@font-face { src: url(https://fonts.example/x.woff) }")
    page = tmp_path / "p.html"
    page.write_text(
        '<html><head><link rel="stylesheet" href="a.css">'
        '<script src="https://cdn.example/reveal.js"></script>'
        '<style>@import "//cdn.example/theme.css";</style>'
        "<script type=\"module\">import m from 'https://cdn.example/m.js';</script></head>"
        '<body><a href="https://arxiv.org/abs/1502.03167">paper</a>'
        '<img src="missing.png"><img src="data:image/png;base64,AAAA"></body></html>'
    )
    problems = offline_problems(page)
    joined = "\n".join(problems)
    assert "cdn.example/reveal.js" in joined
    assert "//cdn.example/theme.css" in joined
    assert "fonts.example/x.woff" in joined  # found by following a.css -> b.css
    assert "cdn.example/m.js" in joined
    assert "missing.png" in joined
    assert "arxiv" not in joined and "in.a.comment" not in joined
    assert len(problems) == 5


# ----------------------------------------------------------------- oracle


def test_count_math_oracle() -> None:
    assert count_math("$$a$$ and $b$, `$c$`, \\$5 and $$\nd\n$$") == 3
    assert count_math("```\n$x$\n```\nprice 5$ or 6$") == 0


# ----------------------------------------------------------------- fixture deck


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    base = tmp_path_factory.mktemp("slides")
    nb = make_fixture_notebook(base / "nb" / "99_slides_fixture.ipynb")
    out = base / "out"
    written = slides.build(out, [nb])
    return nb, out, written


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _leaf_sections(soup: BeautifulSoup) -> list:
    return [s for s in soup.select(".slides section") if s.find("section") is None]


def test_build_writes_deck_and_index(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, written = built
    assert written == [out / "99_slides_fixture.html", out / "index.html"]
    index = _soup(out / "index.html")
    links = [a["href"] for a in index.find_all("a")]
    assert links == ["99_slides_fixture.html"]
    assert TITLE in index.get_text()
    assert f"({EXPECT.n_slides} slides)" in index.get_text()


def test_deck_structure_follows_slideshow_metadata(built: tuple[Path, Path, list[Path]]) -> None:
    nb, out, _ = built
    soup = _soup(out / "99_slides_fixture.html")
    horizontal = soup.select(".slides > section")
    leaves = _leaf_sections(soup)
    assert len(horizontal) == EXPECT.n_horizontal
    assert len(leaves) == EXPECT.n_slides == len(deck_slides(nb))
    assert [len(h.find_all("section")) for h in horizontal] == [1, 1, 2, 5, 2]
    assert len(soup.select(".slides .fragment")) == EXPECT.n_fragments
    notes = soup.select(".slides aside.notes")
    assert len(notes) == EXPECT.n_notes
    assert any(n.get_text().strip() == NOTES_TEXT for n in notes)  # "Speaker notes:" prefix gone
    assert not any(NOTES_PREFIX.strip() in n.get_text() for n in notes)
    # Title slide first: notebook title + course name.
    title = leaves[0].get_text(" ", strip=True)
    assert TITLE in title and slides.COURSE_NAME in title
    assert soup.title is not None and TITLE in soup.title.get_text()


def _visible_text(section: Any) -> str:
    section = copy.copy(section)
    for aside in section.select("aside.notes"):
        aside.decompose()
    return section.get_text(" ", strip=True)


def test_slides_show_a_few_words_and_the_notes_the_rest(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    leaves = _leaf_sections(_soup(out / "99_slides_fixture.html"))
    first = leaves[1]
    assert "A tiny deck." in _visible_text(first) and TITLE_NOTES_ONLY not in _visible_text(first)
    assert TITLE not in _visible_text(first)  # the title slide before it shows it already
    assert TITLE_NOTES_ONLY in first.select_one("aside.notes").get_text()  # the whole cell, for the lecturer
    assert "- one" not in _visible_text(first) and "one" in _visible_text(first)  # the bullets stay


def test_exercises_are_cards_and_checks_are_gone(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    html = (out / "99_slides_fixture.html").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in html and "END SOLUTION" not in html
    assert SOLUTION_LINE not in html and "NotImplementedError" not in html  # no body at all
    assert CHECK_OUTPUT not in html and f'check("{EXERCISE_ID}"' not in html
    cards = _soup(out / "99_slides_fixture.html").select(".bncourse-exercise")
    assert len(cards) == 1
    assert f"{EXERCISE_ID}(x)" in cards[0].get_text() and "Twice x." in cards[0].get_text()
    section = cards[0].find_parent("section")
    assert f"Exercise {EXERCISE_ID}" in _visible_text(section)  # on the slide that names it


def test_answers_are_on_the_next_slide(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    soup = _soup(out / "99_slides_fixture.html")
    assert [d for d in soup.select(".slides details") if "bncourse-fold" not in d.get("class", [])] == []
    leaves = _leaf_sections(soup)
    asked = next(i for i, s in enumerate(leaves) if QUESTION in _visible_text(s))
    assert ANSWER_TEXT not in leaves[asked].get_text()
    assert ANSWER_TEXT in _visible_text(leaves[asked + 1]) and "Answers" in _visible_text(leaves[asked + 1])
    assert "Not by m - 1." in leaves[asked + 1].select_one("aside.notes").get_text()


def test_deck_content_rules(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    html = (out / "99_slides_fixture.html").read_text(encoding="utf-8")
    soup = _soup(out / "99_slides_fixture.html")
    text = soup.select_one(".slides").get_text()
    assert SKIPPED_TEXT not in html  # skip cells are not rendered at all
    assert "import numpy as np" not in text  # skipped code cell
    assert "print('hidden')" in text or "print(&#39;hidden&#39;)" in html  # hide-output: code shown
    assert HIDDEN_OUTPUT_TEXT not in html  # ... output not
    assert SHOWN_OUTPUT_TEXT in text
    assert STDERR_TEXT not in html  # stderr noise dropped
    assert "plot_curves(history)" not in text  # a figure's code stays in the notebook
    imgs = soup.select(".slides img")
    assert len(imgs) == EXPECT.n_images
    assert all(i["src"].startswith("data:image/png;base64,") for i in imgs)
    # Math is left to MathJax, untouched.
    assert "$$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}}$$" in html
    assert "$\\gamma$" in html


def test_deck_loads_nothing_from_the_network(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    refs = [r for _, r in loaded_references(out / "99_slides_fixture.html")]
    # the scanner sees the real loads (so an empty problem list means something)
    assert "assets/reveal.js/dist/reveal.js" in refs
    assert any(r.startswith("assets/mathjax/MathJax.js") for r in refs)
    assert "./fonts/source-sans-pro/source-sans-pro.css" in refs  # followed theme @import
    assert offline_problems(out / "99_slides_fixture.html") == []
    assert offline_problems(out / "index.html") == []


def test_assets_are_copied_with_licenses(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    assets = out / slides.ASSETS_DIRNAME
    assert "MIT" in (assets / "reveal.js" / "LICENSE").read_text()
    assert "Apache License" in (assets / "mathjax" / "LICENSE").read_text()
    for rel in slides.REVEAL_FILES:
        assert (assets / "reveal.js" / rel).exists(), rel
    assert (assets / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (assets / "mathjax" / "fonts" / "HTML-CSS" / "STIX-Web").is_dir()
    assert f"reveal.js {slides.REVEAL_VERSION}" in (assets / "README.txt").read_text()


def test_prepare_does_not_modify_the_notebook(built: tuple[Path, Path, list[Path]]) -> None:
    nb_path, _, _ = built
    nb = nbformat.read(nb_path, as_version=4)
    before = nbformat.writes(nb)
    prepared = slides.prepare_notebook(nb, nb_path)
    assert nbformat.writes(nb) == before
    assert nbformat.writes(prepared) != before
    assert slides.notebook_title(nb, nb_path) == TITLE


# ----------------------------------------------------------------- fitting on the slide


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", None),
        ("\n".join(f"x{i} = {i}" for i in range(slides.CODE_LINES_SHOWN)), None),
        ("a = 1\nb = 2\n" + "\n" * 20, None),  # trailing blank lines do not count
        ("\n".join(f"x{i} = {i}" for i in range(slides.CODE_LINES_SHOWN + 1)),
         {"lines": slides.CODE_LINES_SHOWN + 1, "first": "x0 = 0"}),
        ("\n\n" + "def f():  \n" + "    pass\n" * 9, {"lines": 12, "first": "def f():"}),
    ],
    ids=["empty", "at-limit", "trailing-blank", "one-over", "leading-blank"],
)
def test_fold_code_rule(source: str, expected: dict | None) -> None:
    assert slides.fold_code(source) == expected


def test_long_code_is_folded_short_code_is_shown(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    soup = _soup(out / "99_slides_fixture.html")
    folds = soup.select(".slides details.bncourse-fold")
    assert len(folds) == EXPECT.n_folded
    fold = folds[0]
    assert fold.get("open") is None  # closed until clicked
    summary = fold.find("summary").get_text(" ", strip=True)
    assert LONG_CODE_FIRST_LINE in summary and f"{len(LONG_CODE.splitlines())} lines" in summary
    # the whole code is still there, highlighted, inside the toggle; its output outside it
    code = fold.select_one(".jp-InputArea").get_text()
    assert all(line.strip() in code for line in LONG_CODE.splitlines())
    cell = fold.find_parent(class_="jp-CodeCell")
    assert LONG_CODE_OUTPUT in cell.select_one(".jp-Cell-outputWrapper").get_text()
    assert LONG_CODE_OUTPUT not in fold.get_text()
    # short code cells (including the hide-output one) are shown as they are; a figure's
    # code is not shown at all
    cells = [c for c in soup.select(".slides .jp-CodeCell") if c.find("details") is None]
    shown = [c for c in cells if c.select_one(".jp-InputArea pre")]
    assert len(shown) == 2 and any("print('hidden')" in c.get_text() for c in shown)
    assert [c.select_one("img") is not None for c in cells if c not in shown] == [True]


def test_prepared_cells_carry_the_fold(tmp_path: Path) -> None:
    nb = _nb(tmp_path / "01_f.ipynb", [("code", LONG_CODE, "slide"), ("code", "1 + 1", "-")])
    prepared = slides.prepare_notebook(nbformat.read(nb, as_version=4), nb)
    folds = [c.metadata.get(slides.FOLD_KEY) for c in prepared.cells if c.cell_type == "code"]
    assert folds == [{"lines": len(LONG_CODE.splitlines()), "first": LONG_CODE_FIRST_LINE}, None]


def _css_rules(soup: BeautifulSoup) -> dict[str, str]:
    css = _CSS_COMMENT.sub("", "\n".join(el.get_text() for el in soup.find_all("style")))
    return {sel.strip(): body for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)}


def test_figures_and_text_outputs_are_bounded(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    rules = _css_rules(_soup(out / "99_slides_fixture.html"))
    img = rules[".reveal .jp-OutputArea-output img"]
    assert f"max-height: {slides.IMAGE_MAX_HEIGHT}px" in img and "width: 100%" in img  # full width ...
    assert "object-fit: contain" in img  # ... keeping its ratio
    assert slides.IMAGE_MAX_HEIGHT <= 0.8 * slides.SLIDE_HEIGHT
    pre = rules[".reveal .jp-OutputArea-output pre"]
    assert f"max-height: {slides.TEXT_OUTPUT_MAX_HEIGHT}px" in pre and "overflow-y: auto" in pre


def test_deck_script_fits_with_a_zoom_floor(built: tuple[Path, Path, list[Path]]) -> None:
    _, out, _ = built
    html = (out / "99_slides_fixture.html").read_text(encoding="utf-8")
    assert f"HEIGHT = {slides.SLIDE_HEIGHT}, MIN_ZOOM = {slides.MIN_ZOOM};" in html
    assert 0.5 < slides.MIN_ZOOM < 1


# ----------------------------------------------------------------- edge cases


def _nb(path: Path, cells: list[tuple[str, str, str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    for kind, source, slide_type in cells:
        cell = (nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell)(source)
        if slide_type:
            cell.metadata["slideshow"] = {"slide_type": slide_type}
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    ("cells", "n_slides"),
    [
        ([("md", "no heading, no metadata", ""), ("md", "more", "")], 2),
        ([("md", "# Hidden", "skip"), ("md", "first visible, marked -", "-"),
          ("md", "x", "subslide"), ("md", "y", "fragment"), ("md", "z", "slide")], 4),
        ([("md", "# Only skipped", "skip"), ("code", "1", "notes")], 1),
    ],
    ids=["no-metadata", "first-visible-is-dash", "all-hidden"],
)
def test_slide_count_edge_cases(tmp_path: Path, cells: list[tuple[str, str, str]], n_slides: int) -> None:
    nb = _nb(tmp_path / "nb" / "07_edge.ipynb", cells)
    slides.build(tmp_path / "out", [nb])
    soup = _soup(tmp_path / "out" / "07_edge.html")
    assert len(_leaf_sections(soup)) == n_slides
    assert len(expected_slides(nbformat.read(nb, as_version=4))) == n_slides


def test_title_falls_back_to_file_name(tmp_path: Path) -> None:
    nb = _nb(tmp_path / "05_untitled.ipynb", [("md", "no heading here", "slide")])
    slides.build(tmp_path / "out", [nb])
    leaves = _leaf_sections(_soup(tmp_path / "out" / "05_untitled.html"))
    assert "05_untitled" in leaves[0].find("h1").get_text()


def test_default_notebooks_folder_and_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notebooks").mkdir()
    written = slides.build(Path("out"), None)
    assert written == [Path("out") / "index.html"]
    assert "No notebooks found" in (tmp_path / "out" / "index.html").read_text()
    make_fixture_notebook(tmp_path / "notebooks" / "01_a.ipynb")
    make_fixture_notebook(tmp_path / "notebooks" / "02_b.ipynb")
    written = slides.build(Path("out"), None)
    assert [p.name for p in written] == ["01_a.html", "02_b.html", "index.html"]


def test_bad_notebooks_raise_notebook_error(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such notebook"):
        slides.build(tmp_path / "out", [tmp_path / "missing.ipynb"])
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(NotebookError, match=r"bad\.ipynb: not a readable notebook"):
        slides.build(tmp_path / "out", [bad])
    a = make_fixture_notebook(tmp_path / "a" / "01_x.ipynb")
    b = make_fixture_notebook(tmp_path / "b" / "01_x.ipynb")
    with pytest.raises(NotebookError, match=r"two notebooks would write 01_x\.html"):
        slides.build(tmp_path / "out", [a, b])
    with pytest.raises(NotebookError, match=r"expected a \.ipynb"):
        slides.build(tmp_path / "out", [tmp_path / "notes.md"])


def test_cli_slides(built: tuple[Path, Path, list[Path]], tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    nb, _, _ = built
    assert main(["slides", "--out", str(tmp_path / "cli"), str(nb)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "cli" / "99_slides_fixture.html"), str(tmp_path / "cli" / "index.html")]
    assert main(["slides", "--out", str(tmp_path / "cli"), str(tmp_path / "nope.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


# ----------------------------------------------------------------- assets: fetching and failures


def test_missing_reveal_without_fetch_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(slides.SlideAssetError, match=rf"reveal.js {slides.REVEAL_VERSION} is not in"):
        slides.ensure_reveal(tmp_path / "vendor", fetch=False)


def test_missing_npm_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    with pytest.raises(slides.SlideAssetError, match="`npm` is not installed"):
        slides.ensure_reveal(tmp_path / "vendor")


def _fake_npm(bin_dir: Path, tarball: bytes) -> None:
    """An `npm` on PATH whose `pack` writes the given bytes as the tarball."""
    bin_dir.mkdir(parents=True)
    (bin_dir / "payload.tgz").write_bytes(tarball)
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "dest = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
        f"shutil.copy({str(bin_dir / 'payload.tgz')!r}, dest + '/reveal.js-{slides.REVEAL_VERSION}.tgz')\n"
    )
    script.chmod(0o755)


def _tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tampered_tarball_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = _tgz({"package/dist/reveal.js": b"alert('not reveal')", "package/LICENSE": b"MIT"})
    _fake_npm(tmp_path / "bin", payload)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(slides.SlideAssetError, match="sha512"):
        slides.ensure_reveal(tmp_path / "vendor")
    assert not (tmp_path / "vendor" / f"reveal.js-{slides.REVEAL_VERSION}").exists()


def test_unsafe_tar_members_are_refused(tmp_path: Path) -> None:
    tgz = tmp_path / "evil.tgz"
    tgz.write_bytes(_tgz({"package/dist/reveal.js": b"x", "../escape.txt": b"x"}))
    with pytest.raises(slides.SlideAssetError, match="refusing tar member"):
        slides._unpack_npm_tarball(tgz, tmp_path / "dest")
    assert not (tmp_path.parent / "escape.txt").exists()


def test_vendored_reveal_is_the_pinned_release() -> None:
    reveal = slides.ensure_reveal()
    package = (reveal / "package.json").read_text()
    assert f'"version": "{slides.REVEAL_VERSION}"' in package
    assert "MIT" in (reveal / "LICENSE").read_text()


# ----------------------------------------------------------------- the course notebooks


@pytest.fixture(scope="module")
def course_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("course_slides_html")
    if COURSE_NOTEBOOKS:
        slides.build(out, COURSE_NOTEBOOKS)
    return out


@pytest.mark.parametrize(
    "notebook", notebook_params()
)
def test_course_deck_offline_and_complete(course_out: Path, notebook: Path | None) -> None:
    notebook = require_notebook(notebook)
    deck = course_out / f"{notebook.stem}.html"
    assert offline_problems(deck) == []
    expect = deck_slides(notebook)
    assert len(_leaf_sections(_soup(deck))) == len(expect)
    html = deck.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in html and "cases passed" not in html and "NotImplementedError" not in html


# ----------------------------------------------------------------- browser-test plumbing


def test_missing_chromium_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from bncourse.authoring.browser import BrowserMissingError
    from tests import browser_helpers

    def missing() -> Path:
        raise BrowserMissingError("no Chromium found")

    monkeypatch.setattr(browser_helpers, "chromium_executable", missing)
    monkeypatch.delenv(browser_helpers.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        browser_helpers.require_browser()
    monkeypatch.setenv(browser_helpers.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="BNCOURSE_REQUIRE_BROWSER=1"):
        browser_helpers.require_browser()


def test_network_filter() -> None:
    from bncourse.authoring.browser import is_local_url

    assert is_local_url("file:///tmp/x.html") and is_local_url("data:image/png;base64,AA")
    assert is_local_url("http://localhost:8888/lab") and is_local_url("http://127.0.0.1:1/x")
    assert is_local_url("http://[::1]:8888/")
    assert not is_local_url("https://cdn.jsdelivr.net/npm/reveal.js")
    assert not is_local_url("http://localhost.evil.example/")
    assert not is_local_url("wss://example.org/socket")


def test_each_answer_block_takes_its_own_override(tmp_path: Path) -> None:
    quiz = ("## Quiz\n\n1. Why?\n\n<details><summary>Answer 1</summary>\n\nLong answer one. More.\n</details>\n\n"
            "2. How?\n\n<details><summary>Answer 2</summary>\n\nLong answer two. More.\n</details>")
    path = _nb(tmp_path / "01_q.ipynb", [("md", "# 01 — Q", "slide"), ("md", quiz, "slide")])
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["slide_answers"] = ["Short one.", "Short two."]
    shown = [c.source for c in slides.prepare_notebook(nb, path).cells
             if c.metadata.get("slideshow", {}).get("slide_type") == "subslide"]
    assert shown == ["### Answer 1\n\nShort one.", "### Answer 2\n\nShort two."]
