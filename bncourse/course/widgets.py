"""Interactive widgets the notebooks share (ipywidgets); imported only where a notebook uses one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["figure_with_sliders"]


def figure_with_sliders(draw: Callable[..., Figure], sliders: Sequence[Any]) -> Any:
    """An ``ipywidgets.VBox``: ``sliders`` in a row above the figure ``draw(*values)``.

    The figure is drawn once now and again whenever a slider's value changes (into an
    ``Output`` widget, as a static PNG, closing each figure after display).  ``box.draw`` is
    ``draw``, so tests can call it with chosen values without a front end.
    """
    import ipywidgets as widgets
    from IPython.display import display

    out = widgets.Output()

    def update(_change: Any = None) -> None:
        with out:
            out.clear_output(wait=True)
            fig = draw(*(slider.value for slider in sliders))
            display(fig)
            plt.close(fig)

    for slider in sliders:
        slider.observe(update, names="value")
    update()
    box = widgets.VBox([widgets.HBox(list(sliders)), out])
    box.draw = draw
    return box
