"""bncourse: a notebook course on Batch Normalization and its companion package.

Importing :mod:`bncourse` is cheap: it does not import torch or matplotlib.  The
submodules that need them (:mod:`bncourse.nn`, :mod:`bncourse.course.plots`, ...) import them
when they are imported themselves.

Layers, bottom to top (CONTRIBUTING.md has the whole map): ``errors``, ``conventions``,
``validation``, ``notebook_file``; ``reference`` (the NumPy math); ``nn`` (PyTorch modules
written from scratch, and ``nn.functional``); ``course`` (what every notebook shares:
setup, data, models, training, diagnostics, plots, widgets, tables); ``grading``
(``check``, the exercise registry, the class grader); ``lessons.lNN_topic`` (one package
per notebook: experiments, exercises, solutions, mistakes); ``authoring`` (release, lint,
slides); ``cli``.
"""

from __future__ import annotations

from bncourse.errors import BNCourseError

__version__ = "0.1.0"
__all__ = ["BNCourseError", "__version__"]
