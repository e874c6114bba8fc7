"""nbgrader source assignments from the instructor notebooks (``bncourse export --nbgrader DIR``).

Each instructor notebook ``notebooks/NN_topic.ipynb`` becomes one nbgrader assignment
``NN_topic`` holding one notebook, written where nbgrader's course directory keeps the
instructor's versions, ``{course_directory}/source/{assignment_id}/{notebook_id}.ipynb``
(https://nbgrader.readthedocs.io/en/stable/user_guide/philosophy.html)::

    DIR/source/03_forward_backward/03_forward_backward.ipynb
    DIR/source/03_forward_backward/<images the notebook links>

Copy ``DIR/source`` into the course directory, then nbgrader does the rest:
``nbgrader generate_assignment`` strips the solutions for the students, ``nbgrader
autograde`` runs their notebooks and scores the test cells (README, "nbgrader on
JupyterHub").

The cells carry nbgrader's cell metadata, schema version 3, under ``metadata.nbgrader``
(https://nbgrader.readthedocs.io/en/stable/contributor_guide/metadata.html and the schema
``nbgrader/nbgraderformat/v3.json``: ``schema_version``, ``grade``, ``solution``,
``locked``, ``task`` required-or-defaulted booleans; ``grade_id`` matching
``^[a-zA-Z0-9_-]*$``, unique in the notebook, present when any of them is true;
``points`` >= 0 only on grade cells):

- an ``exercise`` cell is an *autograded answer*: ``solution: true, grade: false``,
  ``grade_id`` = the exercise id.  Its source is the instructor's, with the course's
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers, which are nbgrader's own:
  ``ClearSolutions`` replaces each block with ``# YOUR CODE HERE`` / ``raise
  NotImplementedError()`` at the marker's indentation and keeps every other line.  A
  ``### HINT:`` line inside a block would go with it, so the export moves it just above the
  block's BEGIN marker (where the course's notebooks already put it): the student keeps it.
- a ``check`` cell is an *autograder test*: ``grade: true, locked: true``, ``points`` = the
  exercise's points in the registry, ``grade_id = "test-<id>"``.  Its code is
  ``check("<id>", <name>, strict=True)``, which prints the usual report and raises
  :class:`~bncourse.errors.CheckFailedError` (an ``AssertionError``, the diagnosis as
  message) unless every case passes: nbgrader gives a test cell whose output holds an
  error, or anything on stderr, 0 points and any other all its points (no partial credit,
  unlike ``bncourse grade``, which scores the passed fraction of the cases), so the cell
  sends stderr to stdout while the check runs (a student's warning is not a failure).  It
  imports ``check`` afresh, so a student's cell that defines its own ``check`` does not
  replace the course's.
- every other cell (the prose, the imports cell, the experiments) is *read-only*:
  ``locked: true``, ``grade_id = "cell-<cell id>"``.  nbgrader makes it non-editable in
  the student's copy and puts the instructor's source back before it autogrades.

What students never get, the export leaves out as the student edition does
(:func:`bncourse.authoring.release.student_notebook`): cells tagged ``instructor`` and
speaker notes are dropped, outputs and execution counts are cleared (``generate_assignment``
would clear them too), and the metadata is reduced to what the course needs; the notebook's
metadata says ``"bncourse": {"notebook": "NN_topic", "edition": "nbgrader"}``, so
``bncourse grade`` knows a submitted copy under any file name.

Autograding runs the whole notebook, experiments included, in the student's kernel, and
the student's code shares that kernel with the test cells: nbgrader is a convenience, not
a boundary.  For a class that may cheat, grade the collected notebooks with ``bncourse
grade`` too (each in the jail, only the exercise cells).

Bad input stops the export before anything is written, with a
:class:`~bncourse.errors.NotebookError` naming the notebook and cell: an exercise cell
without (well-formed) solution markers, a check cell that is not one ``check`` call, an
exercise of the registry without its exercise or check cell, or a line nbgrader would
misread as one of its delimiters (``BEGIN SOLUTION``, ``BEGIN HIDDEN TESTS``, ...) outside
a solution marker.  An existing, non-empty ``DIR`` is refused unless ``force``; with
``force`` the export's own files are replaced and nothing else in ``DIR`` is touched (so
``DIR`` may be the course directory itself).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bncourse import notebook_file
from bncourse.authoring import release
from bncourse.errors import BNCourseError, NotebookError
from bncourse.grading.registry import Exercise, exercises_for_notebook
from bncourse.notebook_file import atomic_write, cell_tags

__all__ = [
    "EDITION",
    "SCHEMA_VERSION",
    "SOURCE",
    "export",
    "grade_cell_source",
    "hints_outside_blocks",
    "nbgrader_notebook",
]

SCHEMA_VERSION = 3
"""nbgrader's cell metadata schema version the export writes (``nbgraderformat/v3.json``)."""

SOURCE = "source"
"""nbgrader's folder of the instructor versions of the assignments (``CourseDirectory.source_directory``)."""

EDITION = "nbgrader"
"""``metadata.bncourse.edition`` of an exported notebook."""

_DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
               "BEGIN MARK SCHEME", "END MARK SCHEME")
"""What nbgrader's ClearSolutions/ClearHiddenTests/ClearMarkScheme look for *anywhere* in a line."""

_GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
          points: int | None = None) -> dict[str, Any]:
    """One cell's ``metadata.nbgrader`` (schema version 3)."""
    meta: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "grade": grade, "solution": solution,
                            "locked": locked, "task": False, "grade_id": grade_id}
    if grade:
        meta["points"] = points
    return meta


def hints_outside_blocks(source: str) -> str:
    """``source`` with every ``### HINT:`` line inside a solution block moved just above the block.

    nbgrader's ClearSolutions removes whatever lies between the markers; the hint (prose, one
    line) belongs to the student.  The moved line gets the BEGIN marker's indentation.
    Lines outside the blocks are unchanged, so a notebook that already keeps its hints above
    the markers comes back identical.

    Raises:
        NotebookError: malformed markers (see :func:`bncourse.authoring.release.solution_blocks`).
    """
    lines = source.splitlines()
    out: list[str] = []
    pos = 0
    for block in release.solution_blocks(source):
        out += lines[pos : block.begin]
        inside = lines[block.begin + 1 : block.end]
        hints = [ln for ln in inside if ln.lstrip().startswith(release.HINT)]
        out += [block.indent + ln.lstrip() for ln in hints]
        out.append(lines[block.begin])
        out += [ln for ln in inside if ln not in hints]
        out.append(lines[block.end])
        pos = block.end + 1
    out += lines[pos:]
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def grade_cell_source(exercise: Exercise) -> str:
    """The code of an exercise's autograder test cell: the course's ``check``, strict.

    nbgrader scores a test cell with any output on stderr 0, so what the student's code writes
    there during the check (a warning, a debugging print) is shown on stdout instead.
    """
    return (
        "import contextlib, sys\n"
        "from bncourse.grading import check  # the course's check, whatever a cell above defined\n"
        "with contextlib.redirect_stderr(sys.stdout):  # a warning is not a failure\n"
        f"    check({json.dumps(exercise.id)}, {exercise.name}, strict=True)"
    )


def _checked_ids(source: str, where: str) -> list[str]:
    """Exercise ids of a check cell made only of ``check("id", fn)`` calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(f"{where}: check cell does not parse (line {exc.lineno}: {exc.msg})") from exc
    ids = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "check"
                and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
            ids.append(call.args[0].value)
        else:
            raise NotebookError(
                f"{where}: a check cell must hold only check(\"<id>\", <function>) calls, found "
                f"{ast.get_source_segment(source, stmt)!r}; move other code to a cell of its own"
            )
    return ids


def _delimiter_problems(cell: Any) -> list[str]:
    """Lines nbgrader would take for one of its delimiters but the course does not mark as one."""
    exact = (release.BEGIN, release.END) if "exercise" in cell_tags(cell) else ()
    return [
        f"line {n}: {line.strip()!r} contains {word!r}, which nbgrader reads as a delimiter"
        for n, line in enumerate(notebook_file.cell_source(cell).splitlines(), start=1)
        for word in _DELIMITERS
        if word in line and line.strip() not in exact
    ][:3]


def nbgrader_notebook(nb: Any, stem: str) -> Any:
    """The nbgrader source version of one instructor notebook (a new ``NotebookNode``).

    Args:
        nb: the instructor notebook.
        stem: its name, e.g. ``"03_forward_backward"`` (its exercises are the registry's for it).

    Raises:
        NotebookError: naming the notebook and the cell (1-based, in the instructor notebook):
            see the module docstring.
    """
    import nbformat

    name = f"{stem}.ipynb"
    unmarked = [(i, f"exercise cell has no {release.BEGIN!r} … {release.END!r} block")
                for i, cell in enumerate(nb.cells) if "exercise" in cell_tags(cell)
                and release.BEGIN not in (ln.strip() for ln in notebook_file.cell_source(cell).splitlines())]
    problems = unmarked + release.marker_problems(nb) + [
        (i, p) for i, cell in enumerate(nb.cells) for p in _delimiter_problems(cell)
    ]
    if problems:
        raise NotebookError(
            f"{name}: cannot export to nbgrader: "
            + "; ".join(dict.fromkeys(f"cell {i + 1}: {msg}" for i, msg in sorted(problems, key=lambda p: p[0])))
        )
    by_id = {e.id: e for e in exercises_for_notebook(stem)}
    source = release.student_notebook(nb, name=name)  # drops instructor cells and notes, clears outputs
    solved: dict[str, int] = {}
    tested: dict[str, int] = {}
    for index, cell in zip(release.kept_cells(nb), source.cells, strict=True):
        where = f"{name}: cell {index + 1}"
        tags = cell_tags(cell)
        if "exercise" in tags:
            defined = [n.name for n in ast.parse(nb.cells[index].source).body
                       if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in by_id]
            if not defined:
                raise NotebookError(
                    f"{where}: the exercise cell defines none of the exercises of {stem} "
                    f"({', '.join(sorted(by_id)) or 'none registered'})"
                )
            cell.source = hints_outside_blocks(nb.cells[index].source)
            cell.metadata["nbgrader"] = _meta(defined[0], solution=True)
            solved.update(dict.fromkeys(defined, index))
        elif "check" in tags:
            ids = _checked_ids(cell.source, where)
            unknown = [i for i in ids if i not in by_id]
            if len(ids) != 1 or unknown:
                raise NotebookError(
                    f"{where}: a check cell must check exactly one exercise of {stem}, found "
                    f"{ids or 'none'}" + (f" ({', '.join(unknown)} not registered for {stem})" if unknown else "")
                )
            exercise = by_id[ids[0]]
            cell.source = grade_cell_source(exercise)
            cell.metadata["nbgrader"] = _meta(f"test-{exercise.id}", grade=True, locked=True, points=exercise.points)
            tested[exercise.id] = index
        else:
            grade_id = f"cell-{cell.get('id') or index}"
            if not _GRADE_ID.match(grade_id):
                grade_id = f"cell-{index}"
            cell.metadata["nbgrader"] = _meta(grade_id, locked=True)
    missing = [f"{e} has no {what} cell" for e in by_id for what, seen in (("exercise", solved), ("check", tested))
               if e not in seen]
    if missing:
        raise NotebookError(f"{name}: cannot export to nbgrader: {'; '.join(missing)}")
    ids = [c.metadata["nbgrader"]["grade_id"] for c in source.cells]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise NotebookError(f"{name}: cannot export to nbgrader: duplicate nbgrader cell ids {duplicates}")
    source.metadata["bncourse"] = {"notebook": stem, "edition": EDITION}
    nbformat.validate(source)
    return source


def _check_target(out: Path, notebooks_dir: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BNCourseError(f"the output path {out} exists and is not a folder")
    if out.resolve().is_relative_to(notebooks_dir.resolve()):
        raise BNCourseError(f"the output folder {out} is inside the instructor notebooks folder {notebooks_dir}")
    if out.is_dir() and not force:
        present = sorted(p.relative_to(out).as_posix() for p in out.iterdir())
        if present:
            shown = ", ".join(present[:5]) + (f" and {len(present) - 5} more" if len(present) > 5 else "")
            raise BNCourseError(
                f"{out} is not empty ({shown}). Nothing was written. Choose an empty or new folder, or "
                "pass --force to write into it (the export's files are replaced, nothing else is touched)."
            )


def export(out: Path, notebooks_dir: Path = Path("notebooks"), notebooks: Sequence[str] | None = None,
           force: bool = False) -> list[Path]:
    """Write every instructor notebook as an nbgrader source assignment under ``out/source/``.

    Args:
        out: the export folder (an nbgrader course directory, or a folder to copy into one).
        notebooks_dir: the instructor notebooks (``NN_topic.ipynb``).
        notebooks: stems or file names of the notebooks to export (default: all).
        force: write into ``out`` even when it is not empty (only the export's files change).

    Returns:
        The notebooks written, ``out/source/<stem>/<stem>.ipynb``, in order.

    Raises:
        NotebookError: no notebooks, an unknown notebook, or one that cannot be exported
            (nothing is written then).
        BNCourseError: ``out`` is not empty (without ``force``), is a file, or lies inside
            ``notebooks_dir``.
    """
    out, notebooks_dir = Path(out), Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise NotebookError(f"no instructor notebooks folder at {notebooks_dir}")
    available = {p.stem: p for p in sorted(notebooks_dir.glob("*.ipynb"))}
    if not available:
        raise NotebookError(f"no notebooks (*.ipynb) in {notebooks_dir}")
    wanted = [Path(n).stem for n in notebooks] if notebooks else list(available)
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise NotebookError(f"no notebook {', '.join(unknown)} in {notebooks_dir} (there are: {', '.join(available)})")
    _check_target(out, notebooks_dir, force)
    files: dict[Path, bytes] = {}
    for stem in wanted:
        nb = notebook_file.read(available[stem])
        exported = nbgrader_notebook(nb, stem)
        folder = Path(SOURCE) / stem
        files[folder / f"{stem}.ipynb"] = release._serialize(exported)  # the student edition's bytes
        for ref in release.local_images(exported):
            image = (notebooks_dir / ref).resolve()
            if not image.is_relative_to(notebooks_dir.resolve()) or not image.is_file():
                raise NotebookError(f"{stem}.ipynb: image {ref!r} is not a file inside {notebooks_dir}")
            files[folder / image.relative_to(notebooks_dir.resolve())] = image.read_bytes()
    written = []
    for rel, data in files.items():
        target = out / rel
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise BNCourseError(f"{target} exists and is not a regular file; refusing to replace it")
        atomic_write(target, data)
        if rel.suffix == ".ipynb":
            written.append(target)
    return written
