"""Gradebook files an LMS imports, from a graded class: ``bncourse grade --gradebook canvas|moodle|csv``.

Instructor-only, like the grader (:data:`bncourse.authoring.student_package.INSTRUCTOR_ONLY`).
Each file is ``OUT/gradebook-<format>.csv`` (UTF-8, comma-separated, a header row).

**Grade items (columns).**  ``--assignment NAME`` (default ``"bncourse total"``) is one column
holding each student's total over every notebook graded in the run; ``--assignment
SOURCE=NAME`` (repeatable) is one column holding the points of one notebook
(``03_forward_backward=Homework 3``) or one exercise (``batchnorm_forward=BN forward``).  Name
the columns as the LMS's grade items are named, so the import updates them.  Given only
``SOURCE=NAME`` items, there is no total column.  A cell is a student's points on the item's
exercises (an exercise they did not solve counts 0); it is empty when the student has no
file for the item (missing) or their file is in a conflict (two files claim one notebook).
Refused before grading, naming the options: two items with one column name (ignoring case),
an item named like one of the file's identity columns, an empty name, an unknown SOURCE, and
for Canvas a name containing ``Current Score``, ``Final Score``, ``Current Points``, ``Final
Points``, ``Current Grade`` or ``Final Grade`` (Canvas's importer drops such trailing columns
as its own computed ones).

**Canvas** (``gradebook-canvas.csv``), the layout of Canvas's own gradebook export, which its
import reads back: header ``Student, ID, SIS User ID, SIS Login ID, Section, <items>``; a second
row ``Points Possible`` with each item's maximum (Canvas sets the points possible of an
assignment it creates from a new column from it); then one row per roster student: name
(Canvas's "Last, First"), the Canvas user ``ID`` (the roster's ``id`` column), SIS User ID,
SIS Login ID, section.  Canvas finds the student by ID, then SIS User ID, then SIS Login ID,
then the name; a row with none of these is left out (and named).  A column whose name is an
existing assignment's (or ``Name (assignment id)`` as Canvas exports it) updates it; any other
creates an assignment.  An empty cell where the student has no score yet is no change (the
importer compares each cell with the current score; look at Canvas's review page before saving
if a missing student already has a score entered by hand).  Import: Grades, Import (in older
versions, the gradebook's Actions menu), choose the file, Upload Data, review the changes, Save
Changes.  Sources:

* Ohio State's CarmenCanvas guide "Import a CSV file into Carmen Grades" — required columns
  Student Name or Student ID or SIS User ID, then SIS Login ID, Section, Assignment Name; new
  columns create assignments; an uploaded score overwrites an existing one:
  https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
* VCU's Canvas "Gradebook Action Menu" (export/import, read-only computed columns):
  https://ts.vcu.edu/askit/teaching-and-learning/canvas/faculty/grading-faculty/gradebook-action-menu-faculty/
* Canvas's importer source, ``GradebookImporter`` (header ``Student``, ``ID``, optional ``SIS
  User ID``/``SIS Login ID``, then ``Section``; a row starting ``Points Possible`` sets points
  possible; student looked up by ID, SIS ids, then name; trailing ``Current Score|...|Final
  Grade`` columns dropped):
  https://github.com/instructure/canvas-lms/blob/master/lib/gradebook_importer.rb

**Moodle** (``gradebook-moodle.csv``): identity columns ``Email address``, ``ID number``,
``Username`` (those the roster fills for every row written; the first of them that the roster
has is always there and rows without it are left out, named), then one column per item.  In
Moodle: Grades, Import, CSV file (Moodle 3.x: Grade administration, Import, CSV file), choose
the file, Upload grades; under "Identify user by" set Map from ``Email address`` to ``Email
address`` (or ``ID number`` to ``ID number``, ``Username`` to ``Username``); under "Grade item
mappings" map each item column to its grade item (or a new grade item); Upload grades.  Only
students with a grade are written: Moodle records an empty cell as "no grade" (it would clear
a grade entered by hand), and its importer aborts on a row whose user it cannot find, or
misattributes a row whose identifier is blank, so no such row is written.  Emails are written
exactly as in the roster (Moodle compares them case-sensitively).  Sources:

* MoodleDocs "Grade import": https://docs.moodle.org/311/en/Grade_import (CSV import, the
  Map from / Map to identifiers email address and ID number, case-sensitive emails)
* Moodle's importer, ``grade/import/csv/classes/load_data.php`` (the user fields a row can be
  mapped by: ``userid``, ``useridnumber``, ``useremail``, ``username``; ``''`` or ``-`` is "no
  grade"; an unknown user aborts the import):
  https://github.com/moodle/moodle/blob/main/grade/import/csv/classes/load_data.php

**csv** (``gradebook-csv.csv``): ``id`` (the student's key: the roster's, else the
submission's name), then one column per item; every student, missing ones with empty cells.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bncourse.errors import BNCourseError
from bncourse.grading.registry import Exercise, all_exercises
from bncourse.grading.roster import Roster, RosterEntry
from bncourse.notebook_file import atomic_write

__all__ = [
    "CANVAS_IDENTITY", "CANVAS_POINTS_POSSIBLE", "DEFAULT_ASSIGNMENT", "FORMATS", "MOODLE_IDENTITY",
    "GradeItem", "Table", "build_table", "plan_items", "require_roster", "write_gradebooks",
]

FORMATS = ("canvas", "moodle", "csv")
DEFAULT_ASSIGNMENT = "bncourse total"
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_POSSIBLE = "Points Possible"
MOODLE_IDENTITY = (("Email address", "email"), ("ID number", "sis_id"), ("Username", "login"))
CSV_IDENTITY = ("id",)
_CANVAS_COMPUTED = re.compile(r"Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade")
_IDENTITY_COLUMNS = {"canvas": CANVAS_IDENTITY, "moodle": tuple(c for c, _ in MOODLE_IDENTITY),
                     "csv": CSV_IDENTITY}


@dataclass(frozen=True)
class GradeItem:
    """One gradebook column: ``source`` ``None`` (every notebook graded), a notebook or an exercise id."""

    column: str
    source: str | None
    option: str

    def exercises(self, graded_notebooks: Iterable[str]) -> list[Exercise]:
        """The exercises whose points the column sums."""
        if self.source is None:
            wanted = set(graded_notebooks)
            return [e for e in all_exercises() if e.notebook in wanted]
        return [e for e in all_exercises() if self.source in (e.notebook, e.id)]

    def notebooks(self, graded_notebooks: Iterable[str]) -> set[str]:
        """The notebooks a student needs a file of for the cell not to be empty."""
        return {e.notebook for e in self.exercises(graded_notebooks)}


@dataclass
class Table:
    """A gradebook file's rows (header first) and the students it leaves out, with the reason."""

    fmt: str
    rows: list[list[str]]
    left_out: list[str] = field(default_factory=list)

    @property
    def students(self) -> int:
        """How many student rows (not the header, nor Canvas's Points Possible row)."""
        return len(self.rows) - (2 if self.fmt == "canvas" else 1)


def require_roster(formats: Iterable[str], roster: Roster | None) -> None:
    """Raise unless a class-list roster is given for the LMS formats (``canvas``, ``moodle``).

    Raises:
        BNCourseError: naming the format that needs it.
    """
    lms = [f for f in formats if f in ("canvas", "moodle")]
    if lms and (roster is None or not roster.class_list):
        raise BNCourseError(
            f"--gradebook {lms[0]} needs --roster with the class list (the LMS's ids, emails or logins: e.g. its "
            "gradebook export), so that each row names a student the LMS knows")


def plan_items(options: Sequence[str], formats: Sequence[str]) -> list[GradeItem]:
    """The grade items of ``--assignment`` options (default: one total column), checked.

    Raises:
        BNCourseError: an unknown format or SOURCE, an empty name, or a column collision
            (two items, or an item and an identity column of one of ``formats``, with one name).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise BNCourseError(f"unknown gradebook format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    exercises = all_exercises()
    sources = {e.notebook for e in exercises} | {e.id for e in exercises}
    items = []
    for option in options or [DEFAULT_ASSIGNMENT]:
        source: str | None = None
        column = option.strip()
        if "=" in option:
            left, _, right = option.partition("=")
            if left.strip() not in sources:
                notebooks = sorted({e.notebook for e in exercises})
                raise BNCourseError(
                    f"--assignment {option!r}: no notebook or exercise is named {left.strip()!r} (SOURCE=NAME takes "
                    f"a notebook, one of {', '.join(notebooks)}, or an exercise id)")
            source, column = left.strip(), right.strip()
        if not column:
            raise BNCourseError(f"--assignment {option!r}: the gradebook column needs a name")
        items.append(GradeItem(column, source, option))
    seen: dict[str, GradeItem] = {}
    for item in items:
        other = seen.get(item.column.casefold())
        if other is not None:
            raise BNCourseError(
                f"gradebook column collision: --assignment {other.option!r} and --assignment {item.option!r} both "
                f"name the column {item.column!r}; give each notebook or exercise its own column name")
        seen[item.column.casefold()] = item
        for fmt in formats:
            clash = next((c for c in _IDENTITY_COLUMNS[fmt] if c.casefold() == item.column.casefold()), None)
            if clash is not None:
                raise BNCourseError(
                    f"gradebook column collision: --assignment {item.option!r} names the column {item.column!r}, "
                    f"which is the {fmt} file's identity column {clash!r}; choose another name")
        computed = _CANVAS_COMPUTED.search(item.column) if "canvas" in formats else None
        if computed is not None:
            raise BNCourseError(
                f"--assignment {item.option!r}: Canvas's import drops columns named like its computed "
                f"{computed.group(0)!r} columns; choose another name")
    return items


def _num(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _cells(items: Sequence[GradeItem], records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, list[str]], list[str]]:
    """Each student's cell per item, and each item's maximum."""
    graded = {r["notebook"] for r in records if isinstance(r.get("notebook"), str)}
    by_student: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_student.setdefault(rec["student"], []).append(rec)
    plans = [(item, {e.id for e in item.exercises(graded)}, item.notebooks(graded)) for item in items]
    maxima = [_num(sum(e.points for e in item.exercises(graded))) for item in items]
    cells: dict[str, list[str]] = {}
    for student, recs in by_student.items():
        row = []
        for item, ids, notebooks in plans:
            touching = [r for r in recs if not r.get("conflict")
                        and (item.source is None or r.get("notebook") in notebooks)]
            points = sum(float(res["points"]) for r in touching for res in r.get("results", [])
                         if res.get("exercise") in ids)
            row.append(_num(points) if touching else "")
        cells[student] = row
    return cells, maxima


def _students(records: Sequence[Mapping[str, Any]], roster: Roster | None) -> list[RosterEntry]:
    """Who gets a row: the class list in its order, else every graded student by name."""
    if roster is not None and roster.class_list:
        return list(roster.entries)
    return [RosterEntry(key=s, line=0) for s in sorted({r["student"] for r in records})]


def build_table(
    fmt: str, items: Sequence[GradeItem], records: Sequence[Mapping[str, Any]], roster: Roster | None
) -> Table:
    """The rows of one gradebook file (rules in the module docstring): a pure function of the
    grader's records (``report.json``'s ``submissions``) and the roster.

    Raises:
        BNCourseError: ``canvas``/``moodle`` without a class-list roster, or a Moodle roster
            with no email, ID number or username column.
    """
    require_roster([fmt], roster)
    cells, maxima = _cells(items, records)
    columns = [item.column for item in items]
    empty = [""] * len(items)
    students = _students(records, roster)
    if fmt == "csv":
        return Table(fmt, [list(CSV_IDENTITY) + columns] + [[e.key, *cells.get(e.key, empty)] for e in students])
    assert roster is not None
    if fmt == "canvas":
        table = Table(fmt, [[*CANVAS_IDENTITY, *columns], [CANVAS_POINTS_POSSIBLE, "", "", "", "", *maxima]])
        lms_id = "id" in roster.columns
        for e in students:
            ident = [e.name, e.id if lms_id else "", e.sis_id, e.login]
            if not any(ident):
                table.left_out.append(f"{e.label} (roster line {e.line}): no Canvas ID, SIS User ID, SIS Login ID or "
                                      "name to identify them in Canvas")
                continue
            table.rows.append([*ident, e.section, *cells.get(e.key, empty)])
        return table
    graded = [e for e in students if any(cells.get(e.key, empty))]
    present = [(col, attr) for col, attr in MOODLE_IDENTITY if any(getattr(e, attr) for e in roster.entries)]
    if not present:
        raise BNCourseError("--gradebook moodle needs a roster with an email, ID number (sis_id) or username (login) "
                            "column: Moodle identifies users by one of them")
    primary = present[0][1]
    table = Table(fmt, [])
    rows = []
    for e in graded:
        if not getattr(e, primary):
            table.left_out.append(f"{e.label} (roster line {e.line}): no {present[0][0]} to identify them in Moodle")
        else:
            rows.append(e)
    keep = [(col, attr) for col, attr in present if all(getattr(e, attr) for e in rows)]
    table.rows = [[*(col for col, _ in keep), *columns]]
    table.rows += [[*(getattr(e, attr) for _, attr in keep), *cells[e.key]] for e in rows]
    return table


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def write_gradebooks(
    out: Path, formats: Sequence[str], items: Sequence[GradeItem], records: Sequence[Mapping[str, Any]],
    roster: Roster | None,
) -> list[tuple[Path, Table]]:
    """Write ``out/gradebook-<format>.csv`` for each format (atomically); returns the paths and tables."""
    written = []
    for fmt in dict.fromkeys(formats):
        table = build_table(fmt, items, records, roster)
        path = Path(out) / f"gradebook-{fmt}.csv"
        atomic_write(path, _csv_text(table.rows))
        written.append((path, table))
    return written
