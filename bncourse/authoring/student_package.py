"""The student build of the package: ``bncourse`` without answers, as a reproducible wheel.

:func:`package_files` takes the installed package's source and leaves out every module
listed in :data:`INSTRUCTOR_ONLY` (the NumPy reference, the lessons' solutions and
mistakes, the from-scratch torch backward, the class grader and the authoring tools); it
marks the build as the student's (:mod:`bncourse.edition`) and adds the expected outputs
and mistake fingerprints the checks need (:mod:`bncourse.grading.expected`).
:func:`wheel` packs the files into a wheel (same import name, same version) whose bytes
depend only on the files: sorted entries, fixed timestamps, fixed permissions.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import importlib.metadata
import io
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

from bncourse import __version__
from bncourse.errors import BNCourseError
from bncourse.grading import expected
from bncourse.grading.evaluate import outputs_on_cases
from bncourse.grading.registry import LESSONS_PACKAGE, all_exercises, resolve

__all__ = ["INSTRUCTOR_ONLY", "ZIP_DATE", "package_files", "reproducible_zip", "wheel", "wheel_name", "write_tree"]

INSTRUCTOR_ONLY = (
    "bncourse/reference/*",
    "bncourse/lessons/*/solutions.py",
    "bncourse/lessons/*/mistakes.py",
    "bncourse/nn/from_scratch.py",
    "bncourse/grading/grader.py",
    "bncourse/grading/gradebook.py",
    "bncourse/grading/gradescope.py",
    "bncourse/grading/roster.py",
    "bncourse/authoring/*",
)
"""Paths (relative to site-packages, ``fnmatch`` patterns) the student build leaves out."""

_DATA_SUFFIXES = (".py", ".typed")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""The timestamp of every entry of the wheel and the edition's zip (reproducible builds)."""
_EDITION_LINE = re.compile(r'^EDITION: Final\[Literal\["instructor", "student"\]\] = "instructor"$', re.M)


def _package_dir() -> Path:
    import bncourse

    return Path(bncourse.__file__).resolve().parent


def is_instructor_only(rel: str) -> bool:
    """Is ``rel`` (``"bncourse/..."``) left out of the student build?"""
    return any(fnmatch.fnmatch(rel, pattern) for pattern in INSTRUCTOR_ONLY)


def package_files(package_dir: Path | None = None, *, expected_outputs: bool = True) -> dict[str, bytes]:
    """``"bncourse/<path>" -> bytes`` of the student build.

    ``expected_outputs=False`` leaves out the expected outputs too: the build the grader's
    jail runs (the comparison happens in the grading process, the jail needs no oracle).

    Raises:
        BNCourseError: the edition marker is not where it should be, or an exercise has no
            stand-in (``best_available`` would have nothing to fall back to).
    """
    root = package_dir or _package_dir()
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or not path.name.endswith(_DATA_SUFFIXES):
            continue
        rel = f"bncourse/{path.relative_to(root).as_posix()}"
        if not is_instructor_only(rel):
            files[rel] = path.read_bytes()
    marker = files["bncourse/edition.py"].decode("utf-8")
    student, n = _EDITION_LINE.subn('EDITION: Final[Literal["instructor", "student"]] = "student"', marker)
    if n != 1:
        raise BNCourseError("bncourse/edition.py does not hold the EDITION line the release rewrites")
    files["bncourse/edition.py"] = student.encode("utf-8")
    if not expected_outputs:
        return dict(sorted(files.items()))
    exercises = [e for e in all_exercises() if e.cases.__module__.startswith(f"{LESSONS_PACKAGE}.")]
    for ex in exercises:
        try:
            if ex.fallback is None:
                raise BNCourseError("none declared")
            resolve(ex.fallback)
        except Exception as exc:
            raise BNCourseError(f"exercise {ex.id!r} has no stand-in for best_available: {exc}") from None
    table = expected.build(exercises, outputs_on_cases)
    files[f"bncourse/grading/{expected.DATA_FILE}"] = expected.dumps(table)
    return dict(sorted(files.items()))


def _requirements() -> tuple[list[str], list[str]]:
    """``(requirements, extras)`` of the installed package, for the wheel's METADATA.

    The run-time requirements and the ``lab`` extra (JupyterLab); the ``dev`` extra (tests,
    linters) is the instructor's.
    """
    reqs = importlib.metadata.requires("bncourse") or []
    kept = [r for r in reqs if "extra ==" not in r or re.search(r'extra\s*==\s*"lab"', r)]
    return kept, ["lab"]


def wheel_name(version: str = __version__) -> str:
    return f"bncourse-{version}-py3-none-any.whl"


def _zip_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o644 & 0xFFFF) << 16
    info.create_system = 3  # unix, so the permissions above are honoured
    zf.writestr(info, data, compresslevel=9)


def reproducible_zip(files: Mapping[str, bytes]) -> bytes:
    """A zip of ``files`` (name -> bytes) whose bytes depend only on them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            _zip_entry(zf, name, files[name])
    return buf.getvalue()


def wheel(files: Mapping[str, bytes], version: str = __version__, *,
          summary: str = "Batch Normalization course — student edition (no solutions inside).") -> tuple[str, bytes]:
    """``(file name, bytes)`` of a pure-Python wheel of ``files`` (reproducible)."""
    dist = f"bncourse-{version}.dist-info"
    reqs, extras = _requirements()
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        "Name: bncourse",
        f"Version: {version}",
        f"Summary: {summary}",
        "Requires-Python: >=3.10",
        *(f"Provides-Extra: {e}" for e in extras),
        *(f"Requires-Dist: {r}" for r in reqs),
        "",
    ])
    meta_files = {
        f"{dist}/METADATA": metadata.encode("utf-8"),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bncourse release\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": b"[console_scripts]\nbncourse = bncourse.cli:main\n",
        f"{dist}/top_level.txt": b"bncourse\n",
    }
    everything = {**dict(files), **meta_files}
    record = []
    for name in sorted(everything):
        data = everything[name]
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    everything[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode("utf-8")
    return wheel_name(version), reproducible_zip(everything)


def write_tree(files: Mapping[str, bytes], root: Path) -> Path:
    """Write ``files`` (``"bncourse/..." -> bytes``) under ``root``; returns ``root``."""
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root
