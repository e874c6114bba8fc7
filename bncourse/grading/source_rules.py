"""What an exercise cell's source may not contain: the grader's static rules, shared with ``check``.

The grader applies :func:`static_findings` to every graded cell of a submission; ``check``
applies the same function to the notebook cell that defines the function it is given, so a
use the grader will refuse is refused in the notebook first, with the same words.  These
rules are one layer of several: the jail (the grader's boundary) and the run-time checks of
:mod:`bncourse.grading.runner` catch what a static reading cannot.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence

from bncourse.grading.runner import is_lesson_internal, is_within
from bncourse.notebook_file import parse_code

__all__ = ["REFUSED_NAMES", "module_names", "static_findings"]

_KERNELS = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "BatchNorm1d", "BatchNorm2d",
            "LayerNorm", "GroupNorm", "InstanceNorm2d", "functional"}
REFUSED_NAMES = frozenset({
    "__import__", "importlib", "exec", "eval", "compile", "open", "gc", "ctypes", "subprocess", "builtins",
    "__builtins__", "globals", "vars", "runpy", "inspect", "pickle", "marshal", "linecache",
})
"""Builtins and modules a NumPy exercise never needs: reading one (not bound by the cell itself)
in an exercise cell is refused."""
_SUSPICIOUS_ATTRS = {("sys", "modules"), ("os", "system"), ("os", "popen"), ("os", "fork")}
_GRADING_INTERNALS = ("bncourse.grading.registry", "bncourse.grading.runner", "bncourse.grading.evaluate",
                      "bncourse.grading.sandbox", "bncourse.grading.grader", "bncourse.grading.cases")

_PUBLIC_GRADING = {"check", "best_available", "best_pair", "hint", "passed_checks"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _written_objects(target: ast.AST) -> list[ast.Attribute]:
    """The attributes an assignment target writes into: ``np.allclose = f`` writes
    ``np.allclose``, ``np.__dict__["allclose"] = f`` writes into ``np.__dict__``; the index
    of a subscript is only read (``d[np.arange(n), y] -= 1`` writes into ``d``)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [w for elt in target.elts for w in _written_objects(elt)]
    if isinstance(target, ast.Starred):
        return _written_objects(target.value)
    node = target
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            return [node]  # the outermost attribute written (np.random.seed, not also np.random)
        node = node.value
    return []


_COURSE_CODE_NAME = re.compile(r"\bbncourse[./]|(?:^|[./])reference(?:[./]|$)")


def _names_course_code(text: str) -> bool:
    """Does a string constant name the course's code (``"bncourse/..."``, ``"reference"``,
    ``"bncourse.reference.batchnorm"``), as a dynamic import or a file read would need?

    Prose (a docstring saying "the reference formula") has spaces and does not count.
    """
    return not any(c.isspace() for c in text) and bool(_COURSE_CODE_NAME.search(text))


def _is_grading_internal(module: str) -> bool:
    return is_lesson_internal(module) or is_within(module, _GRADING_INTERNALS)


def _bound_by_the_cell(tree: ast.AST) -> set[str]:
    """Names the cell's own code binds: assignment, loop, ``with`` and ``except`` targets,
    parameters, functions and classes (``vars = x.var(axis=0)`` is a variance, not the
    builtin).  Imports do not count: ``from io import open`` binds the real thing."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)) and node.name:
            bound.add(node.name)
    return bound


def static_findings(
    source: str, forbidden: Sequence[str], module_names: set[str], exercise_cell: bool
) -> tuple[list[str], list[str]]:
    """``(forbidden uses, tampering)`` found in one cell's source.

    ``module_names``: names bound to imported modules in the notebook's cells (the targets
    whose attributes a monkeypatch would assign).
    """
    try:
        tree = parse_code(source)
    except SyntaxError:
        return [], []
    except (RecursionError, MemoryError, ValueError):  # e.g. a 400 KB expression
        return ["code too deeply nested or too large to check"], []
    bad: list[str] = []
    tamper: list[str] = []
    own_names = _bound_by_the_cell(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names])
            if exercise_cell:
                bad += [f"import {m}" for m in mods[:1] + mods[1:] if m and is_within(m, forbidden)][:1]
            for m in mods[:1] if isinstance(node, ast.ImportFrom) else mods:
                if _is_grading_internal(m):
                    tamper.append(f"imports {m}")
            if isinstance(node, ast.ImportFrom) and node.module == "bncourse.grading":
                tamper += [f"imports bncourse.grading.{a.name}" for a in node.names
                           if a.name not in _PUBLIC_GRADING]
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target])
            for t in targets:
                for written in _written_objects(t):
                    if _dotted(written).split(".")[0] in module_names:
                        tamper.append(f"assigns {_dotted(written)} (monkeypatching a module)")
        elif (isinstance(node, ast.Call) and _dotted(node.func) in ("setattr", "delattr") and node.args
              and _dotted(node.args[0]).split(".")[0] in module_names):
                tamper.append(f"calls {_dotted(node.func)} on {_dotted(node.args[0])} (monkeypatching a module)")
        if not exercise_cell or not forbidden:
            continue
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if node.attr in _KERNELS and "torch" in forbidden:
                bad.append(f"{dotted or node.attr} (a library kernel)")
            if tuple(dotted.split(".")[:2]) in _SUSPICIOUS_ATTRS:
                bad.append(dotted)
            if is_within(dotted, forbidden):
                bad.append(dotted)
        elif isinstance(node, ast.Name) and node.id in REFUSED_NAMES and node.id not in own_names:
            bad.append(f"{node.id} (not needed for a NumPy exercise)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _names_course_code(node.value):
            bad.append(f"the string {node.value[:40]!r}")
    return sorted(set(bad)), sorted(set(tamper))


def module_names(sources: Iterable[str]) -> set[str]:
    names = {"np", "numpy", "torch", "bncourse", "sys", "os", "builtins"}
    for src in sources:
        try:
            tree = parse_code(src)
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names |= {a.asname or a.name for a in node.names
                          if (node.module or "").startswith(("bncourse", "numpy", "torch"))
                          and not (node.module == "bncourse.grading" and a.name in _PUBLIC_GRADING)}
    return names
