"""The exercise registry: what each exercise id means and how it is checked.

An :class:`Exercise` says which function (or class) a student writes, in which notebook,
on which seeded :class:`Case` s it is run, and how to call it.  Expected outputs come from
the exercise's ``solution`` (the instructor's implementation), called the same way as the
student's code.  Each known mistake is a :class:`Mistake`: a wrong implementation whose
outputs, when the student's match them, give the diagnosis.

Solutions and mistakes are named, not imported: a :class:`Ref` is an import path
(``"bncourse.lessons.l03_forward_backward.solutions:batchnorm_forward"``) resolved on
first use, so the declarations load in the student build of the package, where those
modules do not exist; there the expected outputs and the mistakes' fingerprints come
from data computed at release time (:mod:`bncourse.grading.expected`).  The fallback
``best_available`` hands out is a stand-in computed by torch (:mod:`bncourse.oracle`),
also named by a :class:`Ref`.

Exercises are declared in the ``exercises`` module of each lesson package
(``bncourse/lessons/lNN_topic/exercises.py``); they are discovered on first use, so adding
an exercise touches only its lesson's folder (and its notebook).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bncourse.errors import ExerciseError

__all__ = [
    "NUMPY_FORBIDDEN",
    "Case",
    "ContractError",
    "Exercise",
    "LessonPart",
    "Mistake",
    "Ref",
    "all_exercises",
    "exercise_ids",
    "exercises_for_notebook",
    "get_exercise",
    "register",
    "unregister",
]

Outputs = dict[str, Any]
CallFn = Callable[[Callable[..., Any], Mapping[str, Any], Mapping[str, Any]], Outputs]
"""``call(fn, inputs, namespace) -> outputs``: run ``fn`` on a case's inputs.

``inputs`` are private copies; ``namespace`` maps names to the implementations the call
may need besides ``fn`` (e.g. the backward exercise looks up ``batchnorm_forward``).  The
returned dict maps output names to arrays (or anything ``numpy.asarray`` accepts).
Raise :class:`ContractError` when the student's return value breaks the contract in a way
worth explaining (e.g. ``(cache, out)`` instead of ``(out, cache)``).
"""


class Ref:
    """An implementation named by its import path ``"package.module:attribute"``.

    Calling a Ref imports the module and calls the attribute; :meth:`resolve` returns the
    attribute itself (a function or a class).  In the student build the solution and
    mistake modules are absent: resolving one of their Refs raises :class:`ExerciseError`
    saying so (the checks there never need to).
    """

    __slots__ = ("_target", "path")

    def __init__(self, path: str) -> None:
        if path.count(":") != 1:
            raise ExerciseError(f"a Ref is 'package.module:attribute', got {path!r}")
        self.path = path
        self._target: Any = None

    @property
    def module(self) -> str:
        return self.path.split(":")[0]

    @property
    def attribute(self) -> str:
        return self.path.split(":")[1]

    def resolve(self) -> Any:
        """The function or class this Ref names (imported once)."""
        if self._target is None:
            try:
                module = importlib.import_module(self.module)
            except ModuleNotFoundError as exc:
                raise ExerciseError(
                    f"{self.path} is not in this build of bncourse ({exc}); the student build "
                    "carries no solutions or mistakes"
                ) from None
            try:
                self._target = getattr(module, self.attribute)
            except AttributeError:
                raise ExerciseError(f"{self.module} has no attribute {self.attribute!r}") from None
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Ref({self.path!r})"


def resolve(impl: Any) -> Any:
    """``impl`` itself, or what it names if it is a :class:`Ref`."""
    return impl.resolve() if isinstance(impl, Ref) else impl


class LessonPart:
    """A lesson's ``solutions`` or ``mistakes`` module, by name, never imported by the declarations.

    ``solutions = LessonPart(__name__, "solutions")`` in a lesson's ``exercises`` module;
    then ``solutions.batchnorm_forward`` is the :class:`Ref`
    ``"bncourse.lessons.<lesson>.solutions:batchnorm_forward"`` (the same object every time).
    """

    def __init__(self, exercises_module: str, part: str) -> None:
        self._module = f"{exercises_module.rsplit('.', 1)[0]}.{part}"
        self._refs: dict[str, Ref] = {}

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("__"):
            raise AttributeError(name)
        ref = self._refs.get(name)
        if ref is None:
            ref = self._refs[name] = Ref(f"{self._module}:{name}")
        return ref


class ContractError(Exception):
    """Raised by an exercise's ``call`` when a return value breaks the exercise's contract.

    Its message is shown to the student as the diagnosis.
    """


@dataclass(frozen=True)
class Case:
    """One seeded input to an exercise.

    Attributes:
        name: short human label shown on the result line, e.g. ``"float32 x(2, 1)"``.
        inputs: argument name -> value (arrays are copied before every call).
        tolerance: ``(rtol, atol)`` used for every output of this case.
    """

    name: str
    inputs: Mapping[str, Any]
    tolerance: tuple[float, float] = (1e-6, 1e-9)


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation and the diagnosis shown when a student's outputs match it.

    ``impl`` (usually a :class:`Ref` into the lesson's ``mistakes`` module) has the same
    signature as the exercise's function.  ``outputs`` restricts the match to some outputs
    (e.g. only ``"dx"``); ``None`` means all the outputs it returns.
    """

    name: str
    diagnosis: str
    impl: Callable[..., Any]
    outputs: tuple[str, ...] | None = None


#: What a NumPy exercise's code may not use: torch, the course's reference and modules, its
#: torch stand-ins, scikit-learn (each computes the answer instead of the student).
NUMPY_FORBIDDEN: tuple[str, ...] = ("torch", "bncourse.reference", "bncourse.nn", "bncourse.oracle", "sklearn")


@dataclass(frozen=True)
class Exercise:
    """An autograded exercise.

    Attributes:
        id: the name of the function or class the student defines in the notebook, e.g.
            ``"batchnorm_forward"``; the same name in ``check(id, fn)``, the grader's
            gradebook columns and feedback (:attr:`name` is the same string).
        notebook: notebook stem, e.g. ``"03_forward_backward"``.
        solution: the instructor's implementation (same signature as the student's),
            usually a :class:`Ref` into the lesson's ``solutions`` module.
        cases: builds the seeded cases (deterministic: called in both processes).
        call: runs an implementation on a case, see :data:`CallFn`.
        mistakes: known mistakes, tried in order for a diagnosis.
        diagnose: optional extra hook ``(case, got, expected) -> str | None`` for
            diagnoses that output matching cannot give (e.g. a missing sum over the batch).
        namespace: names the call needs besides the function (``name -> implementation``);
            the student's versions are used when they exist, else these.
        fallback: the stand-in :func:`~bncourse.grading.check.best_available` returns while
            the student's function has not passed: a :class:`Ref` into
            :mod:`bncourse.oracle` (computed by torch, not solution code).
        forbidden: module prefixes the student's code must not use (the exercise asks
            for the computation itself, not a call into a library that does it).  Every
            lesson's ``solutions``, ``mistakes`` and ``exercises`` are forbidden on top of these,
            for every exercise (:func:`bncourse.grading.runner.is_lesson_internal`).
        points: maximum points.
        hints: a hint ladder the student climbs on demand with
            :func:`bncourse.grading.check.hint`: first a direction, then the key identity,
            last the formula.  The exercise's docstring keeps only the contract (shapes,
            arguments, returns); the formulas live here.
    """

    id: str
    notebook: str
    solution: Callable[..., Any]
    cases: Callable[[], list[Case]]
    call: CallFn
    mistakes: tuple[Mistake, ...] = ()
    diagnose: Callable[[Case, Outputs, Outputs], str | None] | None = None
    namespace: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    fallback: Ref | Callable[..., Any] | None = None
    forbidden: tuple[str, ...] = ("torch", "bncourse.reference", "bncourse.nn", "sklearn")
    points: int = 10
    hints: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The function or class name the student writes: the exercise id itself."""
        return self.id


LESSONS_PACKAGE = "bncourse.lessons"
"""Where exercise declarations are discovered: ``<LESSONS_PACKAGE>.<lesson>.exercises``."""

_REGISTRY: dict[str, Exercise] = {}
_DISCOVERED = False
_DISCOVERY_LOCK = threading.RLock()
_BROKEN: dict[str, str] = {}
"""Exercise modules that failed to import: module name -> the error (shown, never hidden)."""


ORACLE_PACKAGE = "bncourse.oracle"
"""Where each exercise's stand-in lives by default: ``bncourse.oracle.<exercise id>``."""


def register(exercise: Exercise) -> Exercise:
    """Add ``exercise`` to the registry; an id may be registered only once.

    An exercise declared without a ``fallback`` gets ``Ref("bncourse.oracle:<id>")``; the
    fallback is added to its ``forbidden`` names (by identity: see
    :func:`bncourse.grading.runner.forbidden_uses`).
    """
    if exercise.id in _REGISTRY:
        raise ExerciseError(f"exercise id {exercise.id!r} is registered twice")
    if exercise.fallback is None:
        exercise = dataclasses.replace(exercise, fallback=Ref(f"{ORACLE_PACKAGE}:{exercise.id}"))
    fb = exercise.fallback
    own = f"{fb.module}.{fb.attribute}" if isinstance(fb, Ref) else None
    if own and exercise.forbidden and own not in exercise.forbidden:
        # the exercise's own stand-in is never a building block of its answer
        exercise = dataclasses.replace(exercise, forbidden=(*exercise.forbidden, own))
    _REGISTRY[exercise.id] = exercise
    return exercise


def unregister(exercise_id: str) -> None:
    """Remove an exercise (for tests that register exercises of their own)."""
    _REGISTRY.pop(exercise_id, None)


def _discover() -> None:
    """Import every exercise module once.  Thread-safe: the class grader's threads may ask
    for the registry at the same moment, and none may see it half-filled (the flag is set
    only when every module has been imported, under a lock)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    with _DISCOVERY_LOCK:
        if _DISCOVERED:  # another thread finished while this one waited
            return
        lessons = importlib.import_module(LESSONS_PACKAGE)  # a plugin folder: grading never depends on it
        for info in sorted(pkgutil.iter_modules(lessons.__path__), key=lambda m: m.name):
            if info.name.startswith("_") or not info.ispkg:
                continue
            name = f"{lessons.__name__}.{info.name}.exercises"
            if importlib.util.find_spec(name) is None:
                continue
            try:
                importlib.import_module(name)
            except Exception as exc:  # one broken topic module must not take down every check
                _BROKEN[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                warnings.warn(f"exercise module {name} failed to import: {_BROKEN[name]}", stacklevel=2)
        _DISCOVERED = True


def all_exercises() -> list[Exercise]:
    """Every registered exercise, in notebook order then registration order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda e: e.notebook)


def exercise_ids() -> list[str]:
    """The ids of every registered exercise."""
    return [e.id for e in all_exercises()]


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise with this id; an unknown id raises ExerciseError listing the valid ones."""
    _discover()
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(exercise_id), list(_REGISTRY), n=1, cutoff=0.6)
        guess = f"did you mean {close[0]!r}? " if close else ""
        valid = ", ".join(sorted(_REGISTRY)) or "(none registered)"
        broken = "".join(f"; {m} failed to import: {e}" for m, e in _BROKEN.items())
        raise ExerciseError(f"unknown exercise id {exercise_id!r}; {guess}valid ids: {valid}{broken}") from None


def exercises_for_notebook(notebook: str) -> list[Exercise]:
    """The exercises of one notebook (``notebook`` is a stem like ``"03_forward_backward"``)."""
    return [e for e in all_exercises() if e.notebook == notebook]
