"""The tests every exercise module's test file repeats, built once.

Each function returns a parametrized pytest test function; a test module binds it to a
``test_*`` name, which is how pytest finds it (and names it in the report)::

    test_mutant_is_diagnosed = mutants_are_diagnosed(mutants.MUTANTS)

- :func:`solutions_get_full_points`: the registered solution passes with all points.
- :func:`mutants_are_diagnosed`: a ``(exercise_id, substring, impl)`` mutant fails and the
  headline diagnosis contains ``substring``.
- :func:`correct_versions_get_full_points`: an ``(exercise_id, impl)`` alternative passes
  with all points.
- :func:`mistakes_diagnose_themselves`: each registered ``Mistake`` fails with exactly its
  own diagnosis.

Everything is checked with ``namespace={}``: a backward runs on the exercise's reference
forward.  (``tests/test_mutants.py`` also runs every mutant, but accepts the substring
anywhere in the messages; these check the headline ``diagnosis`` a student reads first.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from bncourse.grading import check, get_exercise
from bncourse.grading.registry import Mistake, resolve

PytestFunction = Callable[..., None]


def _name(impl: Any) -> str:
    return getattr(impl, "__name__", repr(impl))


def solutions_get_full_points(ids: Sequence[str], notebook: str) -> PytestFunction:
    """``test(exercise_id)``: the solution of each of ``ids`` passes with full points and
    the exercise belongs to ``notebook``."""

    @pytest.mark.parametrize("exercise_id", ids)
    def test(exercise_id: str) -> None:
        exercise = get_exercise(exercise_id)
        result = check(exercise_id, resolve(exercise.solution), verbose=False, namespace={})
        assert result.passed, result.messages
        assert result.points == exercise.points
        assert exercise.notebook == notebook

    return test


def hint_ladders(ids: Sequence[str], notebook: str) -> PytestFunction:
    """``test(exercise_id)``: each of ``ids`` has a three-rung hint ladder (a direction, the key
    identity, the formula) and its exercise cell in ``notebook`` points to it: every
    ``### HINT:`` line says ``hint("<id>")`` (issue 24: the formulas live in the ladder)."""

    @pytest.mark.parametrize("exercise_id", ids)
    def test(exercise_id: str) -> None:
        import json
        import re

        from tests.paths import NOTEBOOKS_DIR

        ladder = get_exercise(exercise_id).hints
        assert len(ladder) == 3 and len(set(ladder)) == 3 and all(len(h) > 40 for h in ladder), ladder
        cells = json.loads((NOTEBOOKS_DIR / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
        defines = re.compile(rf"^(?:def|class) {re.escape(exercise_id)}\b", re.M)
        (cell,) = [c for c in cells if "exercise" in c["metadata"].get("tags", []) and defines.search("".join(c["source"]))]
        hints = [ln for ln in "".join(cell["source"]).splitlines() if ln.strip().startswith("### HINT:")]
        assert hints and all(f'hint("{exercise_id}")' in ln for ln in hints), hints

    return test


def mutants_are_diagnosed(mutants: Sequence[tuple[str, str, Any]]) -> PytestFunction:
    """``test(exercise_id, substring, impl)``: the mutant fails and its diagnosis contains
    ``substring``."""

    @pytest.mark.parametrize(("exercise_id", "substring", "impl"), mutants,
                             ids=[f"{e}-{_name(i)}" for e, _, i in mutants])
    def test(exercise_id: str, substring: str, impl: Any) -> None:
        result = check(exercise_id, impl, verbose=False, namespace={})
        assert not result.passed
        assert result.diagnosis is not None and substring in result.diagnosis, result.diagnosis

    return test


def correct_versions_get_full_points(correct: Sequence[tuple[str, Any]]) -> PytestFunction:
    """``test(exercise_id, impl)``: a correct alternative implementation gets full points."""

    @pytest.mark.parametrize(("exercise_id", "impl"), correct, ids=[f"{e}-{_name(i)}" for e, i in correct])
    def test(exercise_id: str, impl: Any) -> None:
        result = check(exercise_id, impl, verbose=False, namespace={})
        assert result.passed, result.messages
        assert result.points == result.max_points

    return test


def mistakes_diagnose_themselves(mistakes: Mapping[str, Sequence[Mistake]]) -> PytestFunction:
    """``test(exercise_id, mistake)``: each ``Mistake`` of ``mistakes[exercise_id]``, checked
    as if a student had written it, fails with exactly its diagnosis."""
    pairs = [(e, m) for e, ms in mistakes.items() for m in ms]

    @pytest.mark.parametrize(("exercise_id", "mistake"), pairs, ids=[m.name for _, m in pairs])
    def test(exercise_id: str, mistake: Mistake) -> None:
        result = check(exercise_id, resolve(mistake.impl), verbose=False, namespace={})
        assert not result.passed
        assert result.diagnosis == mistake.diagnosis

    return test
