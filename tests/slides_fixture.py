"""A small notebook that uses every slideshow feature, and what its deck must contain.

Shared by tests/test_slides.py (HTML, offline) and tests/test_slides_browser.py
(Chromium).  The expected numbers are written down by hand from the cells below, so they
are an oracle independent of bncourse.authoring.slides.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

TITLE = "99 — Slides fixture"


@dataclass(frozen=True)
class FixtureExpect:
    n_slides: int  # generated title slide + slide/subslide cells
    n_horizontal: int  # title + cells of type slide
    n_fragments: int
    n_notes: int
    n_images: int
    n_display_math: int
    n_inline_math: int
    math_slides: tuple[tuple[int, int], ...]  # (h, v) indices of slides with math
    n_folded: int  # code cells longer than CODE_LINES_SHOWN lines
    zoomed_slides: tuple[tuple[int, int], ...]  # (h, v) of slides too tall at full size


EXPECT = FixtureExpect(
    # title | "99 — Slides fixture" | "The transform" + "Why eps" | "A figure" + the print
    # after it + "A long list" + its folded code + the exercise | the quiz + its answers
    n_slides=11,
    n_horizontal=5,
    n_fragments=1,  # "Then scale by ..." (the check cell, a fragment, is dropped)
    n_notes=4,  # the notes cell; the full text of the title cell, of the exercise's lead and of the answers
    n_images=1,
    n_display_math=1,
    n_inline_math=3,  # $\gamma$, $\beta$ (fragment) and $\epsilon$ (subslide)
    math_slides=((2, 0), (2, 1)),
    n_folded=1,  # LONG_CODE (12 lines); the hide-output cell has 2
    zoomed_slides=(),  # every slide fits at full size
)

SKIPPED_TEXT = "THIS CELL IS SKIPPED"
HIDDEN_OUTPUT_TEXT = "THIS OUTPUT IS HIDDEN"
SHOWN_OUTPUT_TEXT = "mean=0.000"
NOTES_TEXT = "pause here and ask about the variance."
NOTES_PREFIX = "Speaker notes: "
#: Sentences of the title cell after its first: speaker notes, not on the slide.
TITLE_NOTES_ONLY = "This second sentence is for the lecturer only."
EXERCISE_ID = "double"
SOLUTION_LINE = "return 2 * x  # THE SOLUTION"
CHECK_OUTPUT = "7/7 cases passed — 10/10 points"
QUESTION = "Why is the variance biased?"
ANSWER_TEXT = "Because it divides by m."
STDERR_TEXT = "UserWarning: noisy"
#: A code cell longer than bncourse.authoring.slides.CODE_LINES_SHOWN: folded on its slide.
LONG_CODE_FIRST_LINE = "def long_helper(values):"
LONG_CODE = LONG_CODE_FIRST_LINE + "\n" + "".join(f"    step_{i} = values * {i}\n" for i in range(10)) + "    return step_9\n"
LONG_CODE_OUTPUT = "LONG CELL OUTPUT STAYS VISIBLE"
#: A markdown cell taller than the slide at full size (24 list items, ~1000 px): scaled to fit.
LONG_LIST_HEADING = "### A long list"
LONG_LIST = LONG_LIST_HEADING + "\n\n" + "\n".join(f"- item {i}: a line of text" for i in range(1, 7))


def _png_output() -> nbformat.NotebookNode:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
    ax.plot([0, 1, 2, 3], [0, 1, 4, 9], marker="o")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("fixture figure")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return nbformat.v4.new_output(
        "display_data",
        data={"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
              "text/plain": "<Figure size 320x240 with 1 Axes>"},
    )


def _cell(kind: str, source: str, slide_type: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
    cell = make(source)
    cell.metadata["slideshow"] = {"slide_type": slide_type}
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def make_fixture_notebook(path: Path) -> Path:
    """Write the fixture notebook to ``path`` and return it."""
    cells = [
        _cell("md", f"# {TITLE}\n\nA tiny deck. {TITLE_NOTES_ONLY}\n\n## What you will learn\n\n- one\n- two", "slide"),
        _cell("code", "import numpy as np", "skip", ("imports",)),
        _cell("md", "## The transform\n\n"
              "$$\\hat{x}_i = \\frac{x_i - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}}$$", "slide"),
        _cell("md", "Then scale by $\\gamma$ and shift by $\\beta$.", "fragment"),
        _cell("md", NOTES_PREFIX + NOTES_TEXT, "notes"),
        _cell("md", f"{SKIPPED_TEXT}: a long derivation", "skip"),
        _cell("md", "### Why $\\epsilon$?\n\nIt keeps the division finite.", "subslide"),
        _cell("code", "x = np.zeros(3)\nprint('hidden')", "-", ("hide-output",)),
        _cell("md", "## A figure", "slide"),
        _cell("code", "plot_curves(history)", "-"),
        _cell("code", "print(f'mean={x.mean():.3f}')", "-"),
        _cell("md", LONG_LIST, "subslide"),
        _cell("code", LONG_CODE, "-"),
        _cell("md", f"### Exercise `{EXERCISE_ID}`\n\nWrite `{EXERCISE_ID}`. It doubles. Take your time.", "subslide"),
        _cell("code", f'def {EXERCISE_ID}(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    {SOLUTION_LINE}\n'
              "    ### END SOLUTION\n", "subslide", ("exercise",)),
        _cell("code", f'check("{EXERCISE_ID}", {EXERCISE_ID})', "fragment", ("check",)),
        _cell("md", f"## Check your understanding\n\n1. {QUESTION}\n\n<details><summary>Answers</summary>\n\n"
              f"1. {ANSWER_TEXT} Not by m - 1.\n\n</details>", "slide"),
    ]
    cells[7].outputs = [nbformat.v4.new_output("stream", name="stdout", text=HIDDEN_OUTPUT_TEXT + "\n")]
    cells[9].outputs = [_png_output()]
    cells[10].outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=STDERR_TEXT + "\n"),
        nbformat.v4.new_output("stream", name="stdout", text=SHOWN_OUTPUT_TEXT + "\n"),
    ]
    cells[12].outputs = [nbformat.v4.new_output("stream", name="stdout", text=LONG_CODE_OUTPUT + "\n")]
    cells[15].outputs = [nbformat.v4.new_output("stream", name="stdout", text=CHECK_OUTPUT + "\n")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@dataclass(frozen=True)
class ExpectedSlide:
    h: int
    v: int
    n_math: int  # formulas in the markdown of the slide's visible (non-notes) cells


_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_DISPLAY = re.compile(r"\$\$.+?\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$(?!\$)")
_ENV = re.compile(r"\\begin\{(equation|align|gather)\*?\}")


def count_math(markdown: str) -> int:
    """Formulas MathJax should find in a markdown source ($$..$$, $..$, \\begin{equation})."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    n_display = len(_DISPLAY.findall(text))
    text = _DISPLAY.sub(" ", text)
    return n_display + len(_INLINE.findall(text)) + len(_ENV.findall(text))


def expected_slides(nb: Any) -> list[ExpectedSlide]:
    """The deck's slides from a notebook's slideshow metadata, title slide first (pass the
    cells as the deck shows them: ``slides.prepare_notebook(nb, path).cells[1:]``).

    The slide count is 1 (title) + 1 (the first visible cell always starts a slide) + the
    number of later cells whose slide_type is ``slide`` or ``subslide``.
    """
    layout: list[list[int]] = [[0]]  # title slide at (0, 0); values: math count
    started = False
    for cell in nb.cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind in ("skip", "notes"):
            continue
        if not started or kind == "slide":
            layout.append([0])
            started = True
        elif kind == "subslide":
            layout[-1].append(0)
        if cell.cell_type == "markdown":
            layout[-1][-1] += count_math(cell.source)
    return [ExpectedSlide(h, v, n) for h, col in enumerate(layout) for v, n in enumerate(col)]


def deck_slides(notebook: Path) -> list[ExpectedSlide]:
    """The slides the deck of ``notebook`` must have: :func:`expected_slides` of its cells as
    the deck shows them (``slides.prepare_notebook``, whose generated title slide
    :func:`expected_slides` adds itself)."""
    from bncourse.authoring import slides

    prepared = slides.prepare_notebook(nbformat.read(notebook, as_version=4), notebook)
    prepared.cells = prepared.cells[1:]
    return expected_slides(prepared)
