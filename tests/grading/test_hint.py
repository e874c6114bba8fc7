"""``hint(id)``: an exercise's hint ladder, one rung per call; "did you mean" for a typo."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

from bncourse.errors import ExerciseError
from bncourse.grading import registry
from bncourse.grading.registry import Case, Exercise

check_module = importlib.import_module("bncourse.grading.check")  # the package's `check` is the function
LADDER = ("a direction", "the key identity", "the formula")


@pytest.fixture()
def laddered(monkeypatch: pytest.MonkeyPatch) -> str:
    ex = Exercise(id="toy_hinted", notebook="99_test", solution=lambda x: x,
                  cases=lambda: [Case("c", {"x": np.zeros(1)})], call=lambda f, c: {"out": f(**c.inputs)},
                  hints=LADDER)
    registry.get_exercise("batchnorm_forward")  # discovery first, so the toy is not overwritten
    monkeypatch.setitem(registry._REGISTRY, ex.id, ex)
    monkeypatch.setattr(check_module, "_HINTS_SHOWN", {})
    return ex.id


def test_each_call_climbs_one_rung_and_the_last_stays(laddered: str, capsys: pytest.CaptureFixture[str]) -> None:
    shown = [check_module.hint(laddered) for _ in range(4)]
    assert [s.splitlines()[0] for s in shown] == [f"Hint {k} of 3 for toy_hinted: {LADDER[min(k, 3) - 1]}"
                                                  for k in (1, 2, 3, 3)]
    assert "again for hint 2" in shown[0] and "last hint" in shown[3]
    assert capsys.readouterr().out.count("Hint ") == 4


def test_a_level_shows_that_rung_and_a_bad_level_is_an_error(laddered: str) -> None:
    assert "the formula" in check_module.hint(laddered, level=3)
    with pytest.raises(ExerciseError, match="hints 1 to 3, not 4"):
        check_module.hint(laddered, level=4)


def test_an_exercise_without_hints_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    ex = dataclasses.replace(registry.get_exercise("batchnorm_forward"), hints=())
    monkeypatch.setitem(registry._REGISTRY, ex.id, ex)
    assert "has no hints" in check_module.hint("batchnorm_forward")


def test_a_mistyped_id_gets_a_did_you_mean() -> None:
    with pytest.raises(ExerciseError, match="did you mean 'batchnorm_forward'"):
        check_module.hint("batchnorm_froward")
