"""``bncourse lint-notebooks``: each rule of the notebook contract is reported, with the
notebook and cell, on a synthetic notebook broken in exactly that way; a clean notebook
gives no problem; the real course notebooks are clean."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from bncourse.authoring import lint
from bncourse.cli import main
from tests.paths import COURSE_NOTEBOOKS, require_notebooks
from tests.release_helpers import STEM, instructor_notebook, synthetic_exercises_registered, write

REAL_NOTEBOOKS = COURSE_NOTEBOOKS


@pytest.fixture
def registered() -> Iterator[None]:
    with synthetic_exercises_registered():
        yield


def _lint(tmp_path: Path, nb: Any, name: str = f"{STEM}.ipynb") -> list[str]:
    path = write(nb, tmp_path / name)
    return lint.lint_notebooks([path])


@pytest.mark.usefixtures("registered")
def test_clean_synthetic_notebook_has_no_problems(tmp_path: Path) -> None:
    assert _lint(tmp_path, instructor_notebook()) == []


def _set(i: int, **kw: Any) -> Callable[[Any], None]:
    def edit(nb: Any) -> None:
        for k, v in kw.items():
            setattr(nb.cells[i], k, v)
    return edit


def _meta(i: int, key: str, value: Any) -> Callable[[Any], None]:
    def edit(nb: Any) -> None:
        if value is None:
            nb.cells[i].metadata.pop(key)
        else:
            nb.cells[i].metadata[key] = value
    return edit


def _outputs(i: int, *outs: Any) -> Callable[[Any], None]:
    def edit(nb: Any) -> None:
        nb.cells[i].outputs = list(outs)
    return edit


def _delete(*idx: int) -> Callable[[Any], None]:
    def edit(nb: Any) -> None:
        nb.cells = [c for j, c in enumerate(nb.cells) if j not in idx]
    return edit


def _not_executed(nb: Any) -> None:
    for c in nb.cells:
        if c.cell_type == "code":
            c.execution_count, c.outputs = None, []


def _swap_counts(nb: Any) -> None:
    nb.cells[4].execution_count, nb.cells[5].execution_count = 4, 3


def _stdout(text: str) -> Any:
    return new_output("stream", name="stdout", text=text)


# (edit, expected problem fragment); cell numbers count from 1 (cell 4 = the function exercise).
BREAKAGES: dict[str, tuple[Callable[[Any], None], str]] = {
    "no slide type": (_meta(2, "slideshow", None), "cell 3: no metadata.slideshow.slide_type"),
    "bad slide type": (_meta(2, "slideshow", {"slide_type": "slides"}), "cell 3: slide_type 'slides' is not one of"),
    "misspelt tag": (_meta(5, "tags", ["excercise"]), "cell 6: unknown tags ['excercise']"),
    "imports untagged": (_meta(1, "tags", []), "cell 2: the first code cell must be tagged `imports`"),
    "two imports cells": (_meta(5, "tags", ["imports"]), "cell 6: only the first code cell may be tagged"),
    "unbalanced markers": (_set(3, source="def sum_of_squares(x):\n    ### BEGIN SOLUTION\n    return 1.0"),
                           "cell 4: line 2: '### BEGIN SOLUTION' is never closed"),
    "marker in markdown": (_set(2, source="## S\n### END SOLUTION"), "cell 3: solution marker or hint outside"),
    "marker in experiment": (_set(5, source="x = 1  ### BEGIN SOLUTION"), "cell 6: solution marker or hint outside"),
    "no markers": (_set(3, source="def sum_of_squares(x):\n    return 1.0"), "cell 4: exercise cell has no"),
    "code hint": (_set(3, source="def sum_of_squares(x):\n    ### HINT: float((x * x).sum())\n"
                       "    ### BEGIN SOLUTION\n    return float((x * x).sum())\n    ### END SOLUTION"),
                  "cell 4: hint of the block on line 3 is Python code"),
    "def inside markers": (_set(3, source="### BEGIN SOLUTION\ndef sum_of_squares(x):\n    return 1.0\n"
                                "### END SOLUTION"), "student edition cannot be built"),
    "two definitions": (_set(3, source="def helper():\n    pass\n\ndef sum_of_squares(x):\n"
                             "    ### BEGIN SOLUTION\n    return 1.0\n    ### END SOLUTION"),
                        "cell 4: an exercise cell defines exactly one function or class, found ['helper'"),
    "imports torch": (_set(3, source="def sum_of_squares(x):\n    ### BEGIN SOLUTION\n    import torch\n"
                           "    return 1.0\n    ### END SOLUTION"), "cell 4: exercise cell imports torch"),
    "imports reference": (_set(3, source="from bncourse import reference\n\ndef sum_of_squares(x):\n"
                               "    ### BEGIN SOLUTION\n    return 1.0\n    ### END SOLUTION"),
                          "imports bncourse.reference"),
    "no check after": (_delete(4), "cell 4: exercise cell is not followed by a code cell tagged `check`"),
    "check not after exercise": (_meta(5, "tags", ["check"]), "cell 6: check cell does not follow an exercise"),
    "check with two calls": (_set(4, source='check("sum_of_squares", sum_of_squares)\nprint(1)'),
                             'cell 5: a check cell holds exactly one call'),
    "unknown id": (_set(4, source='check("sum_of_squaress", sum_of_squares)'),
                   "cell 5: unknown exercise id 'sum_of_squaress'"),
    "wrong name": (_set(4, source='check("sum_of_squares", Counter)'),
                   "cell 5: check('sum_of_squares', ...) passes 'Counter': an exercise's id is the name"),
    "id checked twice": (_set(7, source='check("sum_of_squares", sum_of_squares)'),
                         "cell 8: exercise id 'sum_of_squares' is already checked in cell 5"),
    "registered but absent": (_delete(6, 7), "registered exercise 'Counter' has no exercise"),
    "direct call": (_set(5, source="print(sum_of_squares(np.ones(2)))"),
                    "cell 6: calls the exercise function sum_of_squares directly"),
    "solution fails its check": (_outputs(4, _stdout("sum_of_squares: 1/2 cases passed\n  ✗ x(3,)  wrong\n")),
                                 "cell 5: the instructor's solution does not pass check('sum_of_squares')"),
    "not executed": (_not_executed, "not executed: run it top to bottom"),
    "out of order": (_swap_counts, "cell 5: execution count 4, expected 3"),
    "error output": (_outputs(5, new_output("error", ename="ValueError", evalue="boom", traceback=[])),
                     "cell 6: error output: ValueError: boom"),
    "stderr traceback": (_outputs(5, new_output("stream", name="stderr",
                                                text="Traceback (most recent call last):\n  x\n")),
                         "cell 6: a traceback on stderr"),
    "kernel temp path": (_outputs(5, _stdout('File "/tmp/ipykernel_4242/123.py", line 1\n')),
                         "cell 6: machine paths in the output: ['/tmp/', 'ipykernel_4242']"),
    "home path in html": (_outputs(5, new_output("display_data", data={"text/html": "<p>/home/ana/x.csv</p>"})),
                          "cell 6: machine paths in the output: ['/home/']"),
    "windows path": (_outputs(5, _stdout("saved to C:\\Users\\ana\\fig.png\n")),
                     "cell 6: machine paths in the output: ['C:\\\\Users']"),
    "warning path": (_outputs(5, _stdout("lib/python3.11/site-packages/torch/x.py:3: UserWarning\n")),
                     "cell 6: machine paths in the output: ['site-packages']"),
    "path in metadata": (_meta(5, "vscode", {"cwd": "/work/main/notebooks"}), "cell 6: machine paths in cell metadata"),
    "path in code": (_set(5, source="data = open('/root/data.csv')"), "cell 6: machine paths in the code"),
    "sys.path": (_set(5, source="import sys\nsys.path.insert(0, '..')"), "cell 6: changes sys.path"),
    "chdir": (_set(5, source="import os\nos.chdir('..')"), "cell 6: changes sys.path or the working directory"),
    "missing image": (_set(2, source="## S\n![loss](figures/loss.png)"),
                      "markdown links the image 'figures/loss.png', which does not exist"),
}


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_each_broken_rule_is_reported_with_its_cell(tmp_path: Path, kind: str) -> None:
    edit, expected = BREAKAGES[kind]
    nb = instructor_notebook()
    edit(nb)
    problems = _lint(tmp_path, nb)
    assert any(p.startswith(f"{tmp_path / STEM}.ipynb: ") and expected in p for p in problems), problems


@pytest.mark.usefixtures("registered")
def test_notebook_level_rules(tmp_path: Path) -> None:
    nb = instructor_notebook()
    nb.metadata["kernelspec"]["env"] = {"PATH": "/home/ana/.venv/bin"}
    problems = _lint(tmp_path, nb)
    assert problems == [f"{tmp_path / STEM}.ipynb: machine paths in notebook metadata: ['/home/']"]
    problems = _lint(tmp_path, instructor_notebook(), name="Synthetic.ipynb")
    assert any("notebook name should be NN_topic.ipynb" in p for p in problems)
    assert any("registered for notebook '98_synthetic'" in p for p in problems)


@pytest.mark.usefixtures("registered")
def test_an_id_in_two_notebooks_is_reported(tmp_path: Path) -> None:
    a = write(instructor_notebook(), tmp_path / f"{STEM}.ipynb")
    b = write(instructor_notebook(), tmp_path / "97_copy.ipynb")
    problems = lint.lint_notebooks([a, b])
    assert f"{b}: cell 5: exercise id 'sum_of_squares' is also checked in {a} cell 5; each id appears in " \
           "exactly one notebook" in problems


@pytest.mark.usefixtures("registered")
def test_harmless_text_is_not_a_machine_path(tmp_path: Path) -> None:
    nb = instructor_notebook()
    nb.cells[5].outputs = [
        _stdout("see https://example.org/home/page and arxiv.org/abs/1502.03167\n"),
        new_output("display_data", data={"image/png": "AAAA/tmp/home/BBBB", "text/plain": "<Figure size 640x480>"}),
    ]
    assert _lint(tmp_path, nb) == []
    assert lint.machine_paths("x /tmp/a and file:///home/b") == ["/tmp/", "/home/"]


def test_unreadable_and_invalid_notebooks_are_problems_not_crashes(tmp_path: Path) -> None:
    (tmp_path / "01_bad.ipynb").write_text("{not json")
    (tmp_path / "02_invalid.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "source": "", "outputs": [], "execution_count": "one"}]}))
    problems = lint.lint_notebooks([tmp_path / "01_bad.ipynb", tmp_path / "02_invalid.ipynb",
                                       tmp_path / "03_missing.ipynb"])
    assert [p.split(":")[0] for p in problems] == [str(tmp_path / n) for n in
                                                   ("01_bad.ipynb", "02_invalid.ipynb", "03_missing.ipynb")]
    assert "not a readable notebook" in problems[0] and "not a valid nbformat 4 notebook" in problems[1]


@pytest.mark.usefixtures("registered")
def test_missing_notebooks_lists_registered_exercises_without_a_notebook(tmp_path: Path) -> None:
    missing = lint.missing_notebooks([])
    assert missing[STEM] == ["sum_of_squares", "Counter"]
    assert STEM not in lint.missing_notebooks([tmp_path / f"{STEM}.ipynb"])


@pytest.mark.usefixtures("registered")
def test_cli_lint_prints_problems_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(instructor_notebook(), tmp_path / f"{STEM}.ipynb")
    assert main(["lint-notebooks", str(good)]) == 0
    assert capsys.readouterr().out.strip() == "1 notebooks checked, 0 problems"
    nb = instructor_notebook()
    nb.cells.insert(3, new_markdown_cell("### BEGIN SOLUTION", metadata={"slideshow": {"slide_type": "-"}}))
    nb.cells.append(new_code_cell("print(1)"))
    write(nb, good)
    assert main(["lint-notebooks", str(good)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{good}: cell 4: solution marker or hint outside a cell tagged `exercise`" in out
    assert f"{good}: cell 13: no metadata.slideshow.slide_type" in out
    assert out[-1] == f"1 notebooks checked, {len(out) - 1} problems"


# --------------------------------------------------------------------------- the real notebooks


def test_real_notebooks_are_lint_clean() -> None:
    problems = lint.lint_notebooks(require_notebooks())
    assert problems == [], "\n".join(problems)


def test_every_registered_exercise_has_a_notebook() -> None:
    """Every exercise the course registers has its notebook in notebooks/ (the lint test
    checks that each appears there exactly once).  The test suite's own fixtures register
    exercises of notebooks "98_synthetic" and "99_test", which have no notebook file."""
    from bncourse.grading.registry import all_exercises

    test_only = {"98_synthetic", "99_test"}
    course = {e.notebook for e in all_exercises()} - test_only
    assert len(course) == 9, sorted(course)
    missing = {nb: ids for nb, ids in lint.missing_notebooks(REAL_NOTEBOOKS).items() if nb not in test_only}
    assert missing == {}, missing
