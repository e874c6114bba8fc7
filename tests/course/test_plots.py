"""Figures readable from the back of a lecture hall: the course style's text sizes, no smaller
literal font sizes anywhere in the package, and 2× PNGs no wider than a slide in the notebooks."""

from __future__ import annotations

import ast
import base64
import json
import struct
from pathlib import Path

import pytest

from bncourse.course import plots
from tests.paths import ROOT, notebook_params, require_notebook

TEXT_SIZES = ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize", "ytick.labelsize",
              "legend.fontsize", "legend.title_fontsize", "figure.titlesize")
"""Every rcParam that sizes text in a figure."""

SLIDE_WIDTH_PX = 1215
"""The widest a figure may be drawn (CSS px): a 1280 px slide less reveal.js's margins."""

SIZE_KEYWORDS = {"fontsize", "labelsize", "titlesize", "title_fontsize"}
"""Keywords that size text in any matplotlib call."""

TEXT_CALLS = {"text", "annotate", "set_title", "set_xlabel", "set_ylabel", "suptitle", "supxlabel", "supylabel",
              "figtext", "legend", "tick_params", "set_xticks", "set_yticks", "set_xticklabels",
              "set_yticklabels", "FontProperties"}
"""Calls whose ``size=`` (and ``prop={"size": ...}``) is a font size, not an array shape."""


def test_style_sizes_every_text_at_least_the_minimum() -> None:
    assert plots.MIN_FONT_PT * 90 / 72 * 0.96 >= 18, "figure text must stay ≥ 18 px on a 1280×800 slide"
    assert plots.STYLE["figure.dpi"] == plots.STYLE["savefig.dpi"] == 90  # the CSS size
    for key in TEXT_SIZES:
        value = plots.STYLE.get(key)
        assert isinstance(value, int | float), f"STYLE[{key!r}] must be a size in points, got {value!r}"
        assert value >= plots.MIN_FONT_PT, f"STYLE[{key!r}] = {value} < MIN_FONT_PT = {plots.MIN_FONT_PT}"


def test_use_style_applies_the_sizes_and_new_figure_caps_the_width() -> None:
    import matplotlib.pyplot as plt

    plots.use_style()
    for key in TEXT_SIZES:
        assert plt.rcParams[key] >= plots.MIN_FONT_PT, key
    fig, _ = plots.new_figure(ncols=6, width=20.0)
    assert fig.get_size_inches()[0] == plots.MAX_WIDTH_IN
    # the tight bounding box of the inline backend adds 0.1 in on each side
    assert (plots.MAX_WIDTH_IN + 0.2) * plots.STYLE["figure.dpi"] <= SLIDE_WIDTH_PX
    plt.close(fig)


def _number(node: ast.AST) -> float | None:
    """The value of a numeric literal (also ``-3``), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def small_font_sizes(source: str, filename: str = "<string>") -> list[str]:
    """Every literal font size below MIN_FONT_PT in ``source``, as ``file:line keyword=value``.

    ``fontsize=`` (and ``labelsize=``, ...) of any call, ``size=`` of text-drawing calls (not
    ``rng.normal(size=...)``), the same keys in dict literals passed to them (``prop=``,
    ``fontdict=``), and named sizes ("small", ...), which are relative to a smaller base.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        keys = SIZE_KEYWORDS | ({"size"} if name in TEXT_CALLS else set())
        pairs = [(kw.arg, kw.value) for kw in node.keywords if kw.arg]
        if name in TEXT_CALLS:
            for kw in node.keywords:
                if isinstance(kw.value, ast.Dict):
                    pairs += [(k.value, v) for k, v in zip(kw.value.keys, kw.value.values, strict=True)
                              if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        for key, value in pairs:
            if key not in keys:
                continue
            number = _number(value)
            named = isinstance(value, ast.Constant) and isinstance(value.value, str)
            if named or (number is not None and number < plots.MIN_FONT_PT):
                found.append(f"{filename}:{value.lineno} {key}={ast.unparse(value)}")
    return found


def test_the_scanner_finds_small_literal_sizes() -> None:
    src = ("ax.legend(fontsize=9)\nax.text(0, 0, 's', size=8)\nrng.normal(size=3)\nax.set_title('t', fontsize=16)\n"
           "ax.legend(prop={'size': 10})\nax.tick_params(labelsize='small')\nax.annotate('a', (0, 0), fontsize=20)\n")
    assert small_font_sizes(src) == ["<string>:1 fontsize=9", "<string>:2 size=8", "<string>:5 size=10",
                                     "<string>:6 labelsize='small'"]


def test_no_literal_font_size_below_the_minimum_in_the_package() -> None:
    files = sorted((ROOT / "bncourse").rglob("*.py"))
    assert len(files) > 20
    found = [hit for f in files for hit in small_font_sizes(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert not found, f"font sizes below MIN_FONT_PT = {plots.MIN_FONT_PT} pt: {found}"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("notebook", notebook_params())
def test_notebook_figures_are_2x_pngs_no_wider_than_a_slide(notebook: Path | None) -> None:
    nb = json.loads(require_notebook(notebook).read_text(encoding="utf-8"))
    seen = 0
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if "image/png" not in out.get("data", {}):
                continue
            seen += 1
            where = f"cell {i}, figure {seen}"
            meta = out.get("metadata", {}).get("image/png", {})
            assert "width" in meta and "height" in meta, (
                f"{where}: no CSS width/height in the output's metadata (re-execute the notebook: "
                "setup_notebook() makes the inline backend emit 'retina' PNGs)")
            assert meta["width"] <= SLIDE_WIDTH_PX, f"{where}: {meta['width']} px wide, more than a slide"
            px_w, px_h = _png_size(base64.b64decode(out["data"]["image/png"]))
            assert px_w in (2 * meta["width"], 2 * meta["width"] + 1), f"{where}: {px_w} px for {meta['width']} CSS px"
            assert px_h in (2 * meta["height"], 2 * meta["height"] + 1), f"{where}: {px_h} px for {meta['height']} CSS px"
    assert seen, "a course notebook without a single figure: did it lose its outputs?"


def test_legend_below_sits_under_the_x_label_inside_the_figure() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plots.new_figure(width=6.0, height=4.0)
    for k in range(3):
        ax.plot([0, 1], [k, k + 1], label=f"series {k}")
    ax.set(title="t", xlabel="a long x label", ylabel="y")
    leg = plots.legend_below(ax, ncols=3)
    fig.canvas.draw()
    box, frame = leg.get_window_extent(), ax.get_window_extent()
    label = ax.xaxis.label.get_window_extent()
    assert box.y1 <= label.y0, "the legend must not cover the x label"
    assert box.y1 < frame.y0 and box.y0 >= 0, "under the axes, and kept inside the figure by the layout"
    assert ax.get_legend() is leg
    plt.close(fig)
