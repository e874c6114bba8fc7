"""Find statements of the answers: the release's guard and the leak test's scanner.

The *answers* are the statements inside the functions of the instructor solutions
(``bncourse/lessons/*/solutions.py``), of the NumPy reference (``bncourse/reference/``)
and of the notebooks' ``### BEGIN SOLUTION`` blocks.  A statement *states an answer* when
its syntax tree equals one of theirs with every identifier erased (variable, argument and
function names become ``_``; attribute and keyword names, operators and constants stay),
so renaming ``mu`` to ``mean`` hides nothing, while ``np.sqrt(var + eps)`` and
``torch.rsqrt(var + eps)`` are different statements.  Statements with fewer than
:data:`MIN_NODES` nodes (``return out, cache``, ``n = x.shape[0]``) are too generic to
count as an answer.
"""

from __future__ import annotations

import ast
import html.parser
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MIN_NODES",
    "Leak",
    "answer_statements",
    "code_blocks_of_html",
    "find_leaks",
    "fingerprint",
    "python_files",
]

MIN_NODES = 10
"""Statements smaller than this (in syntax-tree nodes, contexts and operators not counted)
are not compared: ``mu = x.mean(axis=0)`` is 7, ``x_hat = (x - mu) / np.sqrt(var + eps)`` 12."""

_SKIPPED = (ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


class _Erase(ast.NodeTransformer):
    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id="_", ctx=ast.Load()), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.copy_location(ast.arg(arg="_", annotation=None), node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.name, node.returns, node.decorator_list = "_", None, []
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815 - the ast API name

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.generic_visit(node)
        if node.value is None:
            return node
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


def _size(node: ast.AST) -> int:
    return sum(1 for n in ast.walk(node) if not isinstance(n, _SKIPPED))


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


_NOT_ANSWERS = (ast.Raise, ast.Assert, ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Pass, ast.Delete)
_COMPUTES = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.keyword)


def _computes(node: ast.AST) -> bool:
    """An operator, a comparison, a keyword argument or an index that is not a constant
    (``x[:, None]``, ``x[i]``); ``arrays[0].shape[1]`` is plumbing, not an answer."""
    if isinstance(node, _COMPUTES):
        return True
    return isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Constant)


def _checks_input(stmt: ast.stmt) -> bool:
    """A call into :mod:`bncourse.validation` (input checking is no answer)."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
               and n.func.value.id == "validation" for n in ast.walk(stmt))


def fingerprint(stmt: ast.stmt) -> str | None:
    """The statement with identifiers erased, as a string; None if it cannot state an answer.

    Not counted: docstrings, ``raise``/``assert``/imports, calls of ``validation.*`` (input
    checks), statements that compute nothing
    (no operator, comparison, keyword argument or non-constant index:
    ``out, cache = forward(x, g, b)``, ``d = int(arrays[0].shape[1])``)
    and statements under :data:`MIN_NODES` nodes after erasing (an annotation is erased too).
    """
    if _is_docstring(stmt) or isinstance(stmt, _NOT_ANSWERS) or _checks_input(stmt):
        return None
    erased = _Erase().visit(ast.parse(ast.unparse(stmt)).body[0])
    if _size(erased) < MIN_NODES or not any(_computes(n) for n in ast.walk(erased)):
        return None
    return ast.dump(erased, annotate_fields=False, include_attributes=False)


def _simple_statements(tree: ast.AST) -> Iterable[ast.stmt]:
    """Every statement that is not a compound one (no def, class, for, if, with, try)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not hasattr(node, "body"):
            yield node


def _function_statements(tree: ast.AST) -> Iterable[ast.stmt]:
    """The simple statements inside functions (module-level imports and constants are not answers)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in node.body:
                yield from _simple_statements(stmt)


@dataclass(frozen=True)
class Leak:
    """A statement of an answer found somewhere it must not be."""

    where: str
    line: int
    code: str
    answer: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.code!r} states {self.answer}"


def answer_statements(sources: Iterable[tuple[str, str]], *, whole: bool = False) -> dict[str, str]:
    """``fingerprint -> "where:line"`` for the statements of the answer ``sources``.

    ``sources`` are ``(where, python source)``; only statements inside functions count
    unless ``whole`` (a notebook's solution block is a function body already).
    """
    found: dict[str, str] = {}
    for where, source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for stmt in (_simple_statements(tree) if whole else _function_statements(tree)):
            fp = fingerprint(stmt)
            if fp is not None:
                found.setdefault(fp, f"{where}:{stmt.lineno}")
    return found


def _parse_loosely(source: str) -> ast.Module:
    """``source`` parsed; a block that does not parse as a whole is parsed line by line."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    body: list[ast.stmt] = []
    for i, line in enumerate(source.splitlines(), start=1):
        try:
            stmts = ast.parse(line.strip()).body
        except SyntaxError:
            continue
        for s in stmts:
            ast.increment_lineno(s, i - 1)
        body += stmts
    return ast.Module(body=body, type_ignores=[])


def find_leaks(answers: dict[str, str], sources: Iterable[tuple[str, str]]) -> list[Leak]:
    """Every statement of ``sources`` (``(where, python source)``) that states one of ``answers``."""
    leaks: list[Leak] = []
    for where, source in sources:
        for stmt in _simple_statements(_parse_loosely(source)):
            fp = fingerprint(stmt)
            if fp is not None and fp in answers:
                leaks.append(Leak(where, stmt.lineno, ast.unparse(stmt), answers[fp]))
    return leaks


class _CodeBlocks(html.parser.HTMLParser):
    """The text of every ``<pre>`` element (nbconvert puts each input's code in one)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self._depth:
            self._depth -= 1
            if not self._depth:
                self.blocks.append("".join(self._text))
                self._text = []

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


def code_blocks_of_html(text: str) -> list[str]:
    """The code shown in an HTML page: the text of its ``<pre>`` blocks, entities decoded."""
    parser = _CodeBlocks()
    parser.feed(text)
    return [re.sub(r"\r\n?", "\n", b) for b in parser.blocks]


def python_files(root: Path) -> list[tuple[str, str]]:
    """``(relative path, text)`` of every ``.py`` file under ``root``."""
    return [(p.relative_to(root).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts]
