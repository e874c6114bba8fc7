"""The student build's oracle: expected outputs and mistake fingerprints shipped as data.

The table is built the way ``bncourse release`` builds it; judged by it, the instructor
package must give exactly the verdicts it gives by running the solutions and mistakes —
for the correct implementations and every mutant of the catalogue (tests/lessons/*/mutants.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from bncourse.errors import ExerciseError
from bncourse.grading import all_exercises, check
from bncourse.grading.evaluate import judged_by, outputs_on_cases
from bncourse.grading.expected import ExpectedOutputs, build, dumps
from tests.grading.test_mutants import CORRECT, MUTANTS, _label


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    course = [e for e in all_exercises() if e.cases.__module__.startswith("bncourse.lessons.")]
    return json.loads(dumps(build(course, outputs_on_cases)))  # as shipped: through the JSON bytes


def _verdict(exercise_id: str, impl: Any) -> dict[str, Any]:
    r = check(exercise_id, impl, verbose=False, namespace={})
    return {"points": r.points, "status": r.status, "messages": r.messages,
            "cases": [(c.case, c.passed, c.message, c.diagnosis) for c in r.cases]}


def test_table_covers_every_exercise_case_and_mistake(table: dict[str, Any]) -> None:
    course = [e for e in all_exercises() if e.cases.__module__.startswith("bncourse.lessons.")]
    assert sorted(table["exercises"]) == sorted(e.id for e in course)
    for ex in course:
        entry = table["exercises"][ex.id]
        assert sorted(entry["solution"]) == sorted(c.name for c in ex.cases()), ex.id
        assert sorted(entry["mistakes"]) == sorted(m.name for m in ex.mistakes), ex.id


def test_dumps_is_byte_identical_and_round_trips(table: dict[str, Any]) -> None:
    data = dumps(table)
    assert data == dumps(json.loads(data))
    loaded = ExpectedOutputs.from_bytes(data)
    ex = next(e for e in all_exercises() if e.id == "batchnorm_forward")
    case = ex.cases()[1]  # float32
    got = loaded.outputs(ex.id, case.name)
    assert got is not None and got["out"].dtype == np.float32
    live = outputs_on_cases(ex, ex.solution)[case.name]
    assert live is not None and np.array_equal(got["out"], live["out"])


@pytest.mark.parametrize(("exercise_id", "impl"), CORRECT, ids=[f"{e}-{_label(i)}" for e, i in CORRECT])
def test_correct_implementations_same_verdict_from_data(table: dict[str, Any], exercise_id: str, impl: Any) -> None:
    live = _verdict(exercise_id, impl)
    with judged_by(ExpectedOutputs(table)):
        shipped = _verdict(exercise_id, impl)
    assert shipped == live
    assert shipped["status"] == "checked" and all(c[1] for c in shipped["cases"])


@pytest.mark.parametrize(("exercise_id", "diagnosis", "impl"), MUTANTS,
                         ids=[f"{e}-{_label(i)}" for e, _, i in MUTANTS])
def test_every_mutant_same_verdict_and_diagnosis_from_data(
    table: dict[str, Any], exercise_id: str, diagnosis: str, impl: Any
) -> None:
    live = _verdict(exercise_id, impl)
    with judged_by(ExpectedOutputs(table)):
        shipped = _verdict(exercise_id, impl)
    assert shipped == live
    said = " ".join(shipped["messages"] + [c[3] or "" for c in shipped["cases"]])
    assert diagnosis.lower() in said.lower()


def test_outputs_keep_the_order_the_exercise_returns_them(table: dict[str, Any]) -> None:
    ex = next(e for e in all_exercises() if e.id == "standardize")
    case = ex.cases()[0]
    live = outputs_on_cases(ex, ex.solution)[case.name]
    got = ExpectedOutputs.from_bytes(dumps(table)).outputs(ex.id, case.name)
    assert live is not None and got is not None and list(got) == list(live)
    assert list(got) != sorted(got)  # the order is the call's, not alphabetical


def test_a_damaged_table_is_refused_with_a_precise_message(table: dict[str, Any]) -> None:
    bad = json.loads(dumps(table))
    case = next(iter(bad["exercises"]["batchnorm_forward"]["solution"]))
    ((name, arr),) = bad["exercises"]["batchnorm_forward"]["solution"][case]
    assert name == "out"
    arr["data"] = base64.b64encode(b"\0" * 3).decode()
    with pytest.raises(ExerciseError, match=r"3 bytes do not make a .* array of shape"):
        ExpectedOutputs(bad).outputs("batchnorm_forward", case)
    with pytest.raises(ExerciseError, match="no case 'nope'"):
        ExpectedOutputs(table).outputs("batchnorm_forward", "nope")
    with pytest.raises(ExerciseError, match="not in this build"):
        ExpectedOutputs(table).outputs("no_such_exercise", case)
    with pytest.raises(ExerciseError, match="unknown format"):
        ExpectedOutputs({"format": 99, "exercises": {}})
