"""Notebook files: the one place that reads them, finds their cells' tags and hashes files.

Shared by the grader (which must survive any file a student uploads, so it reads plain
JSON with a size limit and structure checks) and by the authoring tools (release, lint,
slides), which read the course's own notebooks with nbformat.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

from bncourse.errors import NotebookError

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "atomic_write",
    "cell_source",
    "cell_tags",
    "graded_cells",
    "load_json",
    "parse_code",
    "read",
    "read_upload",
    "sha256_file",
]

MAX_NOTEBOOK_BYTES = 20 * 2**20
"""A notebook larger than this (20 MiB) is refused unread."""


def read_upload(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of an uploaded file that may be anything: a regular file only, at most ``limit``.

    Opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` on the open
    descriptor, so a symbolic link (to another student's notebook, to ``/dev/zero``), a FIFO
    (which would block), a device or a folder is refused without being read.

    Raises:
        ValueError: not a regular file (saying what it is), or larger than ``limit``.
        OSError: it cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("a symbolic link, not a notebook file: not read") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise ValueError(f"{kind}, not a notebook file: not read")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ValueError(f"larger than {limit >> 20} MB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_json(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The notebook's JSON and its cells (dicts only), for a file that may be anything.

    Plain JSON with a size limit (:func:`read_upload`): nbformat's validation is slow and not
    needed to find cells.  Every field the grader uses is type-checked where it is used.

    Raises:
        ValueError: not a regular file, larger than :data:`MAX_NOTEBOOK_BYTES`, not JSON (or
            nested too deeply to parse), no cell list, not nbformat 4.
        OSError: the file cannot be read.
    """
    data = read_upload(path)
    try:
        nb = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook (no cell list)")
    if nb.get("nbformat") != 4:
        raise ValueError(f"nbformat {nb.get('nbformat')!r}, expected 4")
    if not isinstance(nb.get("metadata", {}), dict):
        nb["metadata"] = {}
    return nb, [c for c in nb["cells"] if isinstance(c, dict)]


def read(path: Path) -> Any:
    """A course notebook as an ``nbformat.NotebookNode`` (version 4).

    Raises:
        NotebookError: no such file, or not a readable notebook (the message names the file).
    """
    import nbformat

    if not path.is_file():
        raise NotebookError(f"{path}: no such notebook")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types on bad JSON
        raise NotebookError(f"{path}: not a readable notebook ({type(exc).__name__}: {exc})") from exc


def cell_tags(cell: Any) -> list[str]:
    """The cell's tags (``metadata.tags``); anything malformed counts as no tag."""
    metadata = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def cell_source(cell: Any) -> str:
    """The cell's source as one string (nbformat allows a list of lines)."""
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(s for s in src if isinstance(s, str)) if isinstance(src, list) else str(src)


_AST_LOCK = threading.Lock()


def parse_code(source: str) -> ast.Module:
    """``ast.parse(source)``, one thread at a time.

    CPython 3.11 keeps the depth counter of the step that turns the parser's tree into
    Python objects in the interpreter's ``ast`` state, shared by every thread. Two threads
    parsing at once (the grader's jobs) then fail with ``SystemError: AST constructor
    recursion depth mismatch`` whenever a garbage collection in the middle of one parse runs
    a finalizer that lets the other thread in: it once stopped the grading of a whole class.

    Raises:
        SyntaxError, ValueError, RecursionError, MemoryError: as :func:`ast.parse` does.
    """
    with _AST_LOCK:
        return ast.parse(source)


def graded_cells(cells: list[Any]) -> list[tuple[int, str, str]]:
    """``(index, kind, source)`` of the cells grading runs, in order.

    ``kind`` is ``"imports"`` for the first code cell tagged ``imports`` and
    ``"exercise"`` for every code cell tagged ``exercise``; nothing else runs (the
    experiments never do).
    """
    found: list[tuple[int, str, str]] = []
    seen_imports = False
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = cell_tags(cell)
        if "imports" in tags and not seen_imports:
            seen_imports = True
            found.append((i, "imports", cell_source(cell)))
        elif "exercise" in tags:
            found.append((i, "exercise", cell_source(cell)))
    return found


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a part.

    Writes a temporary file in the same folder (created if missing) and renames it over
    ``path``; on any failure the temporary file is removed and ``path`` is untouched.  Text is
    written as UTF-8, line endings as given.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex, read 1 MiB at a time.

    An uploaded file that is not a regular one (see :func:`read_upload`) gets the hash of
    its refusal, so it is never confused with a real notebook and never read.
    """
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return hashlib.sha256(f"unreadable: {exc.errno}".encode()).hexdigest()
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return hashlib.sha256(b"not a regular file").hexdigest()
        for block in iter(lambda: os.read(fd, 1 << 20), b""):
            h.update(block)
    finally:
        os.close(fd)
    return h.hexdigest()
