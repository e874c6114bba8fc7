"""A class roster for ``bncourse grade --roster``: who the students are, and which of them a file is.

Two kinds of roster CSV (a header row is required; column names are matched ignoring case,
spaces, ``_`` and ``-``; a UTF-8 byte-order mark is fine):

* **A file list** (the original format): exactly the columns ``student,path``.  Each row
  names the student of one file (``path`` relative to the roster's folder); a student may
  have several rows (several notebooks).  Files found under the SUBMISSION arguments keep
  the names their folders give them; nobody is reported missing.
* **A class list**: any other header with a column identifying each student.  Recognised
  columns (aliases in brackets; others, e.g. a gradebook's assignment columns, are ignored):

  ``id`` [``student id``, ``user id``, ``lms id``]: the LMS's own user id (Canvas: the ``ID``
  column of a gradebook export); ``student``: the id when there is no ``id`` column, else the
  student's display name (Canvas's ``Student`` column is "Last, First"); ``name`` [``full
  name``, or ``first name`` + ``last name``/``surname``]; ``email`` [``email address``,
  ``e-mail``]; ``sis_id`` [``sis user id``, ``id number``, ``idnumber``, ``student number``];
  ``login`` [``sis login id``, ``login id``, ``username``]; ``section``; ``path`` (optional:
  a file of this student, relative to the roster).

  A Canvas gradebook export (Grades, Export) and a Moodle grade export (plain text file) are
  both class lists as they are: Canvas's ``Points Possible`` row, and rows naming nobody
  (no id, email, login, SIS id or name, like Canvas's "Manual Posting" row), are skipped.

  The student's key in ``grades.csv`` and ``report.json`` is the first of id, email, login,
  SIS id that the row has.  Two rows sharing an id, an email, a login or a SIS id are an
  error naming both lines (compared ignoring case) — except rows of one student that each
  name a ``path`` and agree on everything else (one row per notebook).

**Matching a file to a class-list student** (:meth:`Roster.match`).  A file found under a
SUBMISSION has a name: its first folder below the SUBMISSION, or its file name without
``.ipynb`` (see :func:`bncourse.grading.grader.discover_submissions`).  That name, ignoring
case, is compared with every student's id, email, login, SIS id and the local part of the
email (``ann`` for ``ann@uni.edu``, only where no other student's email has the same local
part); besides, a name laid out as an LMS's bulk download names files is read: Canvas's
"Download Submissions" (``smithann_12345_678_03_forward_backward.ipynb``, or
``smithann_late_12345_...``: the number after the name is the Canvas user id, compared with
``id`` where the roster has an ``id`` column) and Moodle's "Download all submissions" (``Ann Smith_4321_assignsubmission_file_``: the
number is an assignment-specific participant number, not a user id, so the full name is
compared with ``name``, "Last, First" read as "First Last", only where it is unique in the roster).  A name that matches exactly
one student is theirs; a name matching none, or two different students, is **unmatched**:
listed with the reason, not graded as anyone's.  Class-list students with no file at all are
**missing**.

Canvas's zip layout is from its source, ``lib/content_zipper.rb`` (``get_filename``:
``[sortable name, "LATE", user id].join("_")`` with non-word characters removed, lower-cased,
then ``_<file id>_<file name>``):
https://github.com/instructure/canvas-lms/blob/master/lib/content_zipper.rb .
Moodle's folder layout ``First Last_<participant id>_assignsubmission_file_`` is what its
assignment download produces (``mod/assign``, ``download_submissions``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bncourse.errors import BNCourseError
from bncourse.notebook_file import read_upload

__all__ = ["Roster", "RosterEntry", "load_roster", "normalize_header"]

MAX_ROSTER_BYTES = 16 * 2**20

_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "student id", "user id", "lms id", "canvas id"),
    "student": ("student",),
    "name": ("name", "full name", "student name", "display name"),
    "first": ("first name", "firstname", "given name"),
    "last": ("last name", "lastname", "surname", "family name"),
    "email": ("email", "email address", "e mail", "e mail address", "mail"),
    "sis_id": ("sis id", "sis user id", "id number", "idnumber", "student number", "matriculation number"),
    "login": ("login", "sis login id", "login id", "username", "user name"),
    "section": ("section", "sections", "group"),
    "path": ("path",),
}
_FIELD_OF = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
_IDENTITY = ("id", "email", "login", "sis_id")
_LABEL = {"id": "id", "email": "email", "login": "login", "sis_id": "SIS id", "local": "email local part",
          "canvas": "Canvas download name (user id)", "moodle": "Moodle download folder (full name)"}
_CANVAS_DOWNLOAD = re.compile(r"^(?:[^\W\d_][^\W_]*_)?(?:late_)?(\d+)_\d+_.")
_MOODLE_DOWNLOAD = re.compile(r"^(.+?)_\d+_assign(?:submission|feedback)_\w+?_?$")


def normalize_header(name: str) -> str:
    """``"SIS User ID"`` -> ``"sis user id"``: lower case, ``_``/``-``/spaces collapsed to one space."""
    return re.sub(r"[\s_\-]+", " ", name.strip().lower()).strip()


@dataclass(frozen=True)
class RosterEntry:
    """One student of a roster (values as written in the roster, stripped)."""

    key: str
    line: int
    id: str = ""
    name: str = ""
    email: str = ""
    sis_id: str = ""
    login: str = ""
    section: str = ""
    paths: tuple[Path, ...] = ()

    @property
    def label(self) -> str:
        """How the summary names this student: ``key (name)``."""
        return f"{self.key} ({self.name})" if self.name and self.name != self.key else self.key


@dataclass
class Roster:
    """A parsed roster: its students, and whether it is a class list (see the module docstring)."""

    path: Path
    entries: list[RosterEntry]
    class_list: bool
    columns: frozenset[str] = frozenset()
    _index: dict[str, dict[str, list[RosterEntry]]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, dict[str, list[RosterEntry]]] = {k: {} for k in (*_IDENTITY, "local", "name")}
        for e in self.entries:
            for kind in _IDENTITY:
                value = getattr(e, kind)
                if value:
                    index[kind].setdefault(value.casefold(), []).append(e)
            if "@" in e.email:
                index["local"].setdefault(e.email.rsplit("@", 1)[0].casefold(), []).append(e)
            if e.name:
                index["name"].setdefault(_name_key(e.name), []).append(e)
        self._index = index

    def match(self, name: str) -> tuple[RosterEntry | None, str]:
        """The student a submission named ``name`` belongs to, and how (or why none).

        Returns ``(entry, "id")``-like pairs; ``(None, reason)`` when no student or more than
        one student matches.
        """
        hits: dict[str, tuple[RosterEntry, str]] = {}
        folded = name.strip().casefold()

        def add(index: str, key: str, how: str, unique: bool = False) -> None:
            found = self._index[index].get(key, [])
            if unique and len(found) > 1:
                return  # shared by several students: this rule cannot tell
            for e in found:
                hits.setdefault(e.key, (e, how))

        for kind in _IDENTITY:
            add(kind, folded, kind)
        add("local", folded, "local", unique=True)
        canvas = _CANVAS_DOWNLOAD.match(folded)
        if canvas and "id" in self.columns:  # the number is a Canvas user id: only an LMS id column has those
            add("id", canvas.group(1), "canvas")
        moodle = _MOODLE_DOWNLOAD.match(name.strip())
        if moodle:
            add("name", _name_key(moodle.group(1)), "moodle", unique=True)
        if len(hits) == 1:
            entry, how = next(iter(hits.values()))
            return entry, _LABEL[how]
        if hits:
            who = ", ".join(f"{e.label} (line {e.line}, by {_LABEL[how]})" for e, how in hits.values())
            return None, f"ambiguous: {name!r} matches {len(hits)} roster students: {who}"
        return None, (f"no roster student has the id, email, email local part, login or SIS id {name!r} "
                      f"(nor is it a Canvas or Moodle download name of one)")


def _name_key(name: str) -> str:
    """``"Smith, Ann"`` and ``"Ann  Smith"`` -> ``"ann smith"`` (Canvas lists "Last, First", Moodle "First Last")."""
    last, comma, first = name.replace("_", " ").partition(",")
    return " ".join(f"{first} {last}".split() if comma and "," not in first else name.split()).casefold()


def _columns(header: Sequence[str]) -> dict[str, int]:
    """Field name -> column index of the first column with a recognised name."""
    cols: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = _FIELD_OF.get(normalize_header(raw or ""))
        if name is not None and name not in cols:
            cols[name] = i
    return cols


def load_roster(path: Path) -> Roster:
    """Read a roster CSV (either kind; rules in the module docstring).

    Raises:
        BNCourseError: the roster cannot be read, has no column identifying students, a row
            identifies nobody, or two rows share an id, email, login or SIS id (naming the lines).
    """
    path = Path(path)
    try:
        text = read_upload(path, MAX_ROSTER_BYTES).decode("utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BNCourseError(f"roster {str(path)!r} cannot be read: {exc}") from exc
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise BNCourseError(f"roster {str(path)!r} is not a valid CSV file: {exc}") from exc
    if not table:
        raise BNCourseError(f"roster {str(path)!r} is empty (a header row is required)")
    header = table[0]
    cols = _columns(header)
    legacy = set(cols) == {"student", "path"} and len([h for h in header if h.strip()]) == 2
    if not legacy and not cols.keys() & {"id", "student", "email", "login", "sis_id"}:
        raise BNCourseError(
            f"roster {str(path)!r} needs the columns student,path (a file per row), or a class list with a "
            f"column identifying each student: id or student, email, login/username, sis_id/ID number "
            f"(it has {', '.join(header)})")
    id_field = "id" if "id" in cols else "student"

    def cell(row: Sequence[str], name: str) -> str:
        i = cols.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    entries: list[RosterEntry] = []
    for n, row in enumerate(table[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if legacy:
            student, file = cell(row, "student"), cell(row, "path")
            if not student or not file:
                raise BNCourseError(f"roster {str(path)!r} line {n}: student and path are both required")
            entries.append(RosterEntry(key=student, line=n, id=student, paths=(path.parent / file,)))
            continue
        first_cell = row[0].strip() if row else ""
        if first_cell.casefold() == "points possible" or (first_cell.casefold().startswith("points possible")
                                                           and not cell(row, id_field)):
            continue  # Canvas's second row: the assignments' points, nobody's grades
        name = cell(row, "name") if "name" in cols else ""
        if id_field == "id" and not name:
            name = cell(row, "student")
        if not name and ("first" in cols or "last" in cols):
            name = " ".join(p for p in (cell(row, "first"), cell(row, "last")) if p)
        values = {"id": cell(row, id_field), "email": cell(row, "email"), "login": cell(row, "login"),
                  "sis_id": cell(row, "sis_id")}
        key = next((values[k] for k in _IDENTITY if values[k]), "")
        if not key and not name:
            continue  # identifies nobody: e.g. Canvas's "Muted" / "Manual Posting" rows under the header
        if not key:
            raise BNCourseError(f"roster {str(path)!r} line {n}: no id, email, login or SIS id for "
                                f"{name or 'this row'!r} (every student needs one)")
        file = cell(row, "path")
        entries.append(RosterEntry(key=key, line=n, name=name, section=cell(row, "section"),
                                   paths=(path.parent / file,) if file else (), **values))
    entries = _merge(path, entries, legacy)
    return Roster(path=path, entries=entries, class_list=not legacy, columns=frozenset(cols))


def _merge(path: Path, entries: Iterable[RosterEntry], legacy: bool) -> list[RosterEntry]:
    """One entry per student; duplicates are errors except one student's rows of files."""
    merged: dict[str, RosterEntry] = {}
    owner: dict[tuple[str, str], RosterEntry] = {}
    for e in entries:
        same = merged.get(e.key)
        if same is not None:
            agree = (legacy or (e.paths and same.paths and
                                (e.id, e.email, e.login, e.sis_id, e.name) ==
                                (same.id, same.email, same.login, same.sis_id, same.name)))
            if not agree:
                raise BNCourseError(
                    f"roster {str(path)!r}: lines {same.line} and {e.line} both name the student {e.key!r}; "
                    "each student needs one row (or one row per notebook file, with a path and otherwise equal)")
            merged[e.key] = RosterEntry(**{**same.__dict__, "paths": same.paths + e.paths})
            continue
        for kind in _IDENTITY:
            value = getattr(e, kind)
            if not value or legacy:
                continue
            other = owner.get((kind, value.casefold()))
            if other is not None and other.key != e.key:
                raise BNCourseError(
                    f"roster {str(path)!r}: lines {other.line} and {e.line} have the same {_LABEL[kind]} "
                    f"{value!r} ({other.label} and {e.label}); ids, emails, logins and SIS ids must be unique")
            owner[(kind, value.casefold())] = e
        merged[e.key] = e
    return list(merged.values())
