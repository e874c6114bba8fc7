"""Every mutant in tests/lessons/*/mutants.py fails its check *with its diagnosis*; every correct
implementation gets full points; every registered exercise and Mistake is covered."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from bncourse.grading import all_exercises, check
from tests.paths import ROOT

MUTANT_FILES = sorted((ROOT / "tests" / "lessons").glob("l[0-9][0-9]_*/mutants.py"))


def _modules() -> list[ModuleType]:
    mods = []
    assert len(MUTANT_FILES) >= 7, f"expected a mutants.py in every lesson's tests, found {MUTANT_FILES}"
    for path in MUTANT_FILES:
        spec = importlib.util.spec_from_file_location(f"_mutants_{path.parent.name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        mods.append(module)
    return mods


MODULES = _modules()
MUTANTS: list[tuple[str, str, Any]] = [m for mod in MODULES for m in getattr(mod, "MUTANTS", [])]
CORRECT: list[tuple[str, Any]] = [c for mod in MODULES for c in getattr(mod, "CORRECT", [])]


def _label(impl: Any) -> str:
    return getattr(impl, "__qualname__", repr(impl))


@pytest.mark.parametrize(
    ("exercise_id", "diagnosis", "impl"), MUTANTS,
    ids=[f"{e}-{_label(i)}" for e, _, i in MUTANTS],
)
def test_mutant_fails_with_its_diagnosis(exercise_id: str, diagnosis: str, impl: Any) -> None:
    result = check(exercise_id, impl, verbose=False, namespace={})
    assert not result.passed, f"{exercise_id}: mutant {_label(impl)} passed"
    assert result.points < result.max_points
    said = " ".join(result.messages + [c.diagnosis or "" for c in result.cases])
    assert diagnosis.lower() in said.lower(), f"{exercise_id}/{_label(impl)}: got {said!r}"


@pytest.mark.parametrize(("exercise_id", "impl"), CORRECT, ids=[f"{e}-{_label(i)}" for e, i in CORRECT])
def test_correct_implementation_gets_full_points(exercise_id: str, impl: Any) -> None:
    result = check(exercise_id, impl, verbose=False, namespace={})
    assert result.passed, f"{exercise_id}/{_label(impl)}: {result.messages} {[c.message for c in result.cases]}"
    assert result.points == result.max_points


def _course_exercises() -> list[Any]:
    """The exercises the lessons declare (not the ones test fixtures register)."""
    found = [e for e in all_exercises() if e.cases.__module__.startswith("bncourse.lessons.")]
    assert len(found) >= 21, [e.id for e in found]
    return found


def test_every_exercise_has_a_correct_implementation() -> None:
    covered = {e for e, _ in CORRECT}
    missing = [e.id for e in _course_exercises() if e.id not in covered]
    assert not missing, f"exercises without a CORRECT entry in tests/lessons/*/mutants.py: {missing}"


def test_every_mistake_is_exercised_by_a_mutant() -> None:
    """Each registered Mistake's diagnosis is produced by at least one mutant."""
    uncovered = []
    for ex in _course_exercises():
        mutants = [(d, i) for e, d, i in MUTANTS if e == ex.id]
        said = []
        for _, impl in mutants:
            r = check(ex.id, impl, verbose=False, namespace={})
            said.append(" ".join(r.messages + [c.diagnosis or "" for c in r.cases]))
        for mistake in ex.mistakes:
            if not any(mistake.diagnosis in s for s in said):
                uncovered.append(f"{ex.id}:{mistake.name}")
    assert not uncovered, f"Mistakes no mutant triggers: {uncovered}"
