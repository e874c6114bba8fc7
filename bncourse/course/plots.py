"""The course's figure style and the plotting helpers the notebooks share.

Every function takes arrays and returns a :class:`matplotlib.figure.Figure`; none of
them computes an experiment.  Topic-specific plots live next to the topic's code
(e.g. :mod:`bncourse.lessons.l01_feature_scaling.experiments`) but use :func:`use_style`, :data:`COLORS` and
:func:`new_figure` from here so that all figures look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use(matplotlib.get_backend())  # keep the caller's backend (inline in notebooks)
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["COLORS", "MAX_WIDTH_IN", "MIN_FONT_PT", "STYLE", "legend_below", "new_figure", "plot_curves", "use_style"]

MIN_FONT_PT = 16
"""Smallest text size in any course figure, in points.

Figures are drawn at 90 dpi (their CSS size), so 16 pt is 20 px; a slide deck at 1280×800
shows a figure at its natural width or wider (reveal.js then scales the slide by ~0.96),
which keeps figure text at 18 px or more, readable from the back of a lecture hall.
"""

MAX_WIDTH_IN = 13.3
"""Widest figure, in inches: 13.3 in × 90 dpi = 1197 px, plus the 0.1 in margin the inline
backend's tight bounding box adds on each side = 1215 px, the usable width of a 1280 px slide."""

COLORS: dict[str, str] = {
    "no_bn": "#7f7f7f",
    "bn": "#d62728",
    "gn": "#1f77b4",
    "ln": "#2ca02c",
    "in": "#9467bd",
    "reference": "#000000",
    "student": "#ff7f0e",
    "accent": "#17becf",
}
"""Named colours used consistently: grey = without BN, red = with BN, ..."""

STYLE: dict[str, Any] = {
    "figure.figsize": (9.0, 4.5),
    "figure.dpi": 90,
    "savefig.dpi": 90,
    "font.size": MIN_FONT_PT,
    "axes.titlesize": MIN_FONT_PT + 2,
    "axes.labelsize": MIN_FONT_PT,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": MIN_FONT_PT + 2,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 2.0,
    "image.cmap": "viridis",
}
"""rcParams of the course style: readable at slide size (every text size ≥ :data:`MIN_FONT_PT`)."""


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global rcParams."""
    for key, value in STYLE.items():
        plt.rcParams[key] = value  # type: ignore[index]


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None,
               height: float | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` with the course style and a size that scales with the panels.

    The width is capped at :data:`MAX_WIDTH_IN` (a slide's width), whatever is asked.
    """
    use_style()
    w = min(width if width is not None else 4.6 * ncols, MAX_WIDTH_IN)
    h = height if height is not None else 3.8 * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), layout="constrained", **kwargs)
    return fig, axes


def legend_below(ax: Any, *, ncols: int = 1, gap: float = 0.7, **kwargs: Any) -> Any:
    """The axes' legend centred under its x label, clear of the data.

    ``gap`` is the distance in inches from the bottom of the axes to the top of the legend
    (room for the tick labels and a one-line x label at the course's font size); the
    constrained layout of :func:`new_figure` makes room for it.  Returns the legend.
    """
    from matplotlib.transforms import offset_copy

    below = offset_copy(ax.transAxes, fig=ax.figure, y=-gap, units="inches")
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, ncols=ncols, **kwargs)


def plot_curves(
    curves: dict[str, Sequence[float]],
    x: Sequence[float] | None = None,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    colors: dict[str, str] | None = None,
    logy: bool = False,
    ax: Any = None,
) -> Figure:
    """Line plot of several named curves sharing an x axis, with title, labels, legend."""
    if ax is None:
        fig, ax = new_figure()
    else:
        fig = ax.figure
    for name, ys in curves.items():
        xs = list(x) if x is not None else list(range(len(ys)))
        ax.plot(xs, list(ys), label=name, color=(colors or {}).get(name))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return fig
