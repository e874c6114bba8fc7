"""``check(exercise_id, fn)``: instant, specific feedback inside a notebook.

The check runs the student's function on the exercise's seeded cases, compares with the
reference, prints one line per case and, when it recognises the mistake, a one-sentence
diagnosis.  It never raises because of the student's code: exceptions are caught and
shown with a traceback trimmed to the student's own cells.  ``check(..., strict=True)``
(what an autograder test cell calls, e.g. an nbgrader export's) gives the same verdict and
then raises :class:`~bncourse.errors.CheckFailedError` unless every case passed.
"""

from __future__ import annotations

import inspect
import linecache
import textwrap
import types
from collections.abc import Callable, Mapping
from typing import Any

from bncourse.errors import CheckFailedError, ExerciseError
from bncourse.grading.evaluate import ExerciseResult, blame_dependencies, evaluate
from bncourse.grading.registry import Exercise, all_exercises, get_exercise, resolve
from bncourse.grading.runner import (
    forbidden_uses,
    not_students_code,
    run_cases,
    student_dependencies,
)
from bncourse.grading.source_rules import module_names, static_findings

__all__ = [
    "best_available",
    "best_pair",
    "check",
    "exercise_named",
    "failure_message",
    "format_result",
    "hint",
    "passed_checks",
    "run_and_evaluate",
]

_PASSED: dict[str, bool] = {}


LINE_WIDTH = 100
"""Case lines are cut, and messages wrapped, to this many characters (a notebook's output at a
normal width)."""


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_result(result: ExerciseResult, tracebacks: dict[str, str] | None = None) -> str:
    """The compact text ``check`` prints: a header, one line per case, the diagnosis."""
    n_pass = sum(c.passed for c in result.cases)
    if result.status == "not_implemented":
        return f"{result.exercise_id}: not implemented yet — fill in the function, then run this cell again."
    head = (
        f"{result.exercise_id}: {n_pass}/{len(result.cases)} cases passed — "
        f"{result.points:g}/{result.max_points} points"
    )
    if result.status in ("forbidden", "missing", "error", "timeout") and not result.cases:
        head = f"{result.exercise_id}: not accepted — {result.points:g}/{result.max_points} points"
        return "\n".join([head, *(ln for m in result.messages for ln in textwrap.wrap(
            m, LINE_WIDTH, initial_indent="  ✗ ", subsequent_indent="    "))])
    lines = [head]
    failed = [c for c in result.cases if not c.passed]
    if len(failed) > 1 and not any(c.passed for c in result.cases) and len({c.message for c in failed}) == 1:
        # Every case failed for the same reason: say it once instead of once per case.
        lines += textwrap.wrap(f"all {len(failed)} cases: {failed[0].message}", LINE_WIDTH,
                               initial_indent="  ✗ ", subsequent_indent="    ")
        failed_once = True
    else:
        failed_once = False
    width = max((len(c.case) for c in result.cases), default=0)
    for c in result.cases if not failed_once else []:
        mark = "✓" if c.passed else "✗"
        err = f"max rel err {c.max_rel_error:.1e}" if c.max_rel_error is not None else ""
        detail = err if c.passed else (c.message or err)
        lines.append(_fit(f"  {mark} {c.case:<{width}}  {detail}".rstrip(), LINE_WIDTH))
    said = {failed[0].message} if failed_once else set()
    for message in dict.fromkeys(result.messages or ([result.diagnosis] if result.diagnosis else [])):
        if message not in said:  # each message once
            lines += textwrap.wrap(message, LINE_WIDTH, initial_indent="  → ", subsequent_indent="    ")
    shown = next(iter((tracebacks or {}).values()), "")
    if shown and not result.passed:
        lines.append("  Your code raised (first failing case):")
        lines += ["    " + ln for ln in shown.splitlines()]
    if result.passed:
        lines.append("  All cases match the expected outputs. Well done!")
    return "\n".join(lines)


def _internal_error(exercise: Exercise, exc: BaseException) -> ExerciseResult:
    result = ExerciseResult(exercise.id, passed=False, points=0.0, max_points=exercise.points, status="error")
    result.messages.append(
        f"internal error while checking (not your fault; tell your teacher): {type(exc).__name__}: {exc}"
    )
    return result


def _forbidden_result(exercise: Exercise, uses: list[str]) -> ExerciseResult:
    result = ExerciseResult(exercise.id, passed=False, points=0.0, max_points=exercise.points, status="forbidden")
    result.messages.append(
        f"forbidden: {exercise.name} uses {', '.join(uses)}; "
        "this exercise asks you to compute it yourself with NumPy."
    )
    return result


def _notebook_cell_of(fn: Any) -> str | None:
    """The source of the notebook cell that defined ``fn`` (a function or a class), if any.

    A Jupyter kernel compiles each cell under a file name of its own
    (``.../ipykernel_<pid>/<hash>.py``) and keeps the cell's lines in :mod:`linecache`;
    code from anywhere else (a module, a test) has no cell, and gives ``None``.
    """
    if getattr(fn, "__module__", None) != "__main__":
        return None
    functions = [fn] if isinstance(fn, types.FunctionType) else (
        [v for v in vars(fn).values() if isinstance(v, types.FunctionType)] if isinstance(fn, type) else [])
    if not functions:
        return None
    filename = functions[0].__code__.co_filename
    if "ipykernel_" not in filename and not filename.startswith("<ipython-input-"):
        return None
    return "".join(linecache.getlines(filename)) or None


def _cell_findings(fn: Any, exercise: Exercise) -> list[str]:
    """What the grader's static rules (:func:`static_findings`) find in ``fn``'s notebook cell.

    The grader reads the same cell with the same function, so what it will refuse, ``check``
    refuses first.  Names the cell's functions bind to modules count as modules (a
    monkeypatch of ``np`` is tampering).
    """
    source = _notebook_cell_of(fn)
    if source is None:
        return []
    glb = getattr(fn, "__globals__", None) or getattr(inspect.getmodule(fn), "__dict__", {})
    modules = module_names([source]) | {k for k, v in glb.items() if isinstance(v, types.ModuleType)}
    bad, tamper = static_findings(source, exercise.forbidden, modules, True)
    return bad + [f"code that {t}" for t in tamper]


def _forbidden_in(fn: Any, exercise: Exercise) -> list[str]:
    """Everything in ``fn`` the exercise refuses: what its code refers to
    (:func:`forbidden_uses`) and what its notebook cell contains (:func:`_cell_findings`)."""
    return sorted(set(forbidden_uses(fn, exercise.forbidden) + _cell_findings(fn, exercise)))


def exercise_named(name: str, notebook: str | None = None) -> Exercise | None:
    """The exercise whose student function is called ``name`` (same notebook preferred)."""
    matches = [e for e in all_exercises() if e.name == name]
    same = [e for e in matches if e.notebook == notebook]
    return same[0] if same else matches[0] if matches else None


def run_and_evaluate(
    exercise: Exercise, fn: Callable[..., Any], namespace: Mapping[str, Any]
) -> tuple[ExerciseResult, dict[str, str]]:
    """Statically and dynamically checked run of ``fn`` on the exercise's cases, judged.

    The student's functions this exercise builds on (``namespace``) are checked too, and a
    failure caused by a wrong one is put on it (see :func:`blame_dependencies`).
    Returns the result and the trimmed tracebacks by case name.
    """
    if not callable(fn):
        result = ExerciseResult(exercise.id, passed=False, points=0.0, max_points=exercise.points, status="missing")
        result.messages.append(
            f"check expects your function {exercise.name} itself, got {type(fn).__name__}: "
            f"call check({exercise.id!r}, {exercise.name})."
        )
        return result, {}
    origin = not_students_code(fn)
    if origin is not None and origin.startswith("bncourse.oracle"):
        return _forbidden_result(exercise, [f"{origin} (the course's stand-in, not your code)"]), {}
    uses = _forbidden_in(fn, exercise)
    if uses:
        return _forbidden_result(exercise, uses), {}
    raws = run_cases(exercise, fn, namespace)
    result = evaluate(exercise, raws)
    deps: dict[str, ExerciseResult] = {}
    if not result.passed and result.status == "checked":
        for name in student_dependencies(exercise, namespace):
            dep_ex = exercise_named(name, exercise.notebook)
            if dep_ex is not None and dep_ex.id != exercise.id:
                dep_fn = namespace[name]
                dep_uses = _forbidden_in(dep_fn, dep_ex)
                deps[name] = (
                    _forbidden_result(dep_ex, dep_uses)
                    if dep_uses
                    else evaluate(dep_ex, run_cases(dep_ex, dep_fn, namespace))
                )
        blame_dependencies(result, deps)
    return result, {r.case: r.traceback for r in raws if r.traceback}


def failure_message(result: ExerciseResult) -> str:
    """One line saying why ``result`` is not a pass: the verdict, then the diagnosis.

    The message of :class:`~bncourse.errors.CheckFailedError` (``check(..., strict=True)``).
    """
    if result.status == "not_implemented":
        return f"{result.exercise_id}: not implemented yet (0/{result.max_points} points)"
    n_pass = sum(c.passed for c in result.cases)
    verdict = (f"{result.exercise_id}: {n_pass}/{len(result.cases)} cases passed"
               if result.cases else f"{result.exercise_id}: not accepted")
    reasons = list(dict.fromkeys(result.messages or ([result.diagnosis] if result.diagnosis else [])))
    if not reasons:
        reasons = list(dict.fromkeys(c.message for c in result.cases if not c.passed and c.message))
    why = "; ".join(reasons) or "the outputs do not match the expected ones"
    return f"{verdict} — {result.points:g}/{result.max_points} points: {why}"


_HINTS_SHOWN: dict[str, int] = {}


def hint(exercise_id: str, level: int | None = None) -> str:
    """Print the next hint of an exercise's ladder (and return it).

    Each call climbs one rung: a direction first, then the key identity, last the formula.
    ``level`` (1-based) shows that rung instead.  After the last rung, the last is shown again.

    Raises:
        ExerciseError: unknown exercise id (with a "did you mean").
    """
    exercise = get_exercise(exercise_id)
    ladder = exercise.hints
    if not ladder:
        text = f"{exercise_id} has no hints: its docstring says what to compute."
        print(text)
        return text
    if level is None:
        level = min(_HINTS_SHOWN.get(exercise_id, 0) + 1, len(ladder))
    if not 1 <= level <= len(ladder):
        raise ExerciseError(f"{exercise_id} has hints 1 to {len(ladder)}, not {level}")
    _HINTS_SHOWN[exercise_id] = max(_HINTS_SHOWN.get(exercise_id, 0), level)
    more = (f"  (call hint({exercise_id!r}) again for hint {level + 1})" if level < len(ladder)
            else "  (that was the last hint)")
    text = f"Hint {level} of {len(ladder)} for {exercise_id}: {ladder[level - 1]}\n{more}"
    print(text)
    return text


def check(
    exercise_id: str,
    fn: Callable[..., Any],
    *,
    verbose: bool = True,
    namespace: Mapping[str, Any] | None = None,
    strict: bool = False,
) -> ExerciseResult:
    """Check ``fn`` against exercise ``exercise_id`` and print the verdict.

    The cases include float64 and float32, N = 2, D = 1, odd shapes and large-mean /
    large-scale inputs (as the exercise defines them).  A use of a module the exercise
    forbids (``torch``, ``bncourse.reference``, ...) is reported and scores 0, whether it
    is seen in the code or only when the code runs.

    Args:
        exercise_id: e.g. ``"batchnorm_forward"``; an unknown id raises ``ExerciseError``
            listing the valid ones (that is a typo in the notebook, not a student error).
        fn: the student's function or class.
        verbose: print the result (default True).
        namespace: where to look up the other functions the exercise builds on (e.g. the
            backward check feeds your backward the cache of *your* ``batchnorm_forward``);
            default: the caller's globals (the notebook).
        strict: after the same verdict (printed as usual), raise
            :class:`~bncourse.errors.CheckFailedError` unless every case passed, with
            :func:`failure_message` as its message: an autograder's test cell (nbgrader
            scores a test cell that raises 0) or a test written with ``check``.

    Returns:
        An :class:`ExerciseResult` with ``passed``, ``points``, ``max_points``,
        ``messages``, ``max_rel_error``, ``worst_output`` and ``diagnosis``.  Errors in the
        student's code never propagate: they are caught and shown with a traceback trimmed
        to the student's own code (with ``strict``, they make the check fail).

    Raises:
        CheckFailedError: ``strict`` and not every case passed (also an ``AssertionError``).
    """
    exercise = get_exercise(exercise_id)
    if namespace is None:
        frame = inspect.currentframe()
        namespace = frame.f_back.f_globals if frame is not None and frame.f_back is not None else {}
        del frame
    tracebacks: dict[str, str] = {}
    try:
        result, tracebacks = run_and_evaluate(exercise, fn, namespace)
    except Exception as exc:  # a bug on our side: report it, never crash the notebook
        result = _internal_error(exercise, exc)
    _PASSED[exercise_id] = result.passed
    if verbose:
        print(format_result(result, tracebacks))
        result.printed = True
    if strict and not result.passed:
        raise CheckFailedError(failure_message(result))
    return result


def passed_checks() -> dict[str, bool]:
    """Exercise id -> whether its last ``check`` in this kernel passed."""
    return dict(_PASSED)


def best_available(exercise_id: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` if it passed its check in this kernel, else the exercise's stand-in.

    The experiments after an exercise call this, so a student who is stuck still sees
    them; it prints which implementation is used.  The stand-in is computed by torch (or
    scipy): :mod:`bncourse.oracle`, never solution code, so it is the same in the student
    build of the package.
    """
    exercise = get_exercise(exercise_id)
    if _PASSED.get(exercise_id):
        print(f"[{exercise_id}] using your {exercise.name} (it passed its check)")
        return fn
    if exercise.fallback is None:
        raise ExerciseError(f"exercise {exercise_id!r} has no stand-in to fall back to")
    print(f"[{exercise_id}] using a stand-in computed by torch (your {exercise.name} has not passed its check yet)")
    stand_in: Callable[..., Any] = resolve(exercise.fallback)
    return stand_in


def best_pair(
    forward_id: str, forward: Callable[..., Any], backward_id: str, backward: Callable[..., Any]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A forward and a backward that fit together: a backward reads its own forward's cache.

    Both are the student's once ``backward_id`` passed its check (that check runs the
    student's own forward, so a passed backward means a right pair); until then both are
    the stand-ins.  Mixing a passed forward with the stand-in backward would hand the
    stand-in a cache it cannot read.  Prints which pair is used.
    """
    fwd_ex, bwd_ex = get_exercise(forward_id), get_exercise(backward_id)
    if _PASSED.get(backward_id):
        print(f"[{backward_id}] using your {fwd_ex.name} and {bwd_ex.name} (the backward passed its check, "
              "with your forward)")
        return forward, backward
    if fwd_ex.fallback is None or bwd_ex.fallback is None:
        raise ExerciseError(f"exercises {forward_id!r}/{backward_id!r} have no stand-ins to fall back to")
    print(f"[{backward_id}] using stand-ins computed by torch for {fwd_ex.name} and {bwd_ex.name} "
          f"(your {bwd_ex.name} has not passed its check yet)")
    return resolve(fwd_ex.fallback), resolve(bwd_ex.fallback)
