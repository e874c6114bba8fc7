"""Which build of the package this is: the instructor's, or the answer-free student build.

The instructor edition (this repository) holds the solutions, the mistake catalogue, the
NumPy reference, the grader and the authoring tools.  ``bncourse release`` writes a
student build of the package in which this file says ``"student"`` and those modules are
absent; its checks compare against expected outputs shipped as data
(:mod:`bncourse.grading.expected`) and its experiments fall back to the torch-backed
stand-ins of :mod:`bncourse.oracle`.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["EDITION", "is_student_edition"]

EDITION: Final[Literal["instructor", "student"]] = "instructor"


def is_student_edition() -> bool:
    """True in the student build (no solutions, no reference, no grader inside)."""
    return EDITION == "student"
