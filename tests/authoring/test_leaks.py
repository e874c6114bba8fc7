"""The answer scanner (bncourse.authoring.leaks) and the release's refusal to ship an answer."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from bncourse.authoring import leaks, release
from bncourse.errors import BNCourseError, NotebookError
from tests.paths import NOTEBOOKS_DIR

ANSWER = '''
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x_hat, var)
'''


def test_a_renamed_statement_of_an_answer_is_found() -> None:
    answers = leaks.answer_statements([("answer.py", ANSWER)])
    found = leaks.find_leaks(answers, [("student.py", "z = (inp - m) / np.sqrt(v + e)\nprint(z)\n")])
    assert [(f.where, f.line) for f in found] == [("student.py", 1)]
    assert "answer.py:5" in str(found[0])


def test_other_statements_and_other_libraries_are_not_answers() -> None:
    answers = leaks.answer_statements([("answer.py", ANSWER)])
    clean = (
        "x_hat = (x - mu) * torch.rsqrt(var + eps)\n"  # another library's statement
        "mu = x.mean(axis=0)\n"                        # too small to be an answer
        "out, cache = forward(x, gamma, beta, eps)\n"  # computes nothing itself
        "raise ValueError(f'bad {x.shape} {(x - mu) / np.sqrt(var + eps)}')\n"
    )
    assert leaks.find_leaks(answers, [("other.py", clean)]) == []


def test_code_in_html_pre_blocks_is_scanned() -> None:
    answers = leaks.answer_statements([("answer.py", ANSWER)])
    page = '<div><pre><span class="n">y</span> <span class="o">=</span> (a - b) / np.sqrt(c + d)</pre></div>'
    blocks = leaks.code_blocks_of_html(page)
    assert blocks == ["y = (a - b) / np.sqrt(c + d)"]
    assert len(leaks.find_leaks(answers, [("deck.html", b) for b in blocks])) == 1


def test_release_refuses_a_notebook_whose_plain_code_states_an_answer(tmp_path: Path) -> None:
    src = NOTEBOOKS_DIR / "03_forward_backward.ipynb"
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.read(src, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("istd = 1.0 / np.sqrt(v + e)  # 'just a demo', renamed"))
    nbformat.write(nb, notebooks / src.name)
    with pytest.raises(NotebookError, match=rf"03_forward_backward.ipynb cell {len(nb.cells) - 1}:1") as err:
        release.build(tmp_path / "student", notebooks_dir=notebooks)
    assert "statement(s) of an answer" in str(err.value)
    assert not (tmp_path / "student").exists()


def test_release_refuses_an_exercise_without_a_stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import dataclasses

    from bncourse.authoring import student_package
    from bncourse.grading import registry
    from bncourse.grading.registry import Ref

    ex = registry.get_exercise("layernorm_forward")
    monkeypatch.setitem(registry._REGISTRY, ex.id, dataclasses.replace(ex, fallback=Ref("bncourse.oracle:no_such_stand_in")))
    with pytest.raises(BNCourseError, match="exercise 'layernorm_forward' has no stand-in"):
        student_package.package_files()
    monkeypatch.setitem(registry._REGISTRY, ex.id, dataclasses.replace(ex, fallback=None))
    with pytest.raises(BNCourseError, match="exercise 'layernorm_forward' has no stand-in"):
        student_package.package_files()


def test_shape_plumbing_is_not_an_answer() -> None:
    answers = leaks.answer_statements([("answer.py", "def f(arrays):\n    D = int(arrays[0].shape[1])\n"
                                                      "    dgamma = np.sum(dout * x_hat, axis=0)\n")])
    assert len(answers) == 1  # only the gradient counts
    found = leaks.find_leaks(answers, [("s.py", "d = int(batches[0].shape[1])\ng = np.sum(a * b, axis=0)\n")])
    assert [f.line for f in found] == [2]
