"""check(..., strict=True): the same verdict and printout as check(), then a raise unless every
case passed (what an autograder test cell needs: nbgrader scores a test cell that raises 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bncourse.errors import BNCourseError, CheckFailedError
from bncourse.grading import check
from bncourse.grading.check import failure_message
from tests import grading_helpers as gh  # registers test_bn_forward / test_bn_backward


def _fn(source: str, name: str = "bn_fwd") -> Any:
    ns: dict[str, Any] = {"np": np, "__name__": "student_nb"}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns[name]


def test_strict_is_keyword_only_and_off_by_default() -> None:
    wrong = _fn(gh.FORWARD_OK.replace("var + eps", "var"))
    assert not check(gh.FORWARD_ID, wrong, verbose=False).passed  # no raise without strict
    with pytest.raises(TypeError):
        check(gh.FORWARD_ID, wrong, False, None, True)  # type: ignore[misc]


def test_strict_pass_returns_the_same_result_and_printout(capsys: pytest.CaptureFixture[str]) -> None:
    ok = _fn(gh.FORWARD_OK)
    plain = check(gh.FORWARD_ID, ok)
    plain_out = capsys.readouterr().out
    strict = check(gh.FORWARD_ID, ok, strict=True)
    assert strict.passed and strict.points == strict.max_points == plain.points
    assert capsys.readouterr().out == plain_out


def test_strict_wrong_answer_raises_with_the_diagnosis(capsys: pytest.CaptureFixture[str]) -> None:
    wrong = _fn(gh.FORWARD_OK.replace("var + eps", "var"))
    verdict = check(gh.FORWARD_ID, wrong)
    printed = capsys.readouterr().out
    with pytest.raises(CheckFailedError) as info:
        check(gh.FORWARD_ID, wrong, strict=True)
    assert capsys.readouterr().out == printed  # the student sees the same report, then the error
    message = str(info.value)
    assert message == failure_message(verdict)
    n_pass = sum(c.passed for c in verdict.cases)
    assert message.startswith(f"{gh.FORWARD_ID}: {n_pass}/{len(verdict.cases)} cases passed")
    assert verdict.diagnosis is not None and verdict.diagnosis in message
    # caught as a failed assertion (nbgrader, pytest) and as a bncourse error alike
    assert isinstance(info.value, AssertionError) and isinstance(info.value, BNCourseError)


@pytest.mark.parametrize(("source", "expected"), [
    ("def bn_fwd(x, gamma, beta, eps=1e-5):\n    raise NotImplementedError('todo')\n", "not implemented yet"),
    ("def bn_fwd(x, gamma, beta, eps=1e-5):\n    return x[100], None\n", "IndexError"),
    ("def bn_fwd(x, gamma, beta, eps=1e-5):\n    import torch\n    return x, None\n", "forbidden"),
])
def test_strict_raises_for_every_kind_of_failure(source: str, expected: str) -> None:
    with pytest.raises(CheckFailedError, match=expected):
        check(gh.FORWARD_ID, _fn(source), verbose=False, strict=True)


def test_strict_partially_right_still_raises() -> None:
    # right in float64, wrong in float32 (computes in float64 and returns it): some cases pass
    partial = _fn(gh.FORWARD_OK.replace("def bn_fwd(x, gamma, beta, eps=1e-5):",
                                        "def bn_fwd(x, gamma, beta, eps=1e-5):\n"
                                        "    if x.dtype == np.float32:\n        return x * 0, None"))
    verdict = check(gh.FORWARD_ID, partial, verbose=False)
    assert 0 < verdict.points < verdict.max_points
    with pytest.raises(CheckFailedError, match=r"cases passed"):
        check(gh.FORWARD_ID, partial, verbose=False, strict=True)


def test_strict_unknown_id_is_still_an_exercise_error_not_a_failed_check() -> None:
    with pytest.raises(BNCourseError, match="valid ids") as info:
        check("no_such_exercise", lambda x: x, strict=True)
    assert not isinstance(info.value, CheckFailedError)
