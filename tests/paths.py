"""Where things are, for every test module however deep it sits in tests/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
NOTEBOOKS_DIR = Path(os.environ.get("BNCOURSE_NOTEBOOKS_DIR", ROOT / "notebooks"))
"""The course notebooks; ``BNCOURSE_NOTEBOOKS_DIR`` points the tests at another folder."""
COURSE_NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def notebook_params() -> list[Any]:
    """One ``pytest.param`` per course notebook; with none there is one param that *fails*
    (see :func:`require_notebook`) instead of an empty parameter set that pytest would skip."""
    return [pytest.param(p, id=p.stem) for p in COURSE_NOTEBOOKS] or [pytest.param(None, id="no-notebooks")]


def require_notebooks() -> list[Path]:
    """The course notebooks, or a test failure naming the folder when there are none."""
    if not COURSE_NOTEBOOKS:
        pytest.fail(f"no course notebooks in {NOTEBOOKS_DIR}: a test of them would pass vacuously")
    return COURSE_NOTEBOOKS


def require_notebook(notebook: Path | None) -> Path:
    """``notebook``, or a failure when the parametrization found no notebooks at all."""
    if notebook is None:
        require_notebooks()
    assert notebook is not None
    return notebook
