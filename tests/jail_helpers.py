"""What the tests of the grader's jail share: the skip rule and the student build it runs.

Without bubblewrap the jail tests are skipped with a visible reason, except where
``BNCOURSE_REQUIRE_JAIL=1`` (set by ``.ci/run``): there a missing ``bwrap`` fails them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bncourse.authoring import student_package
from bncourse.grading.jail import bwrap_path

NO_BWRAP = "bubblewrap (bwrap) is not installed: the grader's jail cannot be tested here"


def require_bwrap() -> None:
    """Skip the calling test (or module) without bubblewrap; fail instead in CI."""
    if bwrap_path() is not None:
        return
    if os.environ.get("BNCOURSE_REQUIRE_JAIL") == "1":
        pytest.fail("bubblewrap is required here (BNCOURSE_REQUIRE_JAIL=1): apt-get install bubblewrap",
                    pytrace=False)
    pytest.skip(NO_BWRAP, allow_module_level=True)


def write_student_build(root: Path) -> Path:
    """The student build of the package, as ``bncourse grade`` gives the jail (no expected outputs)."""
    return student_package.write_tree(student_package.package_files(expected_outputs=False), root)


def isolation_args() -> list[str]:
    """``bncourse grade`` arguments for a test about something else than the jail (discovery,
    the CLI): jailed where bubblewrap exists, else ``--no-jail`` so the test still runs."""
    return [] if bwrap_path() is not None else ["--no-jail"]
