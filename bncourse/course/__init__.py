"""What every notebook shares: set-up, data, models, training, plots and widgets.

* :mod:`~bncourse.course.setup` -- :func:`~bncourse.course.setup.setup_notebook`: seeds,
  threads, plot style, quiet warnings.
* :mod:`~bncourse.course.data` -- digits splits and synthetic data sets (offline).
* :mod:`~bncourse.course.models` -- the MLPs and CNNs of the experiments (torch).
* :mod:`~bncourse.course.training` -- the training loop, accuracy, learning curves (torch).
* :mod:`~bncourse.course.diagnostics` -- what a network's layers hold: BN buffers, gradient norms.
* :mod:`~bncourse.course.plots` -- the figure style and shared plots (matplotlib).
* :mod:`~bncourse.course.widgets` -- sliders that redraw a figure (ipywidgets).
* :mod:`~bncourse.course.tables` -- plain-text tables of results.

Importing this package imports nothing heavy; each module imports what it needs.
"""
