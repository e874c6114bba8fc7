"""bncourse: a notebook course on Batch Normalization and its companion package.

Importing :mod:`bncourse` is cheap: it does not import torch or matplotlib.  The
submodules that need them (:mod:`bncourse.nn`, :mod:`bncourse.course.plots`, ...) import them
when they are imported themselves.

Submodules: ``reference`` (NumPy answers), ``nn`` (PyTorch modules written from
scratch), ``grading`` (``check`` and the class grader), ``data``, ``plots``,
``widgets``, ``release``, ``slides``.
"""

from __future__ import annotations

from bncourse.errors import BNCourseError

__version__ = "0.1.0"
__all__ = ["BNCourseError", "__version__"]
