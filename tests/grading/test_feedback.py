"""What ``check`` prints a student: the cause when most cases crash (not a side effect),
each message once, lines that do not wrap, "did you mean" for a mistyped id."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bncourse.errors import ExerciseError
from bncourse.grading import check
from bncourse.grading.check import LINE_WIDTH


def _axis1_forward(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> tuple[Any, Any]:
    mu, var = x.mean(axis=1), x.var(axis=1)  # the classic slip: per example, not per feature
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def test_a_reduction_over_the_wrong_axis_is_named_not_its_side_effect(capsys: pytest.CaptureFixture[str]) -> None:
    result = check("batchnorm_forward", _axis1_forward)
    text = capsys.readouterr().out
    assert result.points == 0
    assert "reduced over axis 1" in text and "Reduce over axis 0" in text
    assert "→ out has the wrong shape" not in text  # the one case that ran is a side effect
    assert "do not broadcast" in text


def test_standardize_over_the_wrong_axis_gets_the_same_cause(capsys: pytest.CaptureFixture[str]) -> None:
    def standardize(x_train: Any, x_test: Any) -> Any:
        mean, std = x_train.mean(axis=1), x_train.std(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):  # the one case that runs divides by 0
            return (x_train - mean) / std, (x_test - mean) / std, mean, std

    check("standardize", standardize)
    assert "Reduce over axis 0" in capsys.readouterr().out


def test_every_line_fits_and_every_message_is_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    def batchnorm_backward(dout: Any, cache: Any) -> Any:
        _x, _x_hat = cache  # the forward's cache was None
        return dout, dout.sum(0), dout.sum(0)

    def batchnorm_forward(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> tuple[Any, Any]:
        return gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + eps) + beta, None

    check("batchnorm_backward", batchnorm_backward, namespace={"batchnorm_forward": batchnorm_forward})
    check("standardize", lambda x_train, x_test: None)
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if not ln.startswith("      ")]  # the traceback is the student's code
    assert max(len(ln) for ln in lines) <= LINE_WIDTH
    for block in text.split("\n\n"):
        said = [ln.strip() for ln in block.splitlines() if ln.strip().startswith(("✗ all", "→"))]
        assert len(said) == len(set(said))


def test_a_mistyped_exercise_id_gets_a_did_you_mean() -> None:
    with pytest.raises(ExerciseError, match="did you mean 'batchnorm_backward'"):
        check("batchnorm_backwards", lambda dout, cache: None)


def test_a_diagnosis_hook_that_cannot_handle_the_outputs_leaves_the_case_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    def population_stats(batches: Any) -> Any:  # the wrong shape makes l05's hook compare (5,) with (D,)
        return np.zeros(5), np.ones(5)

    result = check("population_stats", population_stats)
    text = capsys.readouterr().out
    assert result.status == "checked" and result.points == 0
    assert "internal error" not in text and "has shape (5,)" in text


def test_the_points_are_a_paragraph_after_a_list_of_problems() -> None:
    from bncourse.grading import grader
    from bncourse.grading.evaluate import ExerciseResult

    result = ExerciseResult(exercise_id="batchnorm_forward", passed=False, points=0.0, max_points=10)
    record = {"notebook": "03_forward_backward", "path": "x.ipynb", "isolation": grader.JAILED,
              "blocked": ["starting a process (subprocess.Popen)"], "results": [result.to_dict()]}
    lines = grader.student_feedback("alice", [record]).splitlines()
    points = next(i for i, line in enumerate(lines) if line.startswith("**0 / 10 points**"))
    assert lines[points - 1] == "" and lines[points - 2].startswith("- blocked:")
