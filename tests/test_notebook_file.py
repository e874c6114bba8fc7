"""bncourse.notebook_file: the grader's reader of uploaded files that may be anything."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from bncourse.notebook_file import load_json, read_upload, sha256_file


def _notebook(path: Path) -> Path:
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}))
    return path


def test_a_regular_notebook_is_read(tmp_path: Path) -> None:
    nb, cells = load_json(_notebook(tmp_path / "a.ipynb"))
    assert nb["nbformat"] == 4 and cells == []


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "devzero"])
def test_what_is_not_a_regular_file_is_refused_unread(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "x.ipynb"
    if kind == "symlink":
        target.symlink_to(_notebook(tmp_path / "other.ipynb"))
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:
        target.symlink_to("/dev/zero")
    done: list[BaseException] = []

    def attempt() -> None:
        try:
            read_upload(target)
        except BaseException as exc:
            done.append(exc)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading blocked"
    assert len(done) == 1 and isinstance(done[0], ValueError) and "not read" in str(done[0])
    assert sha256_file(target) != sha256_file(tmp_path / "other.ipynb") if kind == "symlink" else True


def test_size_limit_and_depth_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.ipynb"
    big.write_bytes(b" " * 2048)
    with pytest.raises(ValueError, match="larger than"):
        read_upload(big, limit=1024)
    deep = tmp_path / "deep.ipynb"
    deep.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        load_json(deep)
    odd = tmp_path / "odd.ipynb"
    odd.write_text(json.dumps({"nbformat": 4, "metadata": [1, 2], "cells": [1, {"cell_type": "code"}]}))
    nb, cells = load_json(odd)
    assert nb["metadata"] == {} and cells == [{"cell_type": "code"}]
