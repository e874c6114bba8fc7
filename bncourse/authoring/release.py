"""The student edition: solutions stripped, instructor cells dropped, outputs cleared.

``bncourse release`` turns the instructor notebooks in ``notebooks/`` into the edition a
student works in (COURSE.md §5, CONTRIBUTING.md "Notebook anatomy")::

    build/student/
        README.md                  what is inside; set up (`make lab`, `make check`), fill in, hand in, update
        Makefile                   the two commands, on a .venv it creates in the folder
        notebooks/NN_topic.ipynb   one per instructor notebook
        notebooks/<images>         local images the markdown cells link to
        wheels/bncourse-<version>-py3-none-any.whl
                                   the student build of the package: no reference, solutions,
                                   mistakes, grader or authoring tools; expected outputs and
                                   mistake fingerprints as data (bncourse.authoring.student_package)
        .bncourse-release.json     sha256 of every file above (the release manifest)
    build/student.zip              the whole folder, for an LMS (reproducible bytes)

Nothing in the edition states an answer: before writing, the release scans the student
notebooks' code cells and the package's source for any statement of the reference, the
lessons' solutions or the notebooks' solution blocks (:mod:`bncourse.authoring.leaks`:
syntax trees compared with identifiers erased) and refuses, naming each one.

The transformation of one notebook (:func:`student_notebook`):

- in each cell tagged ``exercise``, every block from ``### BEGIN SOLUTION`` to
  ``### END SOLUTION`` becomes ``raise NotImplementedError("Hint: ...")`` at the marker's
  indentation, the hint being the block's ``### HINT:`` comment (a line of prose) if it
  has one; the signature, the docstring and every line outside the markers stay;
- cells tagged ``instructor`` and speaker-notes cells (slide type ``notes``) are dropped;
- every output and execution count is cleared, and metadata is reduced to what the
  course needs (tags, slideshow, Jupyter's display flags; the kernel's name and
  language), so no machine path or widget state from the instructor's run leaks; the
  written notebook's metadata says ``"bncourse": {"notebook": "NN_topic", "edition":
  "student"}`` so the grader knows a renamed submission.

A malformed marker, a marker outside an ``exercise`` cell, a hint that contains code, or
an exercise cell that no longer parses after stripping stops the release with a
:class:`~bncourse.errors.NotebookError` naming the notebook and cell: a release never
ships a notebook it cannot prove free of solutions.

Never overwriting a student's work (:func:`build`): when the output folder exists, every
file in it must be byte-identical (sha256) to the manifest of the previous release;
a changed file, an extra file (a student's notes, ``.ipynb_checkpoints``) or a non-empty
folder without a manifest makes the release refuse with a :class:`BNCourseError`
naming the files, unless ``force=True``.  Even with ``force``, a folder that contains
the instructor notebooks, the current directory, the home directory or a ``.git`` is
never replaced.  The edition is written to a temporary folder next to the target and
swapped in with two renames, so a reader never sees a half-written edition and a failed
release leaves the previous one untouched.

The linter (``bncourse lint-notebooks``) is :func:`bncourse.authoring.lint.lint_notebooks`;
it uses this module's marker rules, never the other way round.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import shutil
import string
import tempfile
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bncourse import __version__, notebook_file
from bncourse.authoring import leaks, student_package
from bncourse.errors import BNCourseError, NotebookError
from bncourse.notebook_file import atomic_write, cell_tags, sha256_file

__all__ = [
    "MANIFEST",
    "SolutionBlock",
    "answers",
    "build",
    "edition_leaks",
    "hint_problems",
    "kept_cells",
    "local_images",
    "marker_problems",
    "modified_files",
    "solution_blocks",
    "solution_sources",
    "strip_solutions",
    "student_notebook",
    "write_zip",
    "zip_path",
]

MANIFEST = ".bncourse-release.json"
"""Name of the release manifest in the edition folder."""

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"
NO_HINT_MESSAGE = "Replace this line with your code."

_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
_END_RE = re.compile(r"^(?P<indent>[ \t]*)### END SOLUTION[ \t]*$")
_HINT_RE = re.compile(r"^(?P<indent>[ \t]*)### HINT:(?P<text>.*)$")
# Anything that looks like a marker or a hint, however misspelt: a line matching these but
# not the exact forms above is reported, because release would not recognise it.
_LOOSE_MARKER_RE = re.compile(r"#+\s*(BEGIN|END)[\s_-]*SOLUTION", re.IGNORECASE)
_LOOSE_HINT_RE = re.compile(r"^\s*#{2,}\s*HINT\b", re.IGNORECASE)

MAX_HINT_CHARS = 200
_KEPT_CELL_METADATA = (
    "tags", "slideshow", "jupyter", "editable", "deletable", "collapsed", "scrolled", "raw_mimetype",
)
_KEPT_KERNELSPEC = ("name", "display_name", "language")
_KEPT_LANGUAGE_INFO = (
    "name", "version", "mimetype", "file_extension", "pygments_lexer", "codemirror_mode",
    "nbconvert_exporter",
)


# --------------------------------------------------------------------------- markers


@dataclass(frozen=True)
class SolutionBlock:
    """One ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block of an exercise cell.

    Attributes:
        begin: 0-based line index of the BEGIN marker in the cell's source.
        end: 0-based line index of the END marker.
        indent: the BEGIN marker's indentation (the ``raise`` line gets it).
        hint: the text of the block's ``### HINT:`` comment, or ``None``.
    """

    begin: int
    end: int
    indent: str
    hint: str | None

    def body(self, lines: list[str]) -> list[str]:
        """The solution lines strictly between the markers (without hint comments)."""
        return [ln for ln in lines[self.begin + 1 : self.end] if not _HINT_RE.match(ln)]


def _parse_blocks(source: str) -> tuple[list[SolutionBlock], list[str]]:
    """Solution blocks of ``source`` and the problems found while parsing them.

    A ``### HINT:`` line belongs to the block that follows it (after the previous END) or
    to the block it sits in; a block has at most one hint.
    """
    lines = source.splitlines()
    blocks: list[SolutionBlock] = []
    problems: list[str] = []
    open_at: int | None = None
    open_indent = ""
    hints: list[tuple[int, str]] = []  # hints seen since the previous END
    for i, line in enumerate(lines):
        begin, end, hint = _BEGIN_RE.match(line), _END_RE.match(line), _HINT_RE.match(line)
        if begin:
            if open_at is not None:
                problems.append(f"line {i + 1}: {BEGIN!r} inside the block opened on line {open_at + 1}")
                continue
            open_at, open_indent = i, begin.group("indent")
        elif end:
            if open_at is None:
                problems.append(f"line {i + 1}: {END!r} without a {BEGIN!r} before it")
                continue
            if end.group("indent") != open_indent:
                problems.append(
                    f"line {i + 1}: {END!r} is indented differently from its {BEGIN!r} on line {open_at + 1}"
                )
            if len(hints) > 1:
                problems.append(
                    f"line {hints[1][0] + 1}: a solution block has one {HINT!r} line, found {len(hints)}"
                )
            text = hints[0][1] if hints else None
            body = [ln for ln in lines[open_at + 1 : i] if ln.strip() and not _HINT_RE.match(ln)]
            if not body:
                problems.append(f"line {open_at + 1}: empty solution block")
            blocks.append(SolutionBlock(open_at, i, open_indent, text))
            open_at, hints = None, []
        elif hint:
            hints.append((i, hint.group("text").strip()))
        elif _LOOSE_MARKER_RE.search(line):
            problems.append(
                f"line {i + 1}: malformed solution marker {line.strip()!r} "
                f"(write exactly {BEGIN!r} / {END!r} on a line of its own)"
            )
        elif _LOOSE_HINT_RE.match(line):
            problems.append(f"line {i + 1}: malformed hint {line.strip()!r} (write {HINT!r} then the hint)")
    if open_at is not None:
        problems.append(f"line {open_at + 1}: {BEGIN!r} is never closed by {END!r}")
    if hints:
        problems.append(f"line {hints[0][0] + 1}: {HINT!r} after the last solution block belongs to no block")
    return blocks, problems


def solution_blocks(source: str) -> list[SolutionBlock]:
    """The solution blocks of an exercise cell's source; malformed markers raise NotebookError."""
    blocks, problems = _parse_blocks(source)
    if problems:
        raise NotebookError("; ".join(problems))
    return blocks


def _looks_like_code(text: str) -> bool:
    """True when ``text`` parses as Python beyond a single name or constant."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    body = tree.body
    if not body:
        return False
    return not (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, (ast.Name, ast.Constant))
    )


def hint_problems(source: str) -> list[str]:
    """Why the hints of an exercise cell are not one line of prose (empty if they are).

    A hint must be non-empty, at most ``MAX_HINT_CHARS`` characters, must not parse as
    Python code, and must not contain any solution line of its block of 6 or more
    characters (stripped): the hint ends up in the student edition.
    """
    blocks, _ = _parse_blocks(source)
    lines = source.splitlines()
    problems = []
    for block in blocks:
        if block.hint is None:
            continue
        where = f"hint of the block on line {block.begin + 1}"
        if not block.hint:
            problems.append(f"{where} is empty")
            continue
        if len(block.hint) > MAX_HINT_CHARS:
            problems.append(f"{where} has {len(block.hint)} characters; keep it under {MAX_HINT_CHARS}")
        if _looks_like_code(block.hint):
            problems.append(f"{where} is Python code, not prose: {block.hint!r}")
        for ln in block.body(lines):
            code = ln.strip()
            if len(code) >= 6 and code in block.hint:
                problems.append(f"{where} contains the solution line {code!r}")
    return problems


def marker_problems(nb: Any) -> list[tuple[int, str]]:
    """Marker and hint problems of a notebook, as ``(0-based cell index, message)``.

    Exercise cells must be code cells with at least one well-formed, balanced solution
    block and prose hints; no other cell (code, markdown or raw) may contain a marker.
    """
    problems: list[tuple[int, str]] = []
    for idx, cell in enumerate(nb.cells):
        source = cell.get("source", "")
        is_exercise = "exercise" in cell_tags(cell)
        has_marker = any(
            _LOOSE_MARKER_RE.search(ln) or _HINT_RE.match(ln) for ln in source.splitlines()
        )
        if not is_exercise:
            if has_marker:
                problems.append((idx, "solution marker or hint outside a cell tagged `exercise`"))
            continue
        if cell.get("cell_type") != "code":
            problems.append((idx, f"a {cell.get('cell_type')} cell is tagged `exercise`"))
            continue
        blocks, parse_problems = _parse_blocks(source)
        problems += [(idx, p) for p in parse_problems]
        if not blocks and not parse_problems:
            problems.append((idx, f"exercise cell has no {BEGIN!r} … {END!r} block"))
        problems += [(idx, p) for p in hint_problems(source)]
    return problems


def _literal(text: str) -> str:
    """A double-quoted Python string literal for ``text``."""
    return json.dumps(text, ensure_ascii=False)


def strip_solutions(source: str) -> str:
    """``source`` with every solution block replaced by ``raise NotImplementedError(...)``.

    The ``raise`` line has the BEGIN marker's indentation; its message is
    ``"Hint: <hint>"`` when the block has a ``### HINT:`` line, else
    ``NO_HINT_MESSAGE``.  Hint lines outside the markers stay as they are.
    """
    lines = source.splitlines()
    blocks = solution_blocks(source)
    out: list[str] = []
    pos = 0
    for block in blocks:
        out += lines[pos : block.begin]
        message = f"Hint: {block.hint}" if block.hint else NO_HINT_MESSAGE
        out.append(f"{block.indent}raise NotImplementedError({_literal(message)})")
        pos = block.end + 1
    out += lines[pos:]
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def _defined_names(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


# --------------------------------------------------------------------------- one notebook


def _clean_cell_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta[k] for k in _KEPT_CELL_METADATA if k in meta}


def _clean_notebook_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    if "kernelspec" in meta:
        kept["kernelspec"] = {k: meta["kernelspec"][k] for k in _KEPT_KERNELSPEC if k in meta["kernelspec"]}
    if "language_info" in meta:
        info = meta["language_info"]
        kept["language_info"] = {k: info[k] for k in _KEPT_LANGUAGE_INFO if k in info}
    return kept


def _for_students(cell: Any) -> bool:
    """Does this cell go into the student edition (not ``instructor``, not speaker notes)?"""
    slide_type = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
    return "instructor" not in cell_tags(cell) and slide_type != "notes"


def kept_cells(nb: Any) -> list[int]:
    """Indices, in the instructor notebook, of the cells its student edition keeps (in order)."""
    return [i for i, cell in enumerate(nb.cells) if _for_students(cell)]


def student_notebook(nb: Any, name: str = "notebook") -> Any:
    """The student edition of one instructor notebook (a new ``NotebookNode``).

    ``name`` is used in error messages.  Raises NotebookError on any marker problem (see
    :func:`marker_problems`) or when a stripped exercise cell no longer parses or no
    longer defines the names the instructor's cell defines.
    """
    import nbformat

    problems = marker_problems(nb)
    if problems:
        raise NotebookError(
            f"{name}: refusing to release, solution markers are not safe to strip: "
            + "; ".join(f"cell {i + 1}: {msg}" for i, msg in problems)
        )
    student = nbformat.from_dict(json.loads(json.dumps(nb)))  # deep copy
    cells = []
    for idx, cell in enumerate(student.cells):
        tags = cell_tags(cell)
        if not _for_students(cell):  # instructor cells and speaker notes are the lecturer's
            continue
        cell.metadata = nbformat.from_dict(_clean_cell_metadata(dict(cell.get("metadata", {}))))
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if "exercise" in tags:
                stripped = strip_solutions(cell.source)
                try:
                    before = _defined_names(ast.parse(cell.source))
                    after = _defined_names(ast.parse(stripped))
                except SyntaxError as exc:
                    raise NotebookError(
                        f"{name}: cell {idx + 1}: exercise cell does not parse after stripping "
                        f"the solution (line {exc.lineno}: {exc.msg})"
                    ) from exc
                if before != after:
                    raise NotebookError(
                        f"{name}: cell {idx + 1}: exercise cell defines {before} but its student "
                        f"version defines {after}; keep the def/class line outside the markers"
                    )
                cell.source = stripped
        cells.append(cell)
    student.cells = cells
    student.metadata = nbformat.from_dict(_clean_notebook_metadata(dict(student.get("metadata", {}))))
    try:
        nbformat.validate(student)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{name}: student edition is not a valid notebook: {exc.message}") from exc
    return student


_IMAGE_RES = (
    re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"),
    re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE),
)


def local_images(nb: Any) -> list[str]:
    """Relative paths of local files the markdown cells link as images (sorted, unique).

    URLs (``http:``, ``https:``, ``data:``), cell attachments (``attachment:``) and
    absolute paths are not local images.
    """
    found: set[str] = set()
    for cell in nb.cells:
        if cell.get("cell_type") != "markdown":
            continue
        for regex in _IMAGE_RES:
            for ref in regex.findall(cell.get("source", "")):
                if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", ref) or ref.startswith(("/", "#")):
                    continue
                found.add(ref.split("#", 1)[0].split("?", 1)[0])
    return sorted(found)


def _serialize(nb: Any) -> bytes:
    import nbformat

    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


# --------------------------------------------------------------------------- the edition


def _files_under(root: Path) -> list[str]:
    """Every file (or symlink, or special file) under ``root``, as sorted POSIX relative paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in dirnames:
            if (base / d).is_symlink():
                filenames.append(d)
        for f in filenames:
            found.append((base / f).relative_to(root).as_posix())
    return sorted(found)


def modified_files(out: Path) -> list[str]:
    """Files in an existing edition folder that a release may not silently replace.

    Without a readable manifest every file counts (the folder is not a previous release).
    With one: a file whose sha256 differs from the manifest, and any file the manifest
    does not list (e.g. a student's own notebook or ``.ipynb_checkpoints``).  Files of
    the manifest that were deleted do not count: nothing of the student's is lost.
    """
    if not out.exists():
        return []
    present = [p for p in _files_under(out) if p != MANIFEST]
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        recorded = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return present
    changed = []
    for rel in present:
        path = out / rel
        if rel not in recorded or path.is_symlink() or not path.is_file() or sha256_file(path) != recorded[rel]:
            changed.append(rel)
    return changed


def _is_within(inner: Path, outer: Path) -> bool:
    try:
        inner.relative_to(outer)
    except ValueError:
        return False
    return True


def _check_target(out: Path, notebooks_dir: Path) -> None:
    """Refuse targets that a release must never replace, even with ``force``."""
    out_r, nb_r = out.resolve(), notebooks_dir.resolve()
    if _is_within(out_r, nb_r):
        raise BNCourseError(f"the output folder {out} is inside the instructor notebooks folder {notebooks_dir}")
    protected = {"the instructor notebooks": nb_r, "the current directory": Path.cwd().resolve(),
                 "your home directory": Path.home().resolve()}
    for what, path in protected.items():
        if _is_within(path, out_r):
            raise BNCourseError(f"refusing to write the student edition to {out}: it contains {what}")
    if (out_r / ".git").exists():
        raise BNCourseError(f"refusing to write the student edition to {out}: it holds a .git repository")
    if out.exists() and not out.is_dir():
        raise BNCourseError(f"the output path {out} exists and is not a folder")


def _render_template(name: str, **values: str) -> str:
    template = resources.files("bncourse.authoring").joinpath(f"templates/{name}").read_text(encoding="utf-8")
    return string.Template(template).substitute(version=__version__, **values)


def _render_readme(notebooks: list[tuple[str, str]], wheel: str) -> str:
    listing = "\n".join(f"- `notebooks/{fname}` — {title}" for fname, title in notebooks)
    return _render_template("student_README.md", notebooks=listing or "- (no notebooks)", wheel=wheel)


def _title(nb: Any, fallback: str) -> str:
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            for line in cell.get("source", "").splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def solution_sources(sources: list[Path]) -> list[tuple[str, str]]:
    """``(where, code)`` of every ``### BEGIN SOLUTION`` block of the instructor notebooks."""
    found = []
    for path in sources:
        nb = notebook_file.read(path)
        for i, cell in enumerate(nb.cells):
            if cell.get("cell_type") != "code":
                continue
            lines = cell.source.splitlines()
            for block in solution_blocks(cell.source):
                found.append((f"{path.name} cell {i}", textwrap.dedent("\n".join(block.body(lines)))))
    return found


def answers(sources: list[Path], package_dir: Path | None = None) -> dict[str, str]:
    """The statements of every answer (:mod:`bncourse.authoring.leaks`): the reference, the
    lessons' solutions and the solution blocks of the instructor notebooks ``sources``."""
    import bncourse

    root = package_dir or Path(bncourse.__file__).resolve().parent
    code = [(f"bncourse/{rel}", text) for rel, text in leaks.python_files(root)
            if rel.startswith("reference/") or rel.endswith("/solutions.py")]
    found = leaks.answer_statements(code)
    for fp, where in leaks.answer_statements(solution_sources(sources), whole=True).items():
        found.setdefault(fp, where)
    return found


def edition_leaks(answer_statements: dict[str, str], notebooks: dict[str, Any],
                  package: dict[str, bytes], source_cells: dict[str, list[int]] | None = None) -> list[leaks.Leak]:
    """Statements of an answer in the student notebooks' code cells or the student package.

    ``source_cells``: per notebook, :func:`kept_cells` of its instructor notebook, so that a
    leak names the cell the author must edit (else the student edition's index).
    """
    where = source_cells or {}
    code = [(f"{name} cell {where[name][i] if name in where else i}", cell.source) for name, nb in notebooks.items()
            for i, cell in enumerate(nb.cells) if cell.get("cell_type") == "code"]
    code += [(rel, data.decode("utf-8")) for rel, data in package.items() if rel.endswith(".py")]
    return leaks.find_leaks(answer_statements, code)


def _write_edition(root: Path, notebooks_dir: Path, sources: list[Path]) -> dict[str, str]:
    """Write the edition into the empty folder ``root``; return relative path -> sha256.

    Raises:
        NotebookError: a statement of an answer would ship (naming where and which answer).
    """

    written: dict[str, bytes] = {}
    listing = []
    students: dict[str, Any] = {}
    source_cells: dict[str, list[int]] = {}
    for path in sources:
        nb = notebook_file.read(path)
        student = student_notebook(nb, name=path.name)
        student.metadata["bncourse"] = {"notebook": path.stem, "edition": "student"}
        students[path.name] = student
        source_cells[path.name] = kept_cells(nb)
        written[f"notebooks/{path.name}"] = _serialize(student)
        listing.append((path.name, _title(nb, path.stem)))
        for ref in local_images(student):
            src = (notebooks_dir / ref).resolve()
            if not _is_within(src, notebooks_dir.resolve()):
                raise NotebookError(f"{path.name}: image {ref!r} lies outside {notebooks_dir}; keep images in it")
            if not src.is_file():
                raise NotebookError(f"{path.name}: image {ref!r} does not exist in {notebooks_dir}")
            written[f"notebooks/{src.relative_to(notebooks_dir.resolve()).as_posix()}"] = src.read_bytes()
    package = student_package.package_files()
    found = edition_leaks(answers(sources), students, package, source_cells)
    if found:
        shown = "; ".join(str(leak) for leak in found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise NotebookError(
            f"the student edition would contain {len(found)} statement(s) of an answer: {shown}. "
            "Call the student's own function (best_available) or a stand-in of bncourse.oracle instead."
        )
    wheel_name, wheel_bytes = student_package.wheel(package)
    written[f"wheels/{wheel_name}"] = wheel_bytes
    written["Makefile"] = _render_template("student_Makefile", wheel=wheel_name).encode("utf-8")
    written["README.md"] = _render_readme(listing, wheel_name).encode("utf-8")
    hashes = {}
    for rel, data in sorted(written.items()):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        hashes[rel] = hashlib.sha256(data).hexdigest()
    manifest = {"bncourse_version": __version__, "files": hashes}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return hashes


def _refuse(out: Path, changed: list[str]) -> None:
    shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
    raise BNCourseError(
        f"{out} holds files that differ from the previous release (a student's work?): {shown}. "
        "Nothing was written. Move them away, choose another --out, or pass --force to replace them."
    )


def build(out: Path, notebooks_dir: Path = Path("notebooks"), force: bool = False) -> Path:
    """Build the student edition of ``notebooks_dir/*.ipynb`` in the folder ``out``.

    Args:
        out: the edition folder (created; replaced if it holds an unmodified previous
            release, or anything at all when ``force``).
        notebooks_dir: the instructor notebooks (``NN_topic.ipynb``).
        force: replace ``out`` even if files in it were modified or added.

    Returns:
        ``out``.

    Raises:
        NotebookError: no notebooks, or a notebook whose solutions cannot be stripped safely.
        BNCourseError: ``out`` holds modified or unknown files (without ``force``), or is a
            folder a release must never replace (see the module docstring).
    """
    out, notebooks_dir = Path(out), Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise NotebookError(f"no instructor notebooks folder at {notebooks_dir}")
    sources = sorted(notebooks_dir.glob("*.ipynb"))
    if not sources:
        raise NotebookError(f"no notebooks (*.ipynb) in {notebooks_dir}")
    _check_target(out, notebooks_dir)
    if not force:
        changed = modified_files(out)
        if changed:
            _refuse(out, changed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    old: Path | None = None
    try:
        _write_edition(tmp, notebooks_dir, sources)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "edition")
            if not force:  # a save between the first check and the move is caught here
                changed = modified_files(old / "edition")
                if changed:
                    os.replace(old / "edition", out)
                    _refuse(out, changed)
        os.replace(tmp, out)
    except BaseException:
        if old is not None and (old / "edition").exists() and not out.exists():
            os.replace(old / "edition", out)
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.chmod(out, 0o755)  # mkdtemp creates 0o700 folders
    write_zip(out)
    return out


def zip_path(out: Path) -> Path:
    """Where the zip of the edition ``out`` goes: next to it, ``<out>.zip``."""
    return out.parent / f"{out.name}.zip"


def write_zip(out: Path) -> Path:
    """Zip the edition folder ``out`` (under a top folder of its name) into :func:`zip_path`.

    For an LMS upload; reproducible (sorted entries, fixed timestamps), written atomically.
    """
    files = {f"{out.name}/{rel}": (out / rel).read_bytes() for rel in _files_under(out)}
    target = zip_path(out)
    atomic_write(target, student_package.reproducible_zip(files))
    return target
