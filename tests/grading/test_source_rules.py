"""The grader's static rules and the notebook's ``check`` give the same verdict on the same cell.

A student whose notebook says "10/10" must not get 0 from the grader for the same code:
``check`` reads the notebook cell that defines the function with the grader's own
:func:`~bncourse.grading.source_rules.static_findings`.  Prose in a docstring is not code
that names the course's files, in either place.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from bncourse.grading import check, get_exercise
from bncourse.grading.grader import Submission, grade_notebook
from bncourse.grading.source_rules import REFUSED_NAMES, static_findings
from tests.release_helpers import execute

EXERCISE = "standardize"
NOTEBOOK = "01_feature_scaling"

HONEST = '''
def standardize(x_train, x_test, eps=1e-8):
    """Per-feature standardization, as in the reference formula of the lecture."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std <= eps, np.ones_like(std), std)
    return (x_train - mean) / std, (x_test - mean) / std, mean, std
'''

# (name, extra line inside the function, what the finding says)
REFUSED = [
    ("__import__", "np_ = __import__('numpy')", "__import__ (not needed for a NumPy exercise)"),
    ("open", "_ = open", "open (not needed for a NumPy exercise)"),
    ("eval", "_ = eval('1')", "eval (not needed for a NumPy exercise)"),
    ("sys.modules", "import sys; _ = sys.modules", "sys.modules"),
    ("a course path", "_ = 'bncourse/reference/batchnorm.py'", "the string 'bncourse/reference/batchnorm.py'"),
    ("a module name", "_ = 'bncourse.reference'", "the string 'bncourse.reference'"),
    ("monkeypatching numpy", "np.allclose = lambda *a, **k: True", "assigns np.allclose (monkeypatching a module)"),
]


def _with_line(line: str) -> str:
    head, body = HONEST.split("    mean = ", 1)
    return f"{head}    {line}\n    mean = {body}"


def _defined_in_a_notebook_cell(source: str) -> Any:
    """``standardize`` as a Jupyter kernel defines it: compiled under the kernel's cell file
    name, in ``__main__``, the cell's lines in ``linecache``."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"/tmp/ipykernel_{os.getpid()}/{digest}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"__name__": "__main__", "np": np}
    exec(compile(source, filename, "exec"), ns)
    return ns["standardize"]


def _forbidden(exercise_id: str, source: str) -> list[str]:
    bad, tamper = static_findings(source, get_exercise(exercise_id).forbidden, {"np", "numpy"}, True)
    return bad + tamper


def test_an_honest_cell_passes_both_and_a_docstring_saying_reference_is_prose() -> None:
    assert _forbidden(EXERCISE, HONEST) == []
    result = check(EXERCISE, _defined_in_a_notebook_cell(HONEST), verbose=False, namespace={})
    assert result.passed and result.status == "checked", result.messages


@pytest.mark.parametrize(("name", "line", "finding"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_the_grader_refuses_check_refuses_with_the_same_words(name: str, line: str, finding: str) -> None:
    source = _with_line(line)
    found = _forbidden(EXERCISE, source)
    assert any(finding in f for f in found), found
    result = check(EXERCISE, _defined_in_a_notebook_cell(source), verbose=False, namespace={})
    assert result.status == "forbidden" and result.points == 0
    assert finding in " ".join(result.messages)


NAMED_LIKE_A_BUILTIN = '''
def standardize(x_train, x_test, eps=1e-8):
    mean = x_train.mean(axis=0)
    vars = x_train.var(axis=0)
    std = np.where(vars <= eps**2, 1.0, np.sqrt(vars))
    return (x_train - mean) / std, (x_test - mean) / std, mean, std
'''


def test_a_variable_named_like_a_builtin_is_the_students_own() -> None:
    """``vars`` for the variances is not the builtin ``vars``: neither refuses it."""
    assert _forbidden(EXERCISE, NAMED_LIKE_A_BUILTIN) == []
    result = check(EXERCISE, _defined_in_a_notebook_cell(NAMED_LIKE_A_BUILTIN), verbose=False, namespace={})
    assert result.passed, result.messages
    imported = _with_line("from io import open; _ = open")
    assert any("open (not needed" in f for f in _forbidden(EXERCISE, imported))


@pytest.mark.parametrize("name", sorted(REFUSED_NAMES))
def test_any_refused_name_is_the_students_own_once_the_cell_binds_it(name: str) -> None:
    """Bound as a variable, a parameter or a loop target, each refused name is plain data;
    read without being bound, it is refused."""
    as_variable = f"def f(x):\n    {name} = x.var(axis=0)\n    return x / {name}\n"
    as_parameter = f"def f(x, {name}=1.0):\n    return x * {name}\n"
    as_loop_target = f"def f(xs):\n    return [{name} + 1 for {name} in xs]\n"
    for source in (as_variable, as_parameter, as_loop_target):
        assert static_findings(source, ("torch",), {"np"}, True) == ([], []), source
    unbound = f"def f(x):\n    return {name}\n"
    assert static_findings(unbound, ("torch",), {"np"}, True)[0] == [f"{name} (not needed for a NumPy exercise)"]


def test_code_outside_a_notebook_cell_is_not_read_as_one() -> None:
    """A function from a module or a test has no cell: only its code is checked, as before."""
    ns: dict[str, Any] = {"__name__": "__main__", "np": np}
    exec(compile(_with_line("_ = open"), "<student cell>", "exec"), ns)
    assert check(EXERCISE, ns["standardize"], verbose=False, namespace={}).passed


def test_in_a_real_kernel_check_and_the_grader_agree(tmp_path: Path) -> None:
    """The kernel's own cell file names (ipykernel's), then the grader on the same notebook."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["bncourse"] = {"notebook": NOTEBOOK}
    imports = nbformat.v4.new_code_cell("import numpy as np\nfrom bncourse.grading import check")
    imports.metadata["tags"] = ["imports"]
    exercise = nbformat.v4.new_code_cell(_with_line("np_ = __import__('numpy')").strip())
    exercise.metadata["tags"] = ["exercise"]
    verdict = nbformat.v4.new_code_cell(textwrap.dedent(f"""\
        r = check({EXERCISE!r}, standardize, verbose=False)
        print(r.status, r.points, r.messages)"""))
    nb.cells = [imports, exercise, verdict]
    executed, _ = execute(nb, tmp_path, timeout=120)
    printed = "".join(o.get("text", "") for o in executed.cells[2].outputs)
    assert printed.startswith("forbidden 0.0"), printed
    assert "__import__ (not needed for a NumPy exercise)" in printed

    path = tmp_path / f"{NOTEBOOK}.ipynb"
    nbformat.write(executed, str(path))
    record = grade_notebook(Submission("ann", path), timeout=60)
    graded = {r["exercise"]: r for r in record["results"]}[EXERCISE]
    assert graded["status"] == "forbidden" and graded["points"] == 0
    assert "__import__ (not needed for a NumPy exercise)" in " ".join(graded["messages"])
