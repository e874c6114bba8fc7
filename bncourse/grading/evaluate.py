"""Compare what a student's code produced with the reference, and diagnose mistakes.

This half of grading never runs the student's code: it takes the data a
:class:`~bncourse.grading.runner.RawCase` holds, gets the expected outputs (computed from
the exercise's solution in the instructor edition, read from the table shipped with the
student build there), and explains the first failure it recognises.  Diagnoses, in order:
an exception or a contract error, ``None`` or non-array outputs, an input modified in
place, a wrong output shape, a wrong dtype, NaN, the exercise's own hook, then the known
mistakes by matching the student's outputs against each mistake's outputs.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bncourse.edition import is_student_edition
from bncourse.grading.expected import ExpectedOutputs, shipped
from bncourse.grading.registry import Case, Exercise, Mistake, resolve
from bncourse.grading.runner import RawCase, resolved_namespace, run_one
from bncourse.validation import rel_error

__all__ = [
    "CaseResult",
    "ExerciseResult",
    "blame_dependencies",
    "evaluate",
    "expected_outputs",
    "judged_by",
    "outputs_on_cases",
]


@dataclass
class CaseResult:
    """The verdict on one case: passed or not, the largest error, and why."""

    case: str
    passed: bool
    max_rel_error: float | None = None
    worst_output: str | None = None
    message: str = ""
    diagnosis: str | None = None


@dataclass
class ExerciseResult:
    """The verdict on one exercise: the object ``check`` returns and the grader stores."""

    exercise_id: str
    passed: bool
    points: float
    max_points: int
    cases: list[CaseResult] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    status: str = "checked"  # "checked", "not_implemented", "missing", "forbidden", "error"
    seconds: float = 0.0
    printed: bool = field(default=False, repr=False, compare=False)
    """True once ``check`` has printed the full report (then notebooks show nothing more)."""

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else self.status if self.status != "checked" else "failed"
        return f"<{self.exercise_id}: {verdict}, {self.points:g}/{self.max_points} points>"

    def _ipython_display_(self) -> None:
        # ``check(...)`` as the last line of a cell has already printed its report; showing
        # the returned object again would only repeat it.  A result that was not printed
        # (``check(..., verbose=False)``) shows its one-line summary.
        if not self.printed:
            print(repr(self))

    @property
    def max_rel_error(self) -> float | None:
        errs = [c.max_rel_error for c in self.cases if c.max_rel_error is not None]
        return max(errs) if errs else None

    @property
    def worst_output(self) -> str | None:
        worst = max(
            (c for c in self.cases if c.max_rel_error is not None),
            key=lambda c: c.max_rel_error or 0.0,
            default=None,
        )
        return worst.worst_output if worst else None

    @property
    def diagnosis(self) -> str | None:
        for c in self.cases:
            if c.diagnosis:
                return c.diagnosis
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise_id,
            "passed": self.passed,
            "points": self.points,
            "max_points": self.max_points,
            "status": self.status,
            "diagnosis": self.diagnosis,
            "max_rel_error": self.max_rel_error,
            "worst_output": self.worst_output,
            "messages": list(self.messages),
            "seconds": self.seconds,
            "cases": [dict(vars(c)) for c in self.cases],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExerciseResult:
        """Rebuild a result stored by :meth:`to_dict` (the grader's report)."""
        out = cls(
            exercise_id=str(d["exercise"]),
            passed=bool(d["passed"]),
            points=float(d["points"]),
            max_points=int(d["max_points"]),
            status=str(d.get("status", "checked")),
            messages=[str(m) for m in d.get("messages", [])],
            seconds=float(d.get("seconds", 0.0)),
        )
        fields = set(CaseResult.__dataclass_fields__)
        out.cases = [CaseResult(**{k: v for k, v in c.items() if k in fields}) for c in d.get("cases", [])]
        return out


_EXPECTED: dict[tuple[int, int, str], tuple[Exercise, Any, dict[str, np.ndarray]]] = {}
_EXPECTED_LOCK = threading.Lock()
_TABLE_OVERRIDE: list[ExpectedOutputs] = []


@contextmanager
def judged_by(table: ExpectedOutputs) -> Iterator[None]:
    """Judge with ``table`` (shipped data) instead of running solutions, as the student build does.

    For tests: the instructor edition then gives exactly the student build's verdicts.
    """
    _TABLE_OVERRIDE.append(table)
    try:
        yield
    finally:
        _TABLE_OVERRIDE.pop()


def _table() -> ExpectedOutputs | None:
    if _TABLE_OVERRIDE:
        return _TABLE_OVERRIDE[-1]
    if is_student_edition():
        return shipped()
    return None


def expected_outputs(exercise: Exercise, case: Case, mistake: Mistake | None = None) -> dict[str, np.ndarray]:
    """Outputs of the exercise's solution (or of ``mistake``) on ``case``, as arrays.

    The instructor edition runs the implementation; results are cached per (exercise,
    implementation, case name): the cases are deterministic, and the grader evaluates the
    same cases for every student.  The student build reads them from the table shipped at
    release time (:mod:`bncourse.grading.expected`).

    Raises:
        RuntimeError: the implementation failed on this case (for a mistake: it cannot match).
    """
    table = _table()
    if table is not None:
        out = table.outputs(exercise.id, case.name, mistake.name if mistake is not None else None)
        if out is None:
            raise RuntimeError(f"mistake {mistake.name if mistake else ''!r} of {exercise.id!r} fails on {case.name}")
        return out
    impl = resolve(mistake.impl if mistake is not None else exercise.solution)
    key = (id(exercise), id(impl), case.name)
    with _EXPECTED_LOCK:
        hit = _EXPECTED.get(key)
    if hit is not None and hit[0] is exercise and hit[1] is impl:
        return {k: v.copy() for k, v in hit[2].items()}
    raw = run_one(exercise, impl, case, resolved_namespace(exercise))
    if raw.error or raw.bad_outputs:
        raise RuntimeError(f"reference for {exercise.id!r} failed on {case.name}: {raw.error or raw.bad_outputs}")
    with _EXPECTED_LOCK:
        _EXPECTED[key] = (exercise, impl, {k: v.copy() for k, v in raw.outputs.items()})
    return raw.outputs


def outputs_on_cases(exercise: Exercise, impl: Any) -> dict[str, dict[str, np.ndarray] | None]:
    """``impl`` run on every case of ``exercise``: case name -> outputs, or None if it failed.

    What ``bncourse release`` ships as data (:func:`bncourse.grading.expected.build`).
    """
    impl = resolve(impl)
    ns = resolved_namespace(exercise)
    result: dict[str, dict[str, np.ndarray] | None] = {}
    for case in exercise.cases():
        raw = run_one(exercise, impl, case, ns)
        result[case.name] = None if raw.error or raw.bad_outputs else raw.outputs
    return result


def _above(exp: np.ndarray, atol: float) -> bool:
    """Does ``exp`` hold a value larger than the absolute tolerance (is it not zero up to rounding)?"""
    return exp.size > 0 and bool(np.max(np.abs(exp.astype(np.float64))) > atol)


def _close(got: np.ndarray, exp: np.ndarray, tol: tuple[float, float]) -> bool:
    if got.shape != exp.shape:
        return False
    return bool(np.allclose(got.astype(np.float64), exp.astype(np.float64), rtol=tol[0], atol=tol[1]))


def _matches_mistake(
    exercise: Exercise, mistake: Mistake, case: Case, got: Mapping[str, np.ndarray]
) -> bool:
    try:
        wrong = expected_outputs(exercise, case, mistake)
    except RuntimeError:
        return False
    names = mistake.outputs or tuple(wrong)
    names = tuple(n for n in names if n in wrong and n in got)
    if not names:
        return False
    return all(_close(got[n], wrong[n], case.tolerance) for n in names)


def _diagnose_values(
    exercise: Exercise, case: Case, got: Mapping[str, np.ndarray], exp: Mapping[str, np.ndarray]
) -> str | None:
    if exercise.diagnose is not None:
        try:
            msg = exercise.diagnose(case, dict(got), dict(exp))
        except Exception:  # a hook written for plausible outputs: a wild one is simply not diagnosed
            msg = None
        if msg:
            return msg
    for mistake in exercise.mistakes:
        if _matches_mistake(exercise, mistake, case, got):
            return mistake.diagnosis
    return None


def _evaluate_case(exercise: Exercise, case: Case, raw: RawCase) -> CaseResult:
    res = CaseResult(case=case.name, passed=False)
    if raw.error_kind == "not_implemented":
        res.message = "not implemented yet"
        return res
    if raw.error_kind == "forbidden":
        res.message = raw.error or "used a forbidden module"
        res.diagnosis = (
            f"forbidden: {raw.error.removeprefix('ForbiddenUseError: ') if raw.error else 'a forbidden module'}"
            " — this exercise asks you to compute it yourself with NumPy."
        )
        return res
    if raw.error_kind == "timeout":
        res.message = raw.error or "timed out"
        res.diagnosis = raw.error
        return res
    if raw.error:
        match = _BROADCAST.search(raw.error)
        res.message = (f"ValueError: shapes ({match.group(1)}) and ({match.group(2)}) do not broadcast"
                       if match else raw.error)
        if raw.error_kind == "contract":
            res.diagnosis = raw.error
        return res
    exp = expected_outputs(exercise, case)
    missing = [n for n in exp if n not in raw.outputs and n not in raw.bad_outputs]
    if raw.bad_outputs:
        name, what = next(iter(raw.bad_outputs.items()))
        res.message = f"{name} is {what}, expected an array of shape {exp[name].shape}"
        res.diagnosis = (
            f"{name} came back as {what}: did you forget a `return`?"
            if what == "None"
            else f"{name} must be a NumPy array, got {what}."
        )
        return res
    if missing:
        res.message = f"missing outputs: {', '.join(missing)}"
        return res
    if raw.mutated:
        res.message = f"modified its input {', '.join(raw.mutated)} in place"
        res.diagnosis = (
            f"Your code changes its input `{raw.mutated[0]}` in place (e.g. `x -= mu`); "
            "work on a new array (`x - mu`) so the caller's data stays intact."
        )
        return res
    for name, e in exp.items():
        g = raw.outputs[name]
        if g.shape != e.shape:
            res.message = f"{name} has shape {g.shape}, expected {e.shape}"
            res.diagnosis = _diagnose_values(exercise, case, raw.outputs, exp) or (
                f"{name} has the wrong shape: expected {e.shape}, got {g.shape}."
            )
            return res
    for name, e in exp.items():
        g = raw.outputs[name]
        if e.dtype.kind == "f" and g.dtype != e.dtype:
            res.message = f"{name} has dtype {g.dtype}, expected {e.dtype}"
            res.diagnosis = (
                f"dtype not preserved: {name} is {g.dtype} but the input is {e.dtype}; "
                "avoid float64 constants/arrays (np.zeros(..., dtype=x.dtype), x.dtype.type(eps))."
            )
            return res
    errors = {n: rel_error(raw.outputs[n], e) for n, e in exp.items()}
    # An output that should be zero (a bias gradient through BN, BN(aWx) − BN(Wx)) is judged by
    # the absolute tolerance; its relative error compares two rounding noises and says nothing.
    reported = {n: v for n, v in errors.items() if _above(exp[n], case.tolerance[1])} or errors
    worst = max(reported, key=lambda n: reported[n]) if reported else None
    res.max_rel_error = errors[worst] if worst else 0.0
    res.worst_output = worst
    bad = [n for n, e in exp.items() if not _close(raw.outputs[n], e, case.tolerance)]
    if any(np.isnan(raw.outputs[n]).any() for n in exp if raw.outputs[n].dtype.kind == "f"):
        nan_out = next(n for n in exp if raw.outputs[n].dtype.kind == "f" and np.isnan(raw.outputs[n]).any())
        res.message = f"{nan_out} contains NaN"
        res.diagnosis = _diagnose_values(exercise, case, raw.outputs, exp) or (
            f"{nan_out} contains NaN: look for a division by zero or the square root of a negative number."
        )
        return res
    if bad:
        ok = [n for n in exp if n not in bad]
        res.message = f"{bad[0]} rel err {errors[bad[0]]:.1e}" + (f" ({', '.join(ok)} OK)" if ok else "")
        res.diagnosis = _diagnose_values(exercise, case, raw.outputs, exp)
        return res
    res.passed = True
    return res


def evaluate(exercise: Exercise, raws: list[RawCase], cases: list[Case] | None = None) -> ExerciseResult:
    """Judge the raw results of one exercise against its solution (in the grading process)."""
    cases = cases if cases is not None else exercise.cases()
    by_name = {r.case: r for r in raws}
    results = []
    for case in cases:
        raw = by_name.get(case.name)
        if raw is None:
            results.append(CaseResult(case=case.name, passed=False, message="no result came back"))
        else:
            results.append(_evaluate_case(exercise, case, raw))
    n_pass = sum(r.passed for r in results)
    status = "checked"
    if results and all(r.message == "not implemented yet" for r in results):
        status = "not_implemented"
    points = round(exercise.points * n_pass / len(results), 2) if results else 0.0
    if any(by_name.get(c.name) is not None and by_name[c.name].error_kind == "forbidden" for c in cases):
        status, points, n_pass = "forbidden", 0.0, 0
    out = ExerciseResult(
        exercise_id=exercise.id,
        passed=bool(results) and n_pass == len(results),
        points=points,
        max_points=exercise.points,
        cases=results,
        status=status,
        seconds=sum(r.seconds for r in raws),
    )
    diag = _common_cause(cases, by_name) or out.diagnosis
    if diag:
        out.messages.append(diag)
    return out


_BROADCAST = re.compile(r"operands could not be broadcast together with shapes \(([\d, ]*)\) \(([\d, ]*)\)")


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.replace(" ", "").split(",") if d)


def _common_cause(cases: list[Case], raws: Mapping[str, RawCase]) -> str | None:
    """When most cases raised, the cause of their error (a case that happened to run and
    failed on a shape is a side effect, not the diagnosis)."""
    crashed = [(c, raws[c.name]) for c in cases
               if c.name in raws and raws[c.name].error_kind == "exception" and raws[c.name].error]
    if not crashed or 2 * len(crashed) <= len(cases):
        return None
    case, raw = crashed[0]
    error = raw.error or ""
    match = _BROADCAST.search(error)
    x = next((v for v in case.inputs.values() if isinstance(v, np.ndarray) and v.ndim >= 2), None)
    if match and x is not None:
        shapes = {_shape(match.group(1)), _shape(match.group(2))}
        stat = next((s for s in shapes if s != x.shape), None)
        if stat == (x.shape[0],) and x.ndim == 2:
            return (f"a statistic of yours has shape {stat}, one value per example: it was reduced over axis 1, "
                    f"the features. Reduce over axis 0, the batch: x.mean(axis=0) has shape {x.shape[1:]}, "
                    "one value per feature.")
        if stat is not None:
            return (f"a statistic of yours has shape {stat}, which does not broadcast against the input's shape "
                    f"{x.shape}: check the axes you reduce over (keepdims=True keeps the reduced axes as 1s).")
    if len({r.error for _, r in crashed}) == 1 and len(crashed) == len(cases):
        return None  # one error everywhere: the case lines say it once already
    kind = error.split(":", 1)[0]
    return f"{len(crashed)} of {len(cases)} cases raised {kind}: fix that first (your traceback is below)."


def blame_dependencies(result: ExerciseResult, dependencies: Mapping[str, ExerciseResult]) -> None:
    """Say so in ``result`` when it failed while a function it builds on is wrong.

    ``dependencies`` maps the student's function names the exercise's call used (e.g.
    ``"batchnorm_forward"`` for the backward exercise, which feeds the student's backward
    the cache from the student's forward) to their own results.  When one of them did
    not pass, the failure is put on it rather than on this exercise's function.
    """
    if result.passed:
        return
    wrong = {name: r for name, r in dependencies.items() if not r.passed}
    if not wrong:
        return
    name, dep = next(iter(wrong.items()))
    why = f" ({dep.diagnosis})" if dep.diagnosis else ""
    note = (
        f"Your {name} does not pass its check yet{why}; this exercise is checked with the "
        f"output and cache of your {name}, so fix {name} first."
    )
    for c in result.cases:
        if not c.passed:
            c.diagnosis = None
    if result.cases:
        first = next(c for c in result.cases if not c.passed)
        first.diagnosis = note
    result.messages[:] = [note]
