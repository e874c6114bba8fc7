"""Test configuration shared by the whole suite.

Jupyter, IPython and matplotlib state is kept inside build/ (not $HOME), and notebooks
collected by nbval get the ``notebooks`` marker so they can be selected or skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"

_ENV_DIRS = {
    "JUPYTER_CONFIG_DIR": ROOT / ".jupyter" / "config",
    "JUPYTER_DATA_DIR": BUILD / "jupyter" / "data",
    "JUPYTER_RUNTIME_DIR": BUILD / "jupyter" / "runtime",
    "IPYTHONDIR": BUILD / "ipython",
    "MPLCONFIGDIR": BUILD / "mpl",
}
for _name, _path in _ENV_DIRS.items():
    os.environ.setdefault(_name, str(_path))
    Path(os.environ[_name]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebooks)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def student_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student build of the package that the grader's jail runs (one per test session)."""
    from tests.jail_helpers import write_student_build

    return write_student_build(tmp_path_factory.mktemp("student-build"))
