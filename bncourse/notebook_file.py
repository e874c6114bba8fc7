"""Notebook files: the one place that reads them, finds their cells' tags and hashes files.

Shared by the grader (which must survive any file a student uploads, so it reads plain
JSON with a size limit and structure checks) and by the authoring tools (release, lint,
slides), which read the course's own notebooks with nbformat.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from bncourse.errors import NotebookError

__all__ = ["MAX_NOTEBOOK_BYTES", "cell_source", "cell_tags", "graded_cells", "load_json", "read", "sha256_file"]

MAX_NOTEBOOK_BYTES = 20 * 2**20
"""A notebook larger than this (20 MiB) is refused unread."""


def load_json(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The notebook's JSON and its cells (dicts only), for a file that may be anything.

    Plain JSON with a size limit: nbformat's validation is slow and not needed to find cells.

    Raises:
        ValueError: larger than :data:`MAX_NOTEBOOK_BYTES`, not JSON, no cell list, not nbformat 4.
        OSError: the file cannot be read.
    """
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a notebook (no cell list)")
    if nb.get("nbformat") != 4:
        raise ValueError(f"nbformat {nb.get('nbformat')!r}, expected 4")
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


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file's bytes, in hex, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
