"""Where things are, for every test module however deep it sits in tests/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
NOTEBOOKS = ROOT / "notebooks"
COURSE_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
"""The course's notebooks: the suite fails (see tests/test_foundation.py) rather than skip when
there are none, since every notebook test would otherwise pass vacuously."""
