"""``bncourse lint-notebooks``: check the instructor notebooks against the course contract.

The contract is CONTRIBUTING.md; this module checks what can be checked statically.
Problems are strings ``"path: cell N: message"`` (``N`` counts cells from 1, markdown
included, as JupyterLab shows them) or ``"path: message"`` for the whole notebook.

Per notebook:

- it is a valid nbformat 4 notebook named ``NN_topic.ipynb``;
- every cell has ``metadata.slideshow.slide_type`` in ``slide, subslide, fragment, skip,
  notes, -`` and only the course's tags (``imports, exercise, check, instructor,
  hide-output, nbval-ignore-output``);
- the first code cell, and only it, is tagged ``imports``;
- solution markers: every ``exercise`` cell is a code cell with balanced, well-formed
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` blocks and prose hints; no marker or hint
  anywhere else (:func:`bncourse.authoring.release.marker_problems`); the student edition of the
  notebook builds (each stripped exercise cell still parses and defines its name);
- every ``exercise`` cell defines exactly one function or class, imports nothing from
  ``torch``, ``bncourse.reference``, ``bncourse.nn`` or ``sklearn``, and the next code
  cell is a ``check`` cell holding exactly ``check("id", name)`` where ``id`` is a
  registered exercise of this notebook whose ``name`` the exercise cell defines; every
  ``check`` cell follows an exercise cell; no other code cell calls an exercise's
  function directly (experiments go through ``best_available``, or the student edition
  would stop with NotImplementedError);
- the notebook is executed top to bottom: the non-empty code cells have execution counts
  1, 2, 3, … in order; no output is an error or a traceback on stderr; the check cells'
  outputs show the instructor's solutions passing;
- no absolute machine path or kernel temp path (``/tmp/``, ``/home/``, ``/root/``,
  ``/work/``, ``/Users/``, ``C:\\Users``, ``ipykernel_1234``, ``site-packages``, ...) in
  any text output, in code, or in cell or notebook metadata; no ``sys.path`` or
  ``os.chdir`` manipulation (the edition imports ``bncourse`` as installed);
- every local image a markdown cell links exists next to the notebook.

Across the notebooks given: each exercise id is checked in exactly one notebook, and
every registered exercise whose ``notebook`` is among them appears there.  Registered
exercises whose notebook is not among the paths are not problems here; see
:func:`missing_notebooks`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bncourse import notebook_file
from bncourse.authoring.release import local_images, marker_problems, student_notebook
from bncourse.errors import BNCourseError, NotebookError
from bncourse.notebook_file import cell_tags

__all__ = [
    "KNOWN_TAGS",
    "SLIDE_TYPES",
    "lint_notebook",
    "lint_notebooks",
    "machine_paths",
    "missing_notebooks",
]

SLIDE_TYPES = frozenset({"slide", "subslide", "fragment", "skip", "notes", "-"})
KNOWN_TAGS = frozenset({"imports", "exercise", "check", "instructor", "hide-output", "nbval-ignore-output"})
FORBIDDEN_IMPORTS = ("torch", "bncourse.reference", "bncourse.nn", "sklearn")
_NAME_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
_MACHINE_PATH_RE = re.compile(
    r"(?<![\w.])(?:/tmp/|/var/folders/|/private/var/|/root/|/home/|/work/|/Users/|/run/user/"
    r"|/opt/|/usr/lib/|/usr/local/lib/|/mnt/)"
    r"|(?<![A-Za-z])[A-Za-z]:\\(?:Users|Windows|Program|Temp|AppData)"
    r"|ipykernel_\d+|site-packages|dist-packages",
    re.IGNORECASE,
)
_SYS_PATH_RE = re.compile(r"\bsys\.path\b|\bos\.chdir\b|^\s*%cd\b", re.MULTILINE)
_BINARY_MIME = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
_CHECK_FAIL_RE = re.compile(r"not implemented yet|^\s*✗", re.MULTILINE)


def machine_paths(text: str) -> list[str]:
    """The machine-specific paths in ``text`` (the matched fragments, unique, in order)."""
    return list(dict.fromkeys(m.group(0) for m in _MACHINE_PATH_RE.finditer(text)))


def _output_texts(output: Any) -> Iterable[str]:
    kind = output.get("output_type")
    if kind == "stream":
        yield str(output.get("text", ""))
    elif kind == "error":
        yield f"{output.get('ename', '')}: {output.get('evalue', '')}"
        yield "\n".join(output.get("traceback", []))
    else:
        for mime, data in output.get("data", {}).items():
            if mime in _BINARY_MIME:
                continue
            yield data if isinstance(data, str) else json.dumps(data)


def _check_call(source: str) -> tuple[str, str] | None:
    """``(id, name)`` when ``source`` is exactly one ``check("id", name)`` call."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "check"):
        return None
    if len(call.args) != 2 or call.keywords:
        return None
    first, second = call.args
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str) and isinstance(second, ast.Name)):
        return None
    return first.value, second.id


def _forbidden_imports(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for mod in modules:
            if any(mod == p or mod.startswith(p + ".") for p in FORBIDDEN_IMPORTS):
                found.append(mod)
    return sorted(set(found))


def _called_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {
        n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


class _Linter:
    """Lints one notebook; collects problems and the exercise ids it checks."""

    def __init__(self, path: Path, nb: Any) -> None:
        self.path, self.nb = path, nb
        self.problems: list[str] = []
        self.checked: dict[str, int] = {}  # exercise id -> 0-based cell index of its check

    def add(self, message: str, cell: int | None = None) -> None:
        where = f"{self.path}: cell {cell + 1}: " if cell is not None else f"{self.path}: "
        self.problems.append(where + message)

    def run(self) -> None:
        if not _NAME_RE.match(self.path.stem):
            self.add("notebook name should be NN_topic.ipynb (two digits, lowercase topic)")
        self.cells_metadata()
        self.imports_cell()
        self.markers()
        self.exercises_and_checks()
        self.execution()
        self.paths()
        for ref in local_images(self.nb):
            if not (self.path.parent / ref).is_file():
                self.add(f"markdown links the image {ref!r}, which does not exist next to the notebook")

    def cells_metadata(self) -> None:
        for i, cell in enumerate(self.nb.cells):
            slide = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
            if slide is None:
                self.add("no metadata.slideshow.slide_type", i)
            elif slide not in SLIDE_TYPES:
                self.add(f"slide_type {slide!r} is not one of {', '.join(sorted(SLIDE_TYPES))}", i)
            unknown = sorted(set(cell_tags(cell)) - KNOWN_TAGS)
            if unknown:
                self.add(f"unknown tags {unknown}; known tags: {', '.join(sorted(KNOWN_TAGS))}", i)

    def code_cells(self) -> list[int]:
        return [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]

    def imports_cell(self) -> None:
        code = self.code_cells()
        tagged = [i for i, c in enumerate(self.nb.cells) if "imports" in cell_tags(c)]
        if not code:
            self.add("no code cells")
            return
        if code[0] not in tagged:
            self.add("the first code cell must be tagged `imports`", code[0])
        for i in tagged:
            if i != code[0]:
                self.add("only the first code cell may be tagged `imports`", i)

    def markers(self) -> None:
        problems = marker_problems(self.nb)
        for i, msg in problems:
            self.add(msg, i)
        if not problems:
            try:
                student_notebook(self.nb, name=self.path.name)
            except NotebookError as exc:
                self.add(f"student edition cannot be built: {exc}")

    def exercises_and_checks(self) -> None:
        from bncourse.grading.registry import get_exercise

        cells = self.nb.cells
        code = self.code_cells()
        defined: dict[int, list[str]] = {}
        for i in code:
            if "exercise" not in cell_tags(cells[i]):
                continue
            try:
                tree = ast.parse(cells[i].source)
            except SyntaxError as exc:
                self.add(f"exercise cell does not parse (line {exc.lineno}: {exc.msg})", i)
                continue
            names = [
                n.name for n in tree.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            ]
            defined[i] = names
            if len(names) != 1:
                self.add(f"an exercise cell defines exactly one function or class, found {names}", i)
            bad = _forbidden_imports(tree)
            if bad:
                self.add(f"exercise cell imports {', '.join(bad)}; exercises use NumPy only", i)
            later = [j for j in code if j > i]
            if not later or "check" not in cell_tags(cells[later[0]]):
                self.add("exercise cell is not followed by a code cell tagged `check`", i)
        exercise_names: set[str] = {n for names in defined.values() for n in names}
        for pos, i in enumerate(code):
            tags = cell_tags(cells[i])
            if "check" not in tags:
                if "exercise" not in tags:
                    direct = sorted(_called_names(cells[i].source) & exercise_names)
                    if direct:
                        self.add(
                            f"calls the exercise function {', '.join(direct)} directly; the student "
                            "edition would stop here. Use impl = best_available(id, name)", i
                        )
                continue
            prev = code[pos - 1] if pos > 0 else None
            if prev is None or "exercise" not in cell_tags(cells[prev]):
                self.add("check cell does not follow an exercise cell", i)
            call = _check_call(cells[i].source)
            if call is None:
                self.add('a check cell holds exactly one call: check("exercise_id", function_name)', i)
                continue
            ex_id, name = call
            try:
                exercise = get_exercise(ex_id)
            except BNCourseError:
                self.add(f"unknown exercise id {ex_id!r} (not in bncourse.grading's registry)", i)
                continue
            if ex_id in self.checked:
                self.add(f"exercise id {ex_id!r} is already checked in cell {self.checked[ex_id] + 1}", i)
            self.checked.setdefault(ex_id, i)
            if exercise.notebook != self.path.stem:
                self.add(f"exercise {ex_id!r} is registered for notebook {exercise.notebook!r}", i)
            if exercise.name != name:
                self.add(f"check({ex_id!r}, ...) passes {name!r}: an exercise's id is the name of the function "
                         f"or class the student writes, so pass {ex_id}", i)
            if prev is not None and prev in defined and name not in defined[prev]:
                self.add(f"the exercise cell before defines {defined[prev]}, not {name!r}", i)
            outputs = "\n".join(t for o in cells[i].get("outputs", []) for t in _output_texts(o))
            if cells[i].get("execution_count") is not None and _CHECK_FAIL_RE.search(outputs):
                self.add(f"the instructor's solution does not pass check({ex_id!r}) (see the cell's output)", i)

    def execution(self) -> None:
        cells = self.nb.cells
        runnable = [i for i in self.code_cells() if cells[i].source.strip()]
        counts = [cells[i].get("execution_count") for i in runnable]
        if runnable and all(c is None for c in counts):
            self.add(f"not executed: run it top to bottom (make execute NB={self.path})")
            return
        for k, (i, count) in enumerate(zip(runnable, counts, strict=True), start=1):
            if count != k:
                self.add(
                    f"execution count {count}, expected {k}: outputs must come from one run top to "
                    f"bottom (make execute NB={self.path})", i
                )
                break
        for i in self.code_cells():
            for out in cells[i].get("outputs", []):
                if out.get("output_type") == "error":
                    self.add(f"error output: {out.get('ename')}: {out.get('evalue')}", i)
                elif out.get("output_type") == "stream" and out.get("name") == "stderr" and (
                    "Traceback (most recent call last)" in str(out.get("text", ""))
                ):
                    self.add("a traceback on stderr", i)

    def paths(self) -> None:
        found = machine_paths(json.dumps(self.nb.get("metadata", {})))
        if found:
            self.add(f"machine paths in notebook metadata: {found}")
        for i, cell in enumerate(self.nb.cells):
            found = machine_paths(json.dumps(cell.get("metadata", {})))
            if found:
                self.add(f"machine paths in cell metadata: {found}", i)
            if cell.cell_type != "code":
                continue
            if _SYS_PATH_RE.search(cell.source):
                self.add("changes sys.path or the working directory; import bncourse as installed", i)
            found = machine_paths(cell.source)
            if found:
                self.add(f"machine paths in the code: {found}", i)
            texts = [t for o in cell.get("outputs", []) for t in _output_texts(o)]
            found = machine_paths("\n".join(texts))
            if found:
                self.add(f"machine paths in the output: {found}", i)


def lint_notebook(path: Path) -> tuple[list[str], dict[str, int]]:
    """Problems of one notebook and the exercise ids it checks (id -> 0-based cell index)."""
    import nbformat

    path = Path(path)
    try:
        nb = notebook_file.read(path)
    except NotebookError as exc:  # any failure to read is a problem to report, not a crash
        return [str(exc)], {}
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        return [f"{path}: not a valid nbformat 4 notebook: {exc.message}"], {}
    linter = _Linter(path, nb)
    linter.run()
    return linter.problems, linter.checked


def lint_notebooks(paths: list[Path]) -> list[str]:
    """Problems of the instructor notebooks ``paths`` (see the module docstring for the rules).

    Returns an empty list when every notebook follows the contract.
    """
    from bncourse.grading.registry import all_exercises

    paths = [Path(p) for p in paths]
    problems: list[str] = []
    seen: dict[str, list[tuple[Path, int]]] = {}
    for path in paths:
        found, checked = lint_notebook(path)
        problems += found
        for ex_id, cell in checked.items():
            seen.setdefault(ex_id, []).append((path, cell))
    for ex_id, places in seen.items():
        for path, cell in places[1:]:
            first, first_cell = places[0]
            problems.append(
                f"{path}: cell {cell + 1}: exercise id {ex_id!r} is also checked in {first} cell "
                f"{first_cell + 1}; each id appears in exactly one notebook"
            )
    for path in paths:
        for exercise in all_exercises():
            if exercise.notebook == path.stem and exercise.id not in {
                i for i, places in seen.items() if any(p == path for p, _ in places)
            }:
                problems.append(
                    f"{path}: registered exercise {exercise.id!r} has no "
                    "exercise and check cells in this notebook"
                )
    return problems


def missing_notebooks(paths: list[Path]) -> dict[str, list[str]]:
    """Registered exercises whose notebook is not among ``paths``: notebook stem -> ids.

    While the course is being written some notebooks do not exist yet; their exercises
    are reported here rather than as lint problems.
    """
    from bncourse.grading.registry import all_exercises

    stems = {Path(p).stem for p in paths}
    missing: dict[str, list[str]] = {}
    for exercise in all_exercises():
        if exercise.notebook not in stems:
            missing.setdefault(exercise.notebook, []).append(exercise.id)
    return missing
