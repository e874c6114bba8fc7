"""Expected outputs and mistake fingerprints as data: the checks' oracle in the student build.

In the instructor edition the expected outputs of a case are computed by running the
exercise's solution, and a known mistake is recognised by running the mistake's code.  The
student build carries neither: ``bncourse release`` runs them once, on every case of every
exercise, and ships what they returned as ``expected_outputs.json`` next to this module.
:func:`build` computes that table, :func:`dumps` writes it byte-for-byte reproducibly, and
:class:`ExpectedOutputs` answers the same questions from it.  The cases are seeded and
deterministic, so the student build judges the same inputs against the same numbers.

Format (JSON, keys sorted)::

    {"format": 1,
     "exercises": {"<exercise id>": {
         "solution": {"<case name>": [["<output>", ARRAY], ...], ...},
         "mistakes": {"<mistake name>": {"<case name>": [["<output>", ARRAY], ...] | null, ...}}}}}

The outputs of a case are a list of pairs, in the order the exercise's ``call`` returned
them (messages name the first wrong output, so the order matters).

    ARRAY = {"dtype": "<f8", "shape": [4, 3], "data": "<base64 of the C-order bytes>"}

A mistake whose code raised on a case has ``null`` there (it cannot match that case).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

import numpy as np

from bncourse.errors import ExerciseError
from bncourse.grading.registry import Exercise

__all__ = [
    "DATA_FILE",
    "FORMAT",
    "MAX_BYTES",
    "ExpectedOutputs",
    "build",
    "dumps",
    "shipped",
]

DATA_FILE = "expected_outputs.json"
"""The table's file name inside :mod:`bncourse.grading` (student build only)."""
FORMAT = 1
MAX_BYTES = 64 * 1024 * 1024
"""A table larger than this is refused before it is parsed."""

Outputs = dict[str, np.ndarray]
RunFn = Callable[[Exercise, Any], dict[str, Outputs | None]]
"""``run(exercise, impl) -> {case name: outputs or None}`` (None: the implementation raised)."""


def _encode(a: np.ndarray) -> dict[str, Any]:
    a = np.asarray(a)  # not ascontiguousarray: it makes a 0-d array 1-d
    if a.dtype.kind not in "biuf":
        raise ExerciseError(f"expected outputs must be numeric arrays, got dtype {a.dtype}")
    return {
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes(order="C")).decode("ascii"),
    }


def _decode(d: Mapping[str, Any], where: str) -> np.ndarray:
    try:
        dtype = np.dtype(str(d["dtype"]))
        shape = tuple(int(n) for n in d["shape"])
        raw = base64.b64decode(str(d["data"]), validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ExerciseError(f"{where}: not an encoded array ({exc})") from None
    if dtype.kind not in "biuf" or any(n < 0 for n in shape):
        raise ExerciseError(f"{where}: bad dtype {dtype} or shape {shape}")
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(raw):
        raise ExerciseError(f"{where}: {len(raw)} bytes do not make a {dtype} array of shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def build(exercises: Iterable[Exercise], run: RunFn) -> dict[str, Any]:
    """The table for ``exercises``: ``run`` each solution and each mistake on every case.

    ``run`` is :func:`bncourse.grading.evaluate.outputs_on_cases` (passed in, so that this
    module, which the student build ships, never imports the code that runs solutions).

    Raises:
        ExerciseError: a solution failed on one of its own cases (naming both).
    """
    table: dict[str, Any] = {}
    for ex in exercises:
        solution = run(ex, ex.solution)
        failed = [case for case, out in solution.items() if out is None]
        if failed:
            raise ExerciseError(f"the solution of {ex.id!r} fails on its case(s) {', '.join(failed)}")
        mistakes: dict[str, Any] = {}
        for m in ex.mistakes:
            if m.name in mistakes:
                raise ExerciseError(f"exercise {ex.id!r} has two mistakes named {m.name!r}")
            mistakes[m.name] = {
                case: None if out is None else [[k, _encode(v)] for k, v in out.items()]
                for case, out in run(ex, m.impl).items()
            }
        table[ex.id] = {
            "solution": {case: [[k, _encode(v)] for k, v in out.items()] for case, out in solution.items() if out},
            "mistakes": mistakes,
        }
    return {"format": FORMAT, "exercises": table}


def dumps(table: Mapping[str, Any]) -> bytes:
    """The table as JSON bytes, the same bytes for the same table (sorted keys, no spaces)."""
    return json.dumps(table, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


class ExpectedOutputs:
    """The shipped table, decoded lazily: the expected outputs and fingerprints by name."""

    def __init__(self, table: Mapping[str, Any]) -> None:
        if not isinstance(table, Mapping) or table.get("format") != FORMAT:
            raise ExerciseError(f"expected outputs: unknown format (want {{'format': {FORMAT}}})")
        exercises = table.get("exercises")
        if not isinstance(exercises, Mapping):
            raise ExerciseError("expected outputs: no 'exercises' table")
        self._table = exercises
        self._cache: dict[tuple[str, str, str], Outputs | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_bytes(cls, data: bytes) -> ExpectedOutputs:
        if len(data) > MAX_BYTES:
            raise ExerciseError(f"expected outputs: {len(data)} bytes is more than the {MAX_BYTES} allowed")
        return cls(json.loads(data))

    def exercise_ids(self) -> list[str]:
        return sorted(self._table)

    def outputs(self, exercise_id: str, case: str, mistake: str | None = None) -> Outputs | None:
        """The solution's outputs on ``case`` (``mistake=None``) or the named mistake's.

        ``None`` for a mistake whose code raised on that case.

        Raises:
            ExerciseError: the exercise, case or mistake is not in the table (the build is
                older or newer than the declarations).
        """
        key = (exercise_id, case, mistake or "")
        with self._lock:
            if key in self._cache:
                hit = self._cache[key]
                return None if hit is None else {k: v.copy() for k, v in hit.items()}
        where = f"expected outputs of {exercise_id!r}" + (f", mistake {mistake!r}" if mistake else "")
        entry = self._table.get(exercise_id)
        if not isinstance(entry, Mapping):
            raise ExerciseError(f"{where}: not in this build (rebuild the student edition)")
        per_case = entry.get("solution") if mistake is None else entry.get("mistakes", {}).get(mistake)
        if not isinstance(per_case, Mapping) or case not in per_case:
            raise ExerciseError(f"{where}: no case {case!r} in this build (rebuild the student edition)")
        raw = per_case[case]
        if raw is not None and not (isinstance(raw, list) and all(isinstance(p, list) and len(p) == 2 for p in raw)):
            raise ExerciseError(f"{where}, {case}: outputs must be a list of [name, array] pairs")
        decoded = None if raw is None else {str(k): _decode(v, f"{where}, {case}, {k}") for k, v in raw}
        with self._lock:
            self._cache[key] = decoded
        return None if decoded is None else {k: v.copy() for k, v in decoded.items()}


_SHIPPED: ExpectedOutputs | None = None
_SHIPPED_LOCK = threading.Lock()


def shipped() -> ExpectedOutputs:
    """The table shipped inside this build of the package (the student build has one).

    Raises:
        ExerciseError: there is none (the instructor edition computes instead).
    """
    global _SHIPPED
    with _SHIPPED_LOCK:
        if _SHIPPED is None:
            resource = resources.files("bncourse.grading").joinpath(DATA_FILE)
            try:
                data = resource.read_bytes()
            except FileNotFoundError:
                raise ExerciseError(
                    f"bncourse.grading/{DATA_FILE} is missing: this build of bncourse has neither "
                    "the solutions nor their expected outputs"
                ) from None
            _SHIPPED = ExpectedOutputs.from_bytes(data)
        return _SHIPPED
