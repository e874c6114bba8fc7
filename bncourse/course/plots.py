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

__all__ = ["COLORS", "STYLE", "new_figure", "plot_curves", "use_style"]

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
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "legend.fontsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 2.0,
    "image.cmap": "viridis",
}
"""rcParams of the course style: readable at slide size."""


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global rcParams."""
    for key, value in STYLE.items():
        plt.rcParams[key] = value  # type: ignore[index]


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None,
               height: float | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` with the course style and a size that scales with the panels."""
    use_style()
    w = width if width is not None else min(4.6 * ncols, 14.0)
    h = height if height is not None else 3.8 * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), layout="constrained", **kwargs)
    return fig, axes


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
