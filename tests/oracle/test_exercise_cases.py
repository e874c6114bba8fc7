"""Every stand-in gives the instructor's solution's outputs on every case of its exercise's check.

The same ``call`` as the check, on private copies of the inputs, compared output by output
within the case's tolerance (dtypes and shapes equal); a backward runs on the stand-in
forward (its exercise's ``namespace`` entries replaced by their stand-ins), the solution on
the solution's forward.  Then the grader's own judgement: full points.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bncourse import oracle
from bncourse.grading import all_exercises, get_exercise
from bncourse.grading.evaluate import evaluate
from bncourse.grading.runner import run_cases

COURSE_IDS = sorted(e.id for e in all_exercises() if e.cases.__module__.startswith("bncourse.lessons."))


def test_every_exercise_has_a_stand_in() -> None:
    assert len(COURSE_IDS) >= 22
    assert set(COURSE_IDS) <= set(oracle.__all__)


def _stand_in_namespace(exercise_id: str) -> dict[str, object]:
    return {name: getattr(oracle, name) for name in get_exercise(exercise_id).namespace}


@pytest.mark.parametrize("exercise_id", COURSE_IDS)
def test_stand_in_matches_the_solution_on_every_case(exercise_id: str) -> None:
    exercise = get_exercise(exercise_id)
    stand_in = getattr(oracle, exercise_id)
    ns = _stand_in_namespace(exercise_id)
    for case in exercise.cases():
        got = exercise.call(stand_in, copy.deepcopy(dict(case.inputs)), ns)
        exp = exercise.call(exercise.solution, copy.deepcopy(dict(case.inputs)), exercise.namespace)
        assert set(got) == set(exp), (case.name, sorted(got), sorted(exp))
        rtol, atol = case.tolerance
        for name in exp:
            g, e = np.asarray(got[name]), np.asarray(exp[name])
            where = f"{exercise_id} / {case.name} / {name}"
            assert g.shape == e.shape, where
            if e.dtype.kind == "f":
                assert g.dtype == e.dtype, f"{where}: dtype {g.dtype}, expected {e.dtype}"
            np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=where)


@pytest.mark.parametrize("exercise_id", COURSE_IDS)
def test_stand_in_gets_full_points_from_the_grader(exercise_id: str) -> None:
    """The grader's own comparison (dtype, shape, NaN, tolerance, inputs not mutated);
    unrestricted, since a stand-in uses the libraries the student may not."""
    exercise = get_exercise(exercise_id)
    raws = run_cases(exercise, getattr(oracle, exercise_id), _stand_in_namespace(exercise_id), restrict=False)
    result = evaluate(exercise, raws)
    assert result.passed and result.points == exercise.points, [c.message for c in result.cases if not c.passed]
