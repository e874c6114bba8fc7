"""One bad file never stops the class: each hostile upload sits beside an honest student in
one run; the run exits 0, writes the gradebook, gives the honest student full marks, and
reports the bad upload as a row with a reason (or, for what is not a notebook, skips it).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from bncourse.cli import main
from tests.jail_helpers import isolation_args
from tests.paths import NOTEBOOKS_DIR

pytestmark = pytest.mark.slow

NB = "05_test_time.ipynb"  # a quick notebook to grade


def _honest(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.read(NOTEBOOKS_DIR / NB, as_version=4), path)


def _json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _deep(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")


def _mutated(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        nb = json.loads((NOTEBOOKS_DIR / NB).read_text())
        change(nb)
        _json(path, nb)
    return make


def _first_code(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "code")


def _exercise(nb: dict) -> dict:
    return next(c for c in nb["cells"] if "exercise" in c.get("metadata", {}).get("tags", []))


HOSTILE: dict[str, Callable[[Path], None]] = {
    "a folder named .ipynb": lambda p: (p / "x").mkdir(parents=True),
    "a FIFO": lambda p: (p.parent.mkdir(parents=True, exist_ok=True), os.mkfifo(p)),
    "a symlink to /dev/zero": lambda p: (p.parent.mkdir(parents=True, exist_ok=True), p.symlink_to("/dev/zero")),
    "a symlink to another student's notebook": lambda p: (p.parent.mkdir(parents=True, exist_ok=True),
                                                          p.symlink_to(p.parent.parent / "honest" / NB)),
    "a symlink to the instructor notebook": lambda p: (p.parent.mkdir(parents=True, exist_ok=True),
                                                       p.symlink_to(NOTEBOOKS_DIR / NB)),
    "JSON nested 100,000 deep": _deep,
    "notebook metadata is a list": _mutated(lambda nb: nb.update(metadata=[1, 2])),
    "cell metadata is a list": _mutated(lambda nb: _exercise(nb).update(metadata=[1])),
    "source is a list of numbers": _mutated(lambda nb: _exercise(nb).update(source=[1, 2])),
    "the notebook's name is a list": _mutated(lambda nb: nb["metadata"].update(bncourse={"notebook": ["x"]})),
    "a 400 KB expression": _mutated(lambda nb: _exercise(nb).update(source="x = " + "1+" * 200_000 + "1\n")),
    "cells is a dict": _mutated(lambda nb: nb.update(cells={"a": 1})),
}


@pytest.mark.parametrize("kind", list(HOSTILE), ids=list(HOSTILE))
def test_one_hostile_file_does_not_stop_the_class(kind: str, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    _honest(subs / "honest" / NB)
    HOSTILE[kind](subs / "mallory" / NB)
    status = main(["grade", str(subs), "--out", str(tmp_path / "out"), "--timeout", "60", *isolation_args()])
    assert status == 0
    with open(tmp_path / "out" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["honest"]["total"] == rows["honest"]["max"], rows["honest"]
    assert "mallory" in rows  # every upload is a row: graded as far as it goes, or a reason
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (mallory,) = [s for s in report["submissions"] if s["student"] == "mallory"]
    if kind in NOT_READ:
        assert float(rows["mallory"]["total"]) == 0.0
        assert any("not read" in e for e in mallory["errors"]), mallory["errors"]


NOT_READ = {"a folder named .ipynb", "a FIFO", "a symlink to /dev/zero", "a symlink to another student's notebook",
            "a symlink to the instructor notebook"}


def _report(tmp_path: Path, subs: Path) -> tuple[dict[str, dict[str, str]], list[dict]]:
    assert main(["grade", str(subs), "--out", str(tmp_path / "out"), *isolation_args()]) == 0
    with open(tmp_path / "out" / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return rows, json.loads((tmp_path / "out" / "report.json").read_text())["submissions"]


def test_a_folder_named_after_another_student_does_not_steal_their_grade(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    _honest(subs / "alice" / NB)
    stub = json.loads((NOTEBOOKS_DIR / NB).read_text())
    for cell in stub["cells"]:  # aaron's upload: a blank notebook inside a folder named alice
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = "def nothing():\n    pass\n"
    _json(subs / "aaron" / "alice" / NB, stub)  # sorts before alice/
    rows, report = _report(tmp_path, subs)
    assert rows["alice"]["total"] == rows["alice"]["max"]
    assert float(rows["aaron"]["total"]) == 0.0
    (alice,) = [s for s in report if s["student"] == "alice"]
    assert alice["path"].endswith(f"alice/{NB}") and "aaron" not in alice["path"]


def test_two_files_for_one_students_notebook_are_a_conflict_not_a_silent_drop(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    _honest(subs / "alice" / NB)
    _honest(subs / "alice" / "old" / NB)
    rows, report = _report(tmp_path, subs)
    mine = [s for s in report if s["student"] == "alice"]
    assert len(mine) == 2 and all(any(e.startswith("conflict:") for e in s["errors"]) for s in mine)
    assert float(rows["alice"]["total"]) == 0.0


def test_cleanup_changes_permissions_only_inside_its_own_folder(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from bncourse.grading import sandbox

    holder = tmp_path / "holder"
    (holder / "work" / "locked").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    root = holder / "work"
    (root / "link").symlink_to(outside)
    holder.chmod(0o751)
    outside.chmod(0o751)
    real_rmtree = shutil.rmtree

    def failing_then_real(path: object, onerror: object) -> None:  # as an unprivileged user sees it
        for p in (str(root), str(root / "link"), str(root / "locked")):
            onerror(lambda _p: None, p, None)  # type: ignore[operator]
        real_rmtree(path, onerror=onerror)  # type: ignore[call-overload]

    monkeypatch.setattr(sandbox.shutil, "rmtree", failing_then_real)
    sandbox.remove_tree(root)
    assert not root.exists()
    assert (holder.stat().st_mode & 0o777) == 0o751  # the root's parent is never chmod-ed
    assert (outside.stat().st_mode & 0o777) == 0o751  # nor anything behind a planted link


def test_a_result_file_declaring_a_huge_array_is_refused_before_allocating(tmp_path: Path) -> None:
    import io
    import zipfile

    import numpy as np

    from bncourse.grading.sandbox import _load_npz

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    path = tmp_path / "result.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__meta__.npy", _npy(np.frombuffer(b"{}", np.uint8)))
        zf.writestr("out.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(ValueError, match=r"unacceptable array 'out\.npy'"):
        _load_npz(path)


def _npy(a: object) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
