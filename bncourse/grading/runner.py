"""Run a student's implementation on an exercise's cases and keep only data.

This is the half of grading that runs *with the student's code*: in the notebook (inside
:func:`bncourse.grading.check`) or inside the grader's sandboxed subprocess.  It returns
plain data — arrays, strings, booleans — so that the comparison against the reference can
happen somewhere the student's code cannot reach (:mod:`bncourse.grading.evaluate`).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import dis
import functools
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bncourse.errors import ExerciseError
from bncourse.grading.jail import JAIL_ROOT
from bncourse.grading.registry import Case, ContractError, Exercise, resolve

__all__ = [
    "ForbiddenUseError",
    "RawCase",
    "forbidden_base",
    "forbidden_uses",
    "is_within",
    "not_students_code",
    "resolved_namespace",
    "restricted",
    "run_cases",
    "run_one",
    "student_dependencies",
    "trimmed_traceback",
    "watching_calls",
]

_PACKAGE_DIR = __file__.rsplit("/grading/", 1)[0]


@dataclass
class RawCase:
    """What one call of the student's code produced (data only).

    Attributes:
        case: the case's name.
        outputs: output name -> array (only values ``numpy.asarray`` could convert).
        bad_outputs: output name -> description of a value that is not an array.
        error: ``"ExcType: message"`` when the call raised, else ``None``.
        error_kind: ``"not_implemented"``, ``"contract"``, ``"exception"``,
            ``"forbidden"`` or ``None``.
        traceback: the traceback trimmed to the student's own frames.
        mutated: names of inputs the call modified in place.
        seconds: wall-clock time of the call.
    """

    case: str
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    bad_outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    traceback: str = ""
    mutated: list[str] = field(default_factory=list)
    seconds: float = 0.0


_PREFIXES = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})
"""Where Python and its standard library live (a venv's base prefix holds the stdlib)."""


def _is_course_frame(filename: str) -> bool:
    """Is this code the course's or a library's (Python's own import machinery included)?"""
    return filename.startswith((_PACKAGE_DIR, "<frozen ")) or "site-packages" in filename or (
        filename.startswith((*_PREFIXES, JAIL_ROOT)) and "<" not in filename
    )


def not_students_code(obj: Any) -> str | None:
    """Where ``obj`` comes from when the student did not write it, else None.

    What the grader runs for an exercise must be code from the student's cells: handing in
    a course stand-in (``population_stats = best_available("population_stats", None)``), a
    library function or a ``functools.partial`` of one runs no student frame at all, so no
    watch on the student's calls could see it.  Looks through ``functools.partial`` and
    ``__wrapped__``; a class (or a callable instance's class) counts by the module that
    defined it; a builtin, a ufunc or anything else without Python code is not the student's.
    """
    target = obj
    for _ in range(20):
        if isinstance(target, functools.partial):
            target = target.func
        elif isinstance(target, (types.FunctionType, types.MethodType, type)) and hasattr(target, "__wrapped__"):
            target = target.__wrapped__
        else:
            break
    if not isinstance(target, (types.FunctionType, types.MethodType, type)):
        if not callable(target):
            return None  # not callable at all: running it says so
        target = type(target)
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
    if isinstance(target, type):
        if target.__module__ == "__main__":
            return None
        module = sys.modules.get(target.__module__)
        filename = getattr(module, "__file__", None)
        return name if filename is None or _is_course_frame(filename) else None
    code = getattr(target, "__code__", None)
    if code is None:
        return name
    return name if _is_course_frame(code.co_filename) else None


def forbidden_base(cls: Any, forbidden: tuple[str, ...]) -> str | None:
    """The first base class of the student's class ``cls`` that comes from a module the
    exercise forbids (``class BatchNorm1d(Base)`` with ``Base`` = ``torch.nn.BatchNorm1d``
    imported under another name runs torch's code, not the student's), else None."""
    if not isinstance(cls, type):
        return None
    for base in cls.__mro__[1:]:
        if base is not object and _is_forbidden_module(getattr(base, "__module__", None), forbidden):
            return f"{base.__module__}.{base.__qualname__}"
    return None


def _is_library_frame(frame: types.FrameType) -> bool:
    """Is this frame running the course's or a library's code?

    Code a library generates at run time (a dataclass's ``__init__``, a namedtuple's
    ``__new__``) has a file name like ``<string>``; it counts as the library whose globals it
    runs in.  The student's cells are ``<cell N>`` or a notebook's, in ``__main__``.
    """
    filename = frame.f_code.co_filename
    if _is_course_frame(filename):
        return True
    if not filename.startswith("<"):
        return False
    name = str(frame.f_globals.get("__name__"))
    if name == "__main__":  # a notebook's or a grader cell's namespace: the student's
        return False
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None)
    return isinstance(origin, str) and _is_course_frame(origin)


def trimmed_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with the course's and libraries' frames removed.

    What is left is the student's own code (notebook cells), which is what they can fix.
    """
    walked = traceback.StackSummary.extract(traceback.walk_tb(exc.__traceback__), lookup_lines=False)
    frames = [f for f in walked if not _is_course_frame(f.filename)]  # lines read only for these
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _copy_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in inputs.items()}


def _mutated(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    names = []
    for k, v in before.items():
        w = after[k]
        if (isinstance(v, np.ndarray) and isinstance(w, np.ndarray)) and (
            v.shape != w.shape or not np.array_equal(v, w, equal_nan=True)
        ):
            names.append(k)
    return names


def _to_array(value: Any) -> np.ndarray | str:
    """``value`` as an ndarray, or a description of why it is not one."""
    if value is None:
        return "None"
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, np.generic, float, int, bool)):
        arr = np.asarray(value)
        if arr.dtype == object:
            return f"an object array of shape {arr.shape}"
        return np.array(arr, copy=True)
    if isinstance(value, (list, tuple)):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            return f"a {type(value).__name__} of length {len(value)}"
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            return f"a {type(value).__name__} of length {len(value)}"
        return arr
    return f"a {type(value).__name__}"


def run_one(
    exercise: Exercise,
    fn: Callable[..., Any],
    case: Case,
    namespace: Mapping[str, Any],
    forbidden: tuple[str, ...] = (),
) -> RawCase:
    """Call ``fn`` on one case through the exercise's ``call``; never raises.

    With ``forbidden``, every call the student's own code makes while the case runs is
    watched (:func:`watching_calls`): a call straight into a forbidden module or object
    fails the case as ``"forbidden"``, however the student's code got hold of it.
    """
    raw = RawCase(case=case.name)
    inputs = _copy_inputs(case.inputs)
    pristine = _copy_inputs(case.inputs)
    start = time.perf_counter()
    _ATTEMPTS.clear()
    try:
        with watching_calls(forbidden, inputs, namespace) as hand_over:
            result = exercise.call(hand_over(fn), inputs, namespace)
    except ForbiddenUseError as exc:
        raw.error, raw.error_kind = f"ForbiddenUseError: {exc}", "forbidden"
    except NotImplementedError as exc:
        raw.error, raw.error_kind = f"NotImplementedError: {exc}", "not_implemented"
    except ContractError as exc:
        raw.error, raw.error_kind = str(exc), "contract"
    except (Exception, SystemExit) as exc:  # the student's code may raise anything
        raw.error, raw.error_kind = f"{type(exc).__name__}: {exc}", "exception"
        if isinstance(exc, SystemExit):
            raw.error = f"SystemExit({exc.code!r}): the code called sys.exit()"
        raw.traceback = trimmed_traceback(exc)
    else:
        if not isinstance(result, Mapping):
            raw.error, raw.error_kind = "the exercise's call returned no outputs", "contract"
        else:
            for name, value in result.items():
                conv = _to_array(value)
                if isinstance(conv, str):
                    raw.bad_outputs[name] = conv
                else:
                    raw.outputs[name] = conv
    raw.seconds = time.perf_counter() - start
    if _ATTEMPTS and raw.error_kind != "forbidden":  # a forbidden use the code caught itself
        raw.outputs.clear()
        raw.bad_outputs.clear()
        raw.error, raw.error_kind = f"ForbiddenUseError: {_ATTEMPTS[0]}", "forbidden"
    raw.mutated = _mutated(pristine, inputs)
    return raw


def run_cases(
    exercise: Exercise,
    fn: Callable[..., Any],
    namespace: Mapping[str, Any] | None = None,
    cases: list[Case] | None = None,
    *,
    restrict: bool = True,
) -> list[RawCase]:
    """Run ``fn`` on every case of ``exercise``.

    ``namespace`` supplies the other names the call needs (the student's versions where
    they exist); the exercise's own ``namespace`` fills the gaps.  With ``restrict`` the
    student's code runs through :func:`restricted`, so that a use of one of the
    exercise's ``forbidden`` modules fails the case as ``"forbidden"``.
    """
    ns: dict[str, Any] = resolved_namespace(exercise)
    for name in student_dependencies(exercise, namespace):
        dep = (namespace or {})[name]
        ns[name] = restricted(dep, exercise.forbidden) if restrict else dep
    if restrict and exercise.forbidden:
        fn = restricted(fn, exercise.forbidden)
    watched = exercise.forbidden if restrict else ()
    return [run_one(exercise, fn, case, ns, watched) for case in (cases if cases is not None else exercise.cases())]


def resolved_namespace(exercise: Exercise) -> dict[str, Any]:
    """The exercise's ``namespace`` with every :class:`~bncourse.grading.registry.Ref` resolved.

    In the student build the solutions are absent: a name the student has not defined
    becomes a function that explains which of their functions the exercise runs.
    """
    ns: dict[str, Any] = {}
    for name, impl in exercise.namespace.items():
        try:
            ns[name] = resolve(impl)
        except ExerciseError:
            ns[name] = _undefined(name)
    return ns


def _undefined(name: str) -> Callable[..., Any]:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ContractError(
            f"this exercise runs your own {name}: define it in the notebook and run its cell first"
        )

    missing.__name__ = missing.__qualname__ = name
    return missing


def student_dependencies(exercise: Exercise, namespace: Mapping[str, Any] | None) -> list[str]:
    """Names in ``exercise.namespace`` that ``namespace`` (the student's) defines itself.

    E.g. the backward exercise uses the student's ``batchnorm_forward`` (and so the
    student's own cache layout) when the notebook defines one.
    """
    if not namespace:
        return []
    return [
        k for k in exercise.namespace
        if k in namespace and callable(namespace[k]) and namespace[k] is not exercise.namespace[k]
    ]


# --- forbidden modules -------------------------------------------------------------------

_ATTEMPTS: list[str] = []
"""Forbidden uses seen during the current call (kept even if the student's code catches them)."""


class ForbiddenUseError(Exception):
    """The student's code used a module the exercise forbids (torch, bncourse.reference, ...)."""


class _Unavailable:
    """Stands in for a forbidden module or object: any use records it and raises."""

    def __init__(self, what: str) -> None:
        object.__setattr__(self, "_what", what)

    def _refuse(self) -> ForbiddenUseError:
        msg = f"{object.__getattribute__(self, '_what')} is not available in this exercise"
        _ATTEMPTS.append(msg)
        return ForbiddenUseError(msg)

    def __getattr__(self, name: str) -> Any:
        raise self._refuse()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse()

    def __getitem__(self, key: Any) -> Any:
        raise self._refuse()

    def __repr__(self) -> str:
        return f"<unavailable: {object.__getattribute__(self, '_what')}>"


LESSON_INTERNALS = ("exercises", "solutions", "mistakes")
"""Parts of every lesson package a student's code may never use, whatever the exercise:
``bncourse.lessons.<lesson>.solutions`` holds the answers."""


def is_lesson_internal(module: str) -> bool:
    """Is ``module`` a lesson's exercise declarations, solutions or mistakes (or inside one)?"""
    parts = module.split(".")
    return len(parts) >= 4 and parts[:2] == ["bncourse", "lessons"] and parts[3] in LESSON_INTERNALS


ALWAYS_FORBIDDEN = ("bncourse.grading.expected",)
"""Modules no exercise may use: the expected outputs the student build ships."""


def is_within(name: str, prefixes: Iterable[str]) -> bool:
    """Is the dotted ``name`` one of ``prefixes`` or inside one? (``torch.nn`` is within
    ``torch``; ``torchvision`` is not.)"""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_forbidden_module(module: str | None, forbidden: tuple[str, ...]) -> bool:
    if not isinstance(module, str):
        return False
    return is_lesson_internal(module) or is_within(module, (*ALWAYS_FORBIDDEN, *forbidden))


def _named(module: str | None, qualname: str | None, forbidden: tuple[str, ...]) -> str | None:
    """The entry of ``forbidden`` that names this object (``"pkg.attr"``), or None.

    ``"bncourse.oracle.batchnorm_forward"`` names the function ``batchnorm_forward`` defined
    in ``bncourse.oracle`` or any of its modules (and its methods, for a class): an
    exercise's own stand-in is forbidden by name wherever it was imported from, even where
    the rest of the oracle is allowed.  Nothing is imported to decide.
    """
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    for entry in forbidden:
        package, _, attr = entry.rpartition(".")
        if package and is_within(module, [package]) and is_within(qualname, [attr]):
            return entry
    return None


def _forbidden_value(value: Any, forbidden: tuple[str, ...]) -> str | None:
    """Why ``value`` may not be used (``"<module>"`` or ``"<dotted name>"``), or None."""
    module = _module_of(value)
    if _is_forbidden_module(module, forbidden):
        return module
    try:
        qualname = getattr(value, "__qualname__", None)
    except Exception:
        return None
    return _named(module, qualname, forbidden)


def _callee_module(event: str, frame: types.FrameType, arg: Any) -> tuple[str | None, Any]:
    """``(module, code-or-callable)`` of what a profiled ``call``/``c_call`` event enters."""
    if event == "call":
        return frame.f_globals.get("__name__"), frame.f_code
    module = getattr(arg, "__module__", None)
    if not isinstance(module, str):
        owner = getattr(arg, "__self__", None)
        module = type(owner).__module__ if owner is not None and not isinstance(owner, types.ModuleType) else (
            owner.__name__ if isinstance(owner, types.ModuleType) else None)
    return module, arg


def _handed_over(inputs: Mapping[Any, Any], namespace: Mapping[str, Any]) -> set[int]:
    """Ids of the callables the case itself gives the student's code (e.g. the ``f`` a
    gradient checker differentiates, the student's own forward): calling them is allowed."""
    allowed: set[int] = set()
    for value in (*inputs.values(), *namespace.values()):
        if callable(value):
            allowed.add(id(value))
            code = getattr(value, "__code__", None)
            if code is not None:
                allowed.add(id(code))
    return allowed


@contextlib.contextmanager
def watching_calls(
    forbidden: tuple[str, ...], inputs: Mapping[str, Any], namespace: Mapping[str, Any]
) -> Iterator[Callable[[Any], Any]]:
    """Record, in this thread, every call the student's code makes into ``forbidden``.

    A profile hook sees each call whose *caller* is the student's own code (not the
    course's or a library's: a library may use torch internally) and records it when the
    callee's module or object is forbidden, so a forbidden function reached through a
    container, an attribute chain or ``getattr`` is caught when it runs, which the static
    check cannot see.  Callables the case hands over (``inputs``, ``namespace``: e.g. the
    student's own forward, which has its own check) may be called, and what they call is
    their business; so may the callables the exercise's ``call`` passes to the student's
    function (wrap it with the yielded ``hand_over``).  A diagnostic like the rest of this
    module, not a security boundary (that is the grader's sandbox).
    """
    if not forbidden:
        yield lambda fn: fn
        return
    allowed = _handed_over(inputs, namespace)
    previous = sys.getprofile()

    def hook(frame: types.FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "c_call"):
            return
        caller = frame.f_back if event == "call" else frame
        if caller is None or _is_library_frame(caller):
            return
        module, what = _callee_module(event, frame, arg)
        if id(what) in allowed:
            return
        name = getattr(what, "co_qualname", None) or getattr(what, "__qualname__", None) or getattr(what, "__name__", "?")
        if _is_forbidden_module(module, forbidden) or _named(module, name, forbidden):
            outer: types.FrameType | None = caller
            while outer is not None and not _is_library_frame(outer):
                if id(outer.f_code) in allowed:  # inside a handed-over function (the student's
                    return                       # forward has its own check)
                outer = outer.f_back
            if len(_ATTEMPTS) < 5:
                _ATTEMPTS.append(f"{module}.{name} is not available in this exercise (called at run time)")

    def hand_over(fn: Any) -> Any:
        if not isinstance(fn, types.FunctionType):
            return fn

        @functools.wraps(fn)
        def called_by_the_exercise(*args: Any, **kwargs: Any) -> Any:
            allowed.update(_handed_over(dict(enumerate(args)), kwargs))
            return fn(*args, **kwargs)

        return called_by_the_exercise

    sys.setprofile(hook)
    try:
        yield hand_over
    finally:
        sys.setprofile(previous)


def _module_of(obj: Any) -> str | None:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    try:
        module = getattr(obj, "__module__", None)
    except Exception:
        return None
    return module if isinstance(module, str) else None


def _guarded_builtins(forbidden: tuple[str, ...]) -> dict[str, Any]:
    real_import = builtins.__import__

    def guarded_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
        wanted = [name] + [f"{name}.{f}" for f in (fromlist or ()) if isinstance(f, str)]
        for full in wanted if level == 0 else []:
            if _is_forbidden_module(full, forbidden):
                raise _Unavailable(f"module {full}")._refuse()
        return real_import(name, globals, locals, fromlist, level)

    table = dict(vars(builtins))
    table["__import__"] = guarded_import
    return table


def _is_student_function(obj: Any, module: str | None) -> bool:
    return isinstance(obj, types.FunctionType) and obj.__module__ == module and not _is_course_frame(
        obj.__code__.co_filename
    )


def restricted(obj: Any, forbidden: tuple[str, ...], _memo: dict[int, Any] | None = None) -> Any:
    """A copy of the student's function (or class) that cannot use ``forbidden`` modules.

    The copy runs the same code with a copy of its globals in which every forbidden module
    or object (``torch``, ``F.batch_norm``, ``bncourse.reference``'s functions, ...) is
    replaced by a stand-in that raises :class:`ForbiddenUseError`; its builtins refuse
    ``import`` of those modules; helper functions it calls from the same notebook are
    restricted the same way.  Library code keeps its own globals.  Anything that is not a
    plain function or class is returned unchanged.
    """
    if not forbidden:
        return obj
    memo = {} if _memo is None else _memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, types.FunctionType):
        if _is_course_frame(obj.__code__.co_filename):
            return obj
        glb: dict[str, Any] = dict(obj.__globals__)
        glb["__builtins__"] = _guarded_builtins(forbidden)  # read when the function is made
        copy_fn = types.FunctionType(obj.__code__, glb, obj.__name__, obj.__defaults__, obj.__closure__)
        copy_fn.__kwdefaults__ = obj.__kwdefaults__
        copy_fn.__qualname__ = obj.__qualname__
        copy_fn.__dict__.update(obj.__dict__)
        memo[id(obj)] = copy_fn
        for k, v in list(glb.items()):
            if k.startswith("__"):
                continue
            why = _forbidden_value(v, forbidden)
            if why is not None and not isinstance(v, _Unavailable):
                glb[k] = _Unavailable(f"{k} (from {why})")
            elif _is_student_function(v, obj.__module__) or (
                isinstance(v, type) and v.__module__ == obj.__module__
            ):
                glb[k] = restricted(v, forbidden, memo)
        return copy_fn
    if isinstance(obj, type) and not _is_forbidden_module(obj.__module__, forbidden):
        methods: dict[str, Any] = {}
        for k, v in vars(obj).items():
            if isinstance(v, types.FunctionType):
                methods[k] = restricted(v, forbidden, memo)
            elif isinstance(v, (staticmethod, classmethod)) and isinstance(v.__func__, types.FunctionType):
                methods[k] = type(v)(restricted(v.__func__, forbidden, memo))
        if not methods:
            return obj
        try:
            sub = type(obj.__name__, (obj,), methods)
        except TypeError:
            return obj
        sub.__qualname__ = obj.__qualname__
        sub.__module__ = obj.__module__
        memo[id(obj)] = sub
        return sub
    return obj


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    out, stack = [], [code]
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


def _functions_of(fn: Any) -> list[types.FunctionType]:
    if isinstance(fn, types.FunctionType):
        return [fn]
    if isinstance(fn, type):
        found = []
        for attr in vars(fn).values():
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, types.FunctionType):
                found.append(attr)
        return found
    call = vars(type(fn)).get("__call__")
    return [call] if isinstance(call, types.FunctionType) else []


def forbidden_uses(fn: Callable[..., Any], forbidden: tuple[str, ...]) -> list[str]:
    """Names ``fn`` uses that come from a forbidden module, e.g. ``["torch (from torch)"]``.

    Looks at the global names its code (and nested code, and the student's helper
    functions and classes it calls, transitively) refers to, and at ``import`` statements
    inside the code.  This is the static half of the check; :func:`restricted` is the
    dynamic half.
    """
    if not forbidden:
        return []
    bad: list[str] = []
    seen: set[int] = set()
    todo = _functions_of(fn)
    while todo:
        f = todo.pop()
        if id(f) in seen or _is_course_frame(f.__code__.co_filename):
            continue
        seen.add(id(f))
        glb = f.__globals__
        for code in _code_objects(f.__code__):
            for ins in dis.get_instructions(code):
                if ins.opname == "IMPORT_NAME" and _is_forbidden_module(str(ins.argval), forbidden):
                    bad.append(f"import {ins.argval}")
            for name in code.co_names:
                if name not in glb:
                    continue
                obj = glb[name]
                why = _forbidden_value(obj, forbidden)
                if why is not None:
                    bad.append(f"{name} (from {why})")
                elif _is_student_function(obj, f.__module__) or (
                    isinstance(obj, type) and obj.__module__ == f.__module__
                ):
                    todo.extend(_functions_of(obj))
    return sorted(set(bad))
