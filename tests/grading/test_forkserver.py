"""The grader's fork server: workers forked from it are as isolated as cold ones, one
worker cannot leave anything behind for the next, and a server that dies is replaced
(or, if it cannot start, grading falls back to a fresh interpreter per notebook)."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from bncourse.grading.grader import Submission, grade_class, grade_notebook
from bncourse.grading.sandbox import ForkServer, preload_modules, preloadable
from tests import grading_helpers as gh

pytestmark = pytest.mark.slow  # starts fork servers and workers: not in `make test-fast`

F, B = gh.FORWARD_ID, gh.BACKWARD_ID

# The imports cell reports facts about its own process as its error (kept in cell_errors).
PROBE_IMPORTS = gh.IMPORTS + '''import json, os
def target(fd):
    try:
        return os.readlink("/proc/self/fd/" + fd)
    except OSError:
        return None  # the descriptor os.listdir used, already closed
FACTS = json.dumps({
    "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0), "cwd": os.getcwd(),
    "env": sorted(os.environ), "home": os.environ.get("HOME"),
    "fds": {f: t for f in os.listdir("/proc/self/fd") if (t := target(f)) is not None},
})
raise RuntimeError("FACTS" + FACTS + "<<END>>")
'''
SCRUBBED_ENV = sorted(["PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                       "MKL_NUM_THREADS", "MPLBACKEND", "MPLCONFIGDIR", "PYTHONHASHSEED"])


def _grade(tmp: Path, students: dict[str, dict[str, Any]], **kw: Any) -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    subs = tmp / "subs"
    for name, spec in students.items():
        gh.build_notebook(subs / f"{name}.ipynb", spec["cells"], imports=spec.get("imports", gh.IMPORTS))
    out = tmp / "out"
    grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE], **kw)
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    report = json.loads((out / "report.json").read_text())
    return rows, {s["student"]: s for s in report["submissions"]}


def _facts(record: dict[str, Any]) -> dict[str, Any]:
    text = " ".join(e["error"] for e in record["cell_errors"])
    start, end = text.index("FACTS") + len("FACTS"), text.index("<<END>>")
    return dict(json.loads(text[start:end]))


def test_preload_modules_takes_only_course_and_library_modules() -> None:
    cell = ("import numpy as np\nimport os, evil.pkg\nimport matplotlib.pyplot as plt\n"
            "from bncourse.lessons.l02_internal_covariate_shift import experiments as ics\n"
            "from bncourse.course import data\nfrom bncourse.grading import check\nfrom . import sibling\n"
            "from torch import *\n")
    assert preload_modules(cell) == ["numpy", "matplotlib.pyplot", "bncourse.lessons.l02_internal_covariate_shift",
                                     "bncourse.lessons.l02_internal_covariate_shift.experiments", "bncourse.course",
                                     "bncourse.course.data", "bncourse.grading", "bncourse.grading.check", "torch"]
    assert preload_modules("import numpy as np\ndef broken(:\n") == []


@pytest.mark.parametrize("name", ["bncourse.__main__", "numpy.f2py.__main__", "numpy.f2py", "torch.utils.bottleneck",
                                  "bncourse.grading._private", "os", "antigravity", "matplotlib.backends.foo",
                                  "bncourse.a.b.c", "bncourse.lessons.l03_forward_backward.solutions",
                                  "bncourse.lessons.l03_forward_backward.mistakes"])
def test_nothing_that_runs_a_program_on_import_is_preloaded(name: str) -> None:
    assert not preloadable(name)
    assert preload_modules(f"import {name}") == []
    assert ForkServer([name]).preload == []


def test_forked_worker_is_isolated_like_a_cold_one(tmp_path: Path) -> None:
    students = {"ann": {"imports": PROBE_IMPORTS, "cells": [gh.FORWARD_OK]},
                "ben": {"imports": PROBE_IMPORTS, "cells": [gh.FORWARD_OK]}}
    _, records = _grade(tmp_path, students, jobs=1)
    facts = {name: _facts(rec) for name, rec in records.items()}
    assert all(rec["forked"] for rec in records.values())
    for f in facts.values():
        assert f["sid"] == f["pid"] == f["pgid"], "the worker must lead its own session"
        assert f["env"] == SCRUBBED_ENV
        assert f["fds"]["0"] == os.devnull
        assert f["fds"]["1"].endswith("stdout.txt") and f["fds"]["2"].endswith("stderr.txt")
        inherited = {fd: target for fd, target in f["fds"].items() if fd not in ("0", "1", "2")}
        assert inherited == {}, f"descriptors inherited from the server: {inherited}"
        assert Path(f["cwd"]).name == "work"
    assert facts["ann"]["pid"] != facts["ben"]["pid"]
    assert facts["ann"]["home"] != facts["ben"]["home"] and facts["ann"]["cwd"] != facts["ben"]["cwd"]


def test_a_worker_cannot_leave_state_for_the_next_one(tmp_path: Path) -> None:
    # Sorted, one job: "a_patcher" runs before "b_honest" in the same server.  Its runtime
    # patches (not visible to the static checks) would break b_honest if they leaked.
    patcher = gh.IMPORTS + ("import numpy\nsetattr(numpy, 'sqrt', lambda v: v)\n"
                            "setattr(numpy.ndarray, 'mean', None) if False else None\n"
                            "R = getattr(__builtins__, 'len', None)\n")
    patch_in_cell = ("import numpy\ndef bn_fwd(x, gamma, beta, eps=1e-5):\n    return x, None\n"
                     "setattr(numpy, 'mean', lambda *a, **k: 0.0)\n")
    rows, records = _grade(tmp_path, {"a_patcher": {"imports": patcher, "cells": [patch_in_cell]},
                                      "b_honest": {"cells": [gh.FORWARD_OK, gh.BACKWARD_OK]}}, jobs=1)
    assert records["a_patcher"]["forked"] and records["b_honest"]["forked"]
    assert rows["a_patcher"][F] == "0"
    assert (rows["b_honest"][F], rows["b_honest"][B]) == ("10", "10")


def _submission(tmp: Path, name: str) -> Submission:
    path = gh.build_notebook(tmp / f"{name}.ipynb", [gh.FORWARD_OK, gh.BACKWARD_OK])
    return Submission(name, path)


def _points(record: dict[str, Any]) -> list[float]:
    return [r["points"] for r in record["results"]]


def test_a_killed_server_is_replaced(tmp_path: Path) -> None:
    with ForkServer(["numpy"], [gh.THIS_FILE]) as server:
        first = grade_notebook(_submission(tmp_path, "one"), extra_exercise_files=[gh.THIS_FILE], server=server)
        assert first["forked"] and _points(first) == [10, 10]
        assert server._proc is not None
        os.killpg(server._proc.pid, signal.SIGKILL)
        server._proc.wait()
        second = grade_notebook(_submission(tmp_path, "two"), extra_exercise_files=[gh.THIS_FILE], server=server)
        assert second["forked"] and _points(second) == [10, 10]
        assert server.restarts == 1


def test_a_server_that_cannot_start_falls_back_to_a_cold_worker(tmp_path: Path) -> None:
    server = ForkServer(["numpy"], [tmp_path / "no_such_exercises.py"], start_timeout=60)
    try:
        record = grade_notebook(_submission(tmp_path, "solo"), extra_exercise_files=[gh.THIS_FILE], server=server)
        assert not server.alive
    finally:
        server.close()
    assert not record["forked"] and _points(record) == [10, 10]


@pytest.mark.parametrize("warm", [True, False])
def test_wall_clock_timeout_kills_a_worker_that_ignores_its_alarm(tmp_path: Path, warm: bool) -> None:
    stubborn = gh.IMPORTS + "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    loop = "def bn_fwd(x, gamma, beta, eps=1e-5):\n    while True:\n        pass\n"
    subs = tmp_path / "subs"
    gh.build_notebook(subs / "stubborn.ipynb", [loop], imports=stubborn)
    gh.build_notebook(subs / "zoe.ipynb", [gh.FORWARD_OK, gh.BACKWARD_OK])
    out = tmp_path / "out"
    grade_class([subs], out, jobs=1, timeout=8, extra_exercise_files=[gh.THIS_FILE], warm=warm)
    report = {s["student"]: s for s in json.loads((out / "report.json").read_text())["submissions"]}
    assert report["stubborn"]["timed_out"] and report["stubborn"]["forked"] == warm
    assert all(r["points"] == 0 for r in report["stubborn"]["results"])
    assert "timed out" in report["stubborn"]["results"][0]["messages"][0]
    assert _points(report["zoe"]) == [10, 10] and report["zoe"]["forked"] == warm
