"""``bncourse autograder --gradescope``: the zip a Gradescope programming assignment runs.

Gradescope's contract (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
``setup.sh`` and ``run_autograder`` at the zip's root; Gradescope unpacks the zip into
``/autograder/source``, runs ``setup.sh`` once (as root) when it builds the image, and
``run_autograder`` for every submission (see :mod:`bncourse.grading.gradescope`, what it
runs).  The zip holds only:

```
setup.sh, run_autograder       the two scripts (mode 755)
bncourse-autograder.json       the assignment: its notebook(s), timeout, test visibility
requirements.txt               the third-party packages, pinned to the versions grading was tested with
requirements-min.txt           the same as the package states them (for a Python the pinned ones do not support)
oracle/bncourse-*.whl          the grading oracle: the instructor package without its authoring
                               tools (reference, solutions, mistakes, grader), installed offline by
                               setup.sh into /autograder/oracle, readable by root only
student_build/bncourse/...     the student build without expected outputs: what the student's code imports
```

Nothing else: the builder refuses, naming the file, a notebook (the instructor notebooks hold
the solutions), a symbolic link or any file in the package that is not part of its build,
and checks the finished list of entries again before it writes the zip (atomically: a
refusal leaves no zip).  torch and the other third-party packages come from the registry in
``setup.sh`` (torch 2.13.0 from the CPU index first, as the Makefile does).
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from bncourse.authoring import student_package
from bncourse.errors import BNCourseError
from bncourse.grading.gradescope import (
    CONFIG_FILE,
    ORACLE,
    PYTHON_FILE,
    STUDENT_BUILD,
    VISIBILITIES,
    Assignment,
)
from bncourse.grading.registry import all_exercises
from bncourse.notebook_file import atomic_write

__all__ = ["SCRIPTS", "build_gradescope_zip", "oracle_files", "zip_entries"]

TORCH_PIN = "torch==2.13.0"
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP_SH = r"""#!/usr/bin/env bash
# bncourse autograder set-up: Gradescope runs this once, as root, when it builds the image.
# Tests point BNCOURSE_AUTOGRADER_ROOT at a folder laid out like /autograder and
# BNCOURSE_AUTOGRADER_PYTHON at an environment that already has torch and the dependencies.
set -euo pipefail
ROOT="${BNCOURSE_AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
GRADING_USER="${BNCOURSE_AUTOGRADER_USER:-bncourse-student}"
if [ -n "${BNCOURSE_AUTOGRADER_PYTHON:-}" ]; then
    PY="$BNCOURSE_AUTOGRADER_PYTHON"
else
    if command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv python3-pip bubblewrap
    fi
    python3 -m venv "$ROOT/venv"
    PY="$ROOT/venv/bin/python"
    "$PY" -m pip install --quiet --upgrade pip
    # torch first, the CPU build: a bare `torch` requirement pulls a multi-GB GPU build
    "$PY" -m pip install --quiet "@TORCH_PIN@" --index-url "${BNCOURSE_TORCH_INDEX:-@TORCH_INDEX@}"
    if ! "$PY" -m pip install --quiet -r "$SRC/requirements.txt"; then
        echo "warning: the versions grading was tested with do not install on $("$PY" -V 2>&1);" \
             "installing the package's own requirements instead" >&2
        "$PY" -m pip install --quiet -r "$SRC/requirements-min.txt"
    fi
fi
# the grading oracle, offline from the wheel in the zip, where only root can read it
rm -rf "$ROOT/@ORACLE@"
"$PY" -m pip install --quiet --no-index --no-deps --no-compile --target "$ROOT/@ORACLE@" "$SRC"/@ORACLE@/*.whl
chmod 700 "$ROOT/@ORACLE@" "$SRC"
# the student build, readable by everyone, writable by no one but root
rm -rf "$ROOT/@STUDENT_BUILD@"
cp -r "$SRC/@STUDENT_BUILD@" "$ROOT/@STUDENT_BUILD@"
chmod -R u=rwX,go=rX "$ROOT/@STUDENT_BUILD@"
printf '%s\n' "$PY" > "$ROOT/@PYTHON_FILE@"
# the user that runs students' code where the container allows no namespaces for the jail
if ! id -u "$GRADING_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$GRADING_USER" \
        || adduser --system --no-create-home --disabled-password "$GRADING_USER"
fi
# where the container allows no jail, that user runs the students' code: it must be able to
if ! runuser -u "$GRADING_USER" -- "$PY" -c "import numpy, torch" >/dev/null 2>&1; then
    echo "warning: user $GRADING_USER cannot run $PY with numpy and torch: grading works only in the jail" >&2
fi
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# bncourse autograder: Gradescope runs this, as root, for every submission.
ROOT="${BNCOURSE_AUTOGRADER_ROOT:-/autograder}"
export BNCOURSE_AUTOGRADER_ROOT="$ROOT"
PY="$(head -n 1 "$ROOT/@PYTHON_FILE@" 2>/dev/null || echo python3)"
cd "$ROOT" || exit 1
PYTHONPATH="$ROOT/@ORACLE@" PYTHONDONTWRITEBYTECODE=1 "$PY" -m bncourse.grading.gradescope
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then  # the grader could not even start
    mkdir -p "$ROOT/results"
    printf '%s\n' '{"score": 0, "output": "The autograder could not start (not your fault: tell your course staff).", "tests": []}' \
        > "$ROOT/results/results.json"
fi
exit $status
"""


def _fill(template: str) -> bytes:
    text = (template.replace("@TORCH_PIN@", TORCH_PIN).replace("@TORCH_INDEX@", TORCH_INDEX)
            .replace("@ORACLE@", ORACLE).replace("@STUDENT_BUILD@", STUDENT_BUILD)
            .replace("@PYTHON_FILE@", PYTHON_FILE))
    return text.encode("utf-8")


SCRIPTS = {"setup.sh": _fill(SETUP_SH), "run_autograder": _fill(RUN_AUTOGRADER)}
"""The two scripts Gradescope's contract asks for, at the zip's root."""

_SOURCE_SUFFIXES = (".py", ".typed")
_EXCLUDED = ("bncourse/authoring/",)
"""Left out of the oracle: the release, slide and zip tools (grading needs none of them)."""


def _package_dir() -> Path:
    import bncourse

    return Path(bncourse.__file__).resolve().parent


def oracle_files(package_dir: Path | None = None) -> dict[str, bytes]:
    """``"bncourse/<path>" -> bytes`` of the grading oracle: every source file of the
    instructor package but the authoring tools.

    Raises:
        BNCourseError: the package holds a notebook, a symbolic link, or a file that is not
            part of its build (naming it): nothing outside the package's own sources ships.
    """
    root = Path(package_dir) if package_dir is not None else _package_dir()
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = f"bncourse/{path.relative_to(root).as_posix()}"
        if "__pycache__" in path.parts:
            continue
        if path.suffix.lower() == ".ipynb":
            raise BNCourseError(f"refusing to build the autograder: {rel} is a notebook — the zip never holds "
                                "notebooks (the instructor notebooks hold the solutions)")
        if path.is_symlink():
            raise BNCourseError(f"refusing to build the autograder: {rel} is a symbolic link (to "
                                f"{os.readlink(path)}) — the zip holds only the package's own files")
        if path.is_dir() or rel.startswith(_EXCLUDED):
            continue
        if not path.name.endswith(_SOURCE_SUFFIXES):
            raise BNCourseError(f"refusing to build the autograder: {rel} is not part of the package's build "
                                "(only its .py sources go into the grading oracle)")
        files[rel] = path.read_bytes()
    return files


def _requirements_txt(pinned: bool = True) -> bytes:
    """The package's run-time requirements but torch (installed first, from the CPU index):
    pinned to the installed versions, or (``pinned=False``) as the package states them, for
    a container whose Python the pinned versions do not support."""
    lines = []
    for req in importlib.metadata.requires("bncourse") or []:
        if "extra ==" in req:
            continue
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        if name.lower() == "torch":
            continue
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}" if pinned else req)
        except importlib.metadata.PackageNotFoundError:
            lines.append(req)
    return ("\n".join(sorted(lines)) + "\n").encode("utf-8")


def zip_entries(assignment: Assignment, package_dir: Path | None = None) -> dict[str, bytes]:
    """Every entry of the autograder zip (name -> bytes), checked by :func:`_check_entries`."""
    student = student_package.package_files(package_dir, expected_outputs=False)
    oracle = oracle_files(package_dir)
    name, data = student_package.wheel(
        oracle, summary="Batch Normalization course — grading oracle for the Gradescope autograder (answers inside).")
    entries = {**SCRIPTS, CONFIG_FILE: assignment.to_json().encode("utf-8"),
               "requirements.txt": _requirements_txt(), "requirements-min.txt": _requirements_txt(pinned=False),
               f"{ORACLE}/{name}": data}
    entries |= {f"{STUDENT_BUILD}/{rel}": content for rel, content in student.items()}
    _check_entries(entries, student, oracle)
    return entries


def _check_entries(entries: Mapping[str, bytes], student: Mapping[str, bytes], oracle: Mapping[str, bytes]) -> None:
    """Refuse anything but the scripts, the settings, the student build and the oracle's wheel."""
    fixed = {*SCRIPTS, CONFIG_FILE, "requirements.txt", "requirements-min.txt"}
    for name, data in entries.items():
        where = f"refusing to build the autograder: the zip would hold {name}"
        if name.lower().endswith(".ipynb") or name.startswith("/") or ".." in name.split("/"):
            raise BNCourseError(f"{where} — notebooks and paths outside the zip never go in")
        if name in fixed:
            continue
        if name.startswith(f"{STUDENT_BUILD}/"):
            rel = name[len(STUDENT_BUILD) + 1:]
            if student.get(rel) != data or student_package.is_instructor_only(rel):
                raise BNCourseError(f"{where}, which is not a file of the student build")
            continue
        if re.fullmatch(rf"{ORACLE}/bncourse-[^/]+\.whl", name):
            with zipfile.ZipFile(io.BytesIO(data)) as whl:
                for member in whl.namelist():
                    if not (member.startswith("bncourse-") and ".dist-info/" in member) and member not in oracle:
                        raise BNCourseError(f"{where}, whose {member} is not a file of the grading oracle")
            continue
        raise BNCourseError(f"{where}, which is neither the student build nor the grading oracle")


def _write_zip(path: Path, entries: Mapping[str, bytes]) -> None:
    """Write ``entries`` to ``path`` atomically (reproducible: fixed dates, sorted; scripts 755)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=student_package.ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = ((0o100755 if name in SCRIPTS else 0o100644) & 0xFFFF) << 16
            zf.writestr(info, entries[name], compresslevel=9)
    atomic_write(path, buffer.getvalue())


def build_gradescope_zip(out: Path, notebooks: Sequence[str] = (), *, timeout: float = 60.0,
                         visibility: str = "visible", package_dir: Path | None = None) -> Path:
    """Build the Gradescope autograder zip at ``out``; returns ``out``.

    ``notebooks``: the course notebook(s) this assignment grades (one Gradescope assignment
    per notebook is usual: ``["03_forward_backward"]``); empty = the whole course, each
    uploaded notebook graded as the course notebook it is.

    Raises:
        BNCourseError: an unknown notebook or visibility, or something that must not ship
            (a notebook, a link, a file outside the package's build); no zip is written then.
    """
    known = sorted({e.notebook for e in all_exercises()})
    chosen = tuple(dict.fromkeys(n.removesuffix(".ipynb") for n in notebooks)) or tuple(known)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise BNCourseError(f"unknown notebook(s) {', '.join(unknown)}; course notebooks: {', '.join(known)}")
    if visibility not in VISIBILITIES:
        raise BNCourseError(f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
    if timeout <= 0:
        raise BNCourseError(f"timeout must be positive, not {timeout}")
    entries = zip_entries(Assignment(chosen, float(timeout), visibility), package_dir)
    _write_zip(Path(out), entries)
    return Path(out)

