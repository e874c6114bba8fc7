"""Exceptions raised by bncourse.

Every error raised on bad input is a :class:`BNCourseError`, which is also a
:class:`ValueError`, so callers' ``except ValueError`` keeps working.  Messages name
what was expected and what was received, for example::

    BatchNorm2d expects (N, C, H, W), got shape (8, 3)
    groupnorm: C=6 not divisible by G=4
    training batchnorm needs >1 value per channel, got x.shape=(1, 5)
"""

from __future__ import annotations

__all__ = [
    "BNCourseError",
    "BatchSizeError",
    "CheckFailedError",
    "DTypeError",
    "ExerciseError",
    "NonFiniteError",
    "NotebookError",
    "ParameterError",
    "ShapeError",
]


class BNCourseError(ValueError):
    """Base class of every error bncourse raises on bad input."""


class ShapeError(BNCourseError):
    """An array has the wrong number of dimensions or a mismatched length."""


class DTypeError(BNCourseError):
    """An array has a dtype the function does not accept (e.g. integers)."""


class ParameterError(BNCourseError):
    """A scalar parameter is out of range (eps <= 0, momentum outside [0, 1], ...)."""


class NonFiniteError(BNCourseError):
    """An input array holds NaN or infinity (batch statistics would silently become NaN)."""


class BatchSizeError(BNCourseError):
    """Too few values per channel to compute batch statistics in training mode."""


class ExerciseError(BNCourseError):
    """An unknown exercise id, or an exercise registered twice."""


class NotebookError(BNCourseError):
    """A course notebook is malformed (markers, tags, metadata)."""


class CheckFailedError(BNCourseError, AssertionError):
    """``check(..., strict=True)`` on a function that does not pass every case.

    Also an :class:`AssertionError`, as a failed test is (nbgrader's autograder test cells
    and pytest both read it so); the message is the verdict and its diagnosis.
    """
