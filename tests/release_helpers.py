"""Shared by tests/test_release.py and tests/test_lint.py: a synthetic course notebook,
the leak rule, filling a student edition back with the instructor's solutions, and
:func:`execute` (a notebook run in a fresh kernel, for any test that needs one).

The synthetic notebook ``98_synthetic.ipynb`` follows CONTRIBUTING.md: a title, an imports
cell (which also registers the two synthetic exercises, so a kernel running the notebook
knows them), a function exercise with a hint, a class exercise with two solution blocks
and no hint, their check cells, an experiment through ``best_available``, an
``instructor`` cell and a markdown ``<details>`` answer.  ``executed=True`` adds the
outputs and execution counts an executed notebook would have (written by hand, so the
lint tests need no kernel).

The leak rule (:func:`leaked_lines`), independent of ``bncourse.authoring.release``'s parser:
solution lines are the lines between anything that looks like a BEGIN/END SOLUTION
marker (any number of ``#``, any case) in *any* cell of the instructor notebook.  A
solution line, stripped, leaks when it equals a stripped line of any cell (code,
markdown, raw) of the student edition, unless it is

- blank, punctuation only, or a bare keyword statement (``pass``, ``return``, ``else:``,
  ``try:``, ``finally:``, ``break``, ``continue``);
- ``return`` of bare names/attributes (``return out, cache``): the docstring's
  "Returns" says as much;
- also a line of the same instructor exercise cell outside its markers and hints (the
  signature, docstring or given code the student is meant to see).

There is no length threshold: a solution line shown anywhere else in the student edition
(a markdown code fence, an experiment cell) is reported, because it is one.  And no
``NotImplementedError`` message may contain a solution line of 6 or more characters.
"""

from __future__ import annotations

import contextlib
import copy
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from bncourse.grading.registry import register, unregister

STEM = "98_synthetic"
FN_ID = FN_NAME = "sum_of_squares"
CLS_ID = CLS_NAME = "Counter"

REGISTRY_CODE = textwrap.dedent(
    '''
    def _synthetic_exercises():
        from bncourse.grading.registry import Case, Exercise

        def solution_sumsq(x):
            return float((x * x).sum())

        class SolutionCounter:
            def __init__(self):
                self.n = np.float64(0)

            def step(self, x):
                self.n = self.n + np.sum(x, dtype=np.float64)
                return float(self.n)

        def call_counter(cls, inputs, namespace):
            c = cls()
            c.step(inputs["x"])
            return {"n": c.step(inputs["x"])}

        cases = lambda: [Case("x(3,)", {"x": np.arange(3.0)}), Case("x(5,) f32", {"x": np.ones(5, np.float32)})]
        return [
            Exercise(id="sum_of_squares", notebook="98_synthetic",
                     solution=solution_sumsq, cases=cases, fallback=solution_sumsq,
                     call=lambda fn, inputs, namespace: {"out": fn(inputs["x"])}),
            Exercise(id="Counter", notebook="98_synthetic",
                     solution=SolutionCounter, cases=cases, fallback=SolutionCounter, call=call_counter),
        ]
    '''
).strip()

IMPORTS_SOURCE = (
    "import numpy as np\n"
    "from bncourse.grading import best_available, check\n"
    "from bncourse.grading.registry import get_exercise, register\n\n"
    f"{REGISTRY_CODE}\n\n"
    "for _e in _synthetic_exercises():\n"
    "    try:\n"
    "        get_exercise(_e.id)\n"
    "    except ValueError:\n"
    "        register(_e)"
)

FN_SOURCE = '''def sum_of_squares(x):
    """Sum of the squares of the entries of x.

    x: (N,) array.  Returns a float: sum_i x_i ** 2.
    """
    ### HINT: square elementwise, then add everything up.
    ### BEGIN SOLUTION
    squares = x * x
    total = float(squares.sum())
    return total
    ### END SOLUTION'''

CLS_SOURCE = '''class Counter:
    """Adds up everything it sees."""

    def __init__(self):
        ### BEGIN SOLUTION
        self.n = 0.0
        ### END SOLUTION

    def step(self, x):
        """Add x.sum() to the count and return the count."""
        ### BEGIN SOLUTION
        self.n += float(np.sum(x))
        ### END SOLUTION
        return self.n'''

SOLUTION_LINES = ["squares = x * x", "total = float(squares.sum())", "self.n = 0.0", "self.n += float(np.sum(x))"]
INSTRUCTOR_SECRET = "print('instructor only: the answer is 42')"


def _cell(cell: Any, slide: str, *tags: str) -> Any:
    cell.metadata["slideshow"] = {"slide_type": slide}
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def instructor_notebook(executed: bool = True) -> Any:
    """The synthetic instructor notebook (valid nbformat 4.5, lint-clean when executed)."""
    cells = [
        _cell(new_markdown_cell("# 98 — Synthetic\n\nA notebook for the tests.\n\n## What you will learn\n- sums"), "slide"),
        _cell(new_code_cell(IMPORTS_SOURCE), "skip", "imports"),
        _cell(new_markdown_cell("## Sum of squares\n\n$\\sum_i x_i^2$"), "slide"),
        _cell(new_code_cell(FN_SOURCE), "fragment", "exercise"),
        _cell(new_code_cell(f'check("{FN_ID}", {FN_NAME})'), "-", "check"),
        _cell(new_code_cell(f'impl = best_available("{FN_ID}", {FN_NAME})\nprint(f"{{impl(np.arange(4.0)):.1f}}")'), "-"),
        _cell(new_code_cell(CLS_SOURCE), "skip", "exercise"),
        _cell(new_code_cell(f'check("{CLS_ID}", {CLS_NAME})'), "-", "check"),
        _cell(new_code_cell(INSTRUCTOR_SECRET), "skip", "instructor"),
        _cell(new_markdown_cell(
            "## Check your understanding\n\nWhat is the sum of squares of 0..3?\n\n"
            "<details><summary>Answer</summary>14</details>"), "slide"),
        _cell(new_code_cell("import matplotlib\nprint('figure')"), "-", "hide-output"),
    ]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python", "version": "3.11.7"},
    })
    if executed:
        passed = "{id}: 2/2 cases passed — 10/10 points\n  ✓ x(3,)      max rel err 0.0e+00\n  All cases match the expected outputs. Well done!\n"
        outputs = {
            4: [new_output("stream", name="stdout", text=passed.format(id=FN_ID))],
            5: [new_output("stream", name="stdout", text=f"[{FN_ID}] using your sum_of_squares (it passed its check)\n14.0\n")],
            7: [new_output("stream", name="stdout", text=passed.format(id=CLS_ID))],
            8: [new_output("stream", name="stdout", text="instructor only: the answer is 42\n")],
            10: [new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"})],
        }
        count = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                count += 1
                cell.execution_count = count
                cell.outputs = outputs.get(i, [])
                cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00.000000Z"}
    nbformat.validate(nb)
    return nb


def write(nb: Any, path: Any) -> Any:
    nbformat.write(nb, str(path))
    return path


def synthetic_exercises() -> list[Any]:
    """The two synthetic exercises, built in this process (not registered)."""
    import numpy as np

    ns: dict[str, Any] = {"np": np}
    exec(REGISTRY_CODE, ns)
    return ns["_synthetic_exercises"]()


@contextlib.contextmanager
def synthetic_exercises_registered() -> Iterator[None]:
    """The two synthetic exercises registered in this process for the ``with`` block."""
    exercises = synthetic_exercises()
    for e in exercises:
        register(e)
    try:
        yield
    finally:
        for e in exercises:
            unregister(e.id)


# ----------------------------------------------------------------------- the leak rule

_LOOSE_BEGIN = re.compile(r"#+\s*BEGIN\s*SOLUTION", re.IGNORECASE)
_LOOSE_END = re.compile(r"#+\s*END\s*SOLUTION", re.IGNORECASE)
_HINT = re.compile(r"^\s*#+\s*HINT\b", re.IGNORECASE)
_TRIVIAL = re.compile(
    r"^(?:[\W_]*|pass|return|break|continue|else:|try:|finally:"
    r"|return\s+\(?\s*[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*,?\s*\)?)$"
)
_RAISE_MSG = re.compile(r"raise\s+NotImplementedError\((.*)\)")


def split_solution(source: str) -> tuple[list[str], list[str]]:
    """(solution lines, other non-hint lines) of a cell, stripped, by the loose markers."""
    inside, solution, other = False, [], []
    for line in source.splitlines():
        if _LOOSE_BEGIN.search(line):
            inside = True
        elif _LOOSE_END.search(line):
            inside = False
        elif _HINT.match(line):
            continue
        elif inside:
            solution.append(line.strip())
        else:
            other.append(line.strip())
    return solution, other


def leaked_lines(instructor: Any, student: Any) -> list[str]:
    """Solution lines of ``instructor`` that appear in ``student`` (see the module docstring)."""
    student_lines = {ln.strip() for cell in student.cells for ln in cell.source.splitlines()}
    messages = [m for cell in student.cells for m in _RAISE_MSG.findall(cell.source)]
    leaks = []
    for cell in instructor.cells:
        solution, given = split_solution(cell.source)
        for line in solution:
            if _TRIVIAL.match(line) or line in given:
                continue
            if line in student_lines:
                leaks.append(line)
            if len(line) >= 6 and any(line in m for m in messages):
                leaks.append(f"{line} (in a NotImplementedError message)")
    return leaks


def fill_solutions(student: Any, instructor: Any) -> Any:
    """A copy of ``student`` whose exercise cells get the instructor's solution blocks back.

    Each ``raise NotImplementedError(...)`` line release wrote (in order) is replaced by the
    body of the matching solution block of the instructor's cell (matched by cell id).
    """
    by_id = {c.get("id"): c for c in instructor.cells}
    filled = copy.deepcopy(student)
    for cell in filled.cells:
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        blocks: list[list[str]] = []
        current: list[str] | None = None
        for line in by_id[cell.get("id")].source.splitlines():
            if _LOOSE_BEGIN.search(line):
                current = []
            elif _LOOSE_END.search(line):
                assert current is not None
                blocks.append(current)
                current = None
            elif current is not None:
                current.append(line)
        out, k = [], 0
        for line in cell.source.splitlines():
            if line.strip().startswith("raise NotImplementedError(") and k < len(blocks):
                out += blocks[k]
                k += 1
            else:
                out.append(line)
        assert k == len(blocks), f"cell {cell.get('id')}: {k} raise lines for {len(blocks)} solution blocks"
        cell.source = "\n".join(out)
    return filled


def without_markers(source: str) -> str:
    """``source`` with the BEGIN/END marker lines removed (what a filled cell should equal)."""
    return "\n".join(ln for ln in source.splitlines() if not (_LOOSE_BEGIN.search(ln) or _LOOSE_END.search(ln)))


def execute(nb: Any, cwd: Path, timeout: int = 300, kernel_name: str = "python3") -> tuple[Any, float]:
    """Run ``nb`` top to bottom in a fresh kernel of this environment, with ``cwd`` as its
    working directory; returns the executed notebook and the seconds from the first cell's
    start to the last cell's end (kernel start-up excluded, as in `make execute`'s budget)."""
    from datetime import datetime

    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            record_timing=True, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    stamps = [c.metadata.get("execution", {}) for c in nb.cells if c.cell_type == "code"]
    stamps = [s for s in stamps if "iopub.execute_input" in s and "shell.execute_reply" in s]
    if not stamps:
        return nb, 0.0
    start = datetime.fromisoformat(stamps[0]["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(stamps[-1]["shell.execute_reply"].replace("Z", "+00:00"))
    return nb, (end - start).total_seconds()
