"""Run a student's implementation on an exercise's cases and keep only data.

This is the half of grading that runs *with the student's code*: in the notebook (inside
:func:`bncourse.grading.check`) or inside the grader's sandboxed subprocess.  It returns
plain data — arrays, strings, booleans — so that the comparison against the reference can
happen somewhere the student's code cannot reach (:mod:`bncourse.grading.evaluate`).
"""

from __future__ import annotations

import copy
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bncourse.grading.registry import Case, ContractError, Exercise

__all__ = ["RawCase", "forbidden_uses", "run_cases", "run_one", "trimmed_traceback"]

_PACKAGE_DIR = __file__.rsplit("/grading/", 1)[0]


@dataclass
class RawCase:
    """What one call of the student's code produced (data only).

    Attributes:
        case: the case's name.
        outputs: output name -> array (only values ``numpy.asarray`` could convert).
        bad_outputs: output name -> description of a value that is not an array.
        error: ``"ExcType: message"`` when the call raised, else ``None``.
        error_kind: ``"not_implemented"``, ``"contract"``, ``"exception"`` or ``None``.
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


def _is_course_frame(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or "site-packages" in filename or (
        filename.startswith(sys.prefix) and "<" not in filename
    )


def trimmed_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with the course's and libraries' frames removed.

    What is left is the student's own code (notebook cells), which is what they can fix.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_course_frame(f.filename)]
    lines = traceback.format_list(frames) if frames else []
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _copy_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.copy() if isinstance(v, np.ndarray) else copy.deepcopy(v)) for k, v in inputs.items()}


def _mutated(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    names = []
    for k, v in before.items():
        w = after[k]
        if isinstance(v, np.ndarray) and isinstance(w, np.ndarray):
            if v.shape != w.shape or not np.array_equal(v, w, equal_nan=True):
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
) -> RawCase:
    """Call ``fn`` on one case through the exercise's ``call``; never raises."""
    raw = RawCase(case=case.name)
    inputs = _copy_inputs(case.inputs)
    pristine = _copy_inputs(case.inputs)
    start = time.perf_counter()
    try:
        result = exercise.call(fn, inputs, namespace)
    except NotImplementedError as exc:
        raw.error, raw.error_kind = f"NotImplementedError: {exc}", "not_implemented"
    except ContractError as exc:
        raw.error, raw.error_kind = str(exc), "contract"
    except Exception as exc:  # the student's code may raise anything
        raw.error, raw.error_kind = f"{type(exc).__name__}: {exc}", "exception"
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
    raw.mutated = _mutated(pristine, inputs)
    return raw


def run_cases(
    exercise: Exercise,
    fn: Callable[..., Any],
    namespace: Mapping[str, Any] | None = None,
    cases: list[Case] | None = None,
) -> list[RawCase]:
    """Run ``fn`` on every case of ``exercise``.

    ``namespace`` supplies the other names the call needs (the student's versions where
    they exist); the exercise's own ``namespace`` fills the gaps.
    """
    ns: dict[str, Any] = dict(exercise.namespace)
    if namespace:
        ns.update({k: v for k, v in namespace.items() if k in exercise.namespace and callable(v)})
    return [run_one(exercise, fn, case, ns) for case in (cases if cases is not None else exercise.cases())]


def _referenced_objects(fn: Callable[..., Any]) -> list[tuple[str, Any]]:
    """Global names a function's code (and its nested code) refers to, resolved."""
    code = getattr(fn, "__code__", None)
    if code is None:  # a class: look at its methods
        found: list[tuple[str, Any]] = []
        for attr in vars(fn).values() if isinstance(fn, type) else []:
            if isinstance(attr, types.FunctionType):
                found += _referenced_objects(attr)
        return found
    glb = getattr(fn, "__globals__", {})
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return [(n, glb[n]) for n in sorted(names) if n in glb]


def forbidden_uses(fn: Callable[..., Any], forbidden: tuple[str, ...]) -> list[str]:
    """Names ``fn`` uses that come from a forbidden module, e.g. ``["torch"]``."""
    bad = []
    for name, obj in _referenced_objects(fn):
        module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
        if isinstance(module, str) and any(module == p or module.startswith(p + ".") for p in forbidden):
            bad.append(f"{name} (from {module})")
    return bad
