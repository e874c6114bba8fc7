"""The class grader against hostile submissions: each gets a clear per-exercise result,
the others are graded normally, submissions are never modified, outputs are complete."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bncourse.grading.grader import discover_submissions, grade_class
from bncourse.grading.jail import GradingJail
from bncourse.grading.sandbox import kill_process_group
from bncourse.grading.source_rules import static_findings
from tests import grading_helpers as gh
from tests.jail_helpers import isolation_args, require_bwrap

pytestmark = pytest.mark.slow  # runs the class grader in subprocesses: not in `make test-fast`

F, B = gh.FORWARD_ID, gh.BACKWARD_ID
WRONG_FWD = gh.FORWARD_OK.replace("(xc ** 2).mean(axis=0)", "(xc ** 2).sum(axis=0) / (x.shape[0] - 1)")
SLEEP_MARK = "987.654"

HOSTILE: dict[str, dict[str, Any]] = {
    "alice_ok": {"cells": [gh.FORWARD_OK, gh.BACKWARD_OK]},
    "loop": {"cells": ["def bn_fwd(x, gamma, beta, eps=1e-5):\n    while True:\n        pass\n", gh.BACKWARD_OK]},
    "alloc20gb": {"cells": ["def bn_fwd(x, gamma, beta, eps=1e-5):\n    big = np.ones(int(20e9 // 8))\n"
                            "    return big[:x.size].reshape(x.shape), None\n", gh.BACKWARD_OK]},
    "exit_at_import": {"imports": gh.IMPORTS + "import os\nos._exit(0)\n", "cells": [gh.FORWARD_OK, gh.BACKWARD_OK]},
    "sysexit_at_import": {"imports": gh.IMPORTS + "import sys\nsys.exit(0)\n", "cells": [gh.FORWARD_OK, gh.BACKWARD_OK]},
    "sysexit_in_fn": {"cells": ["import sys\ndef bn_fwd(x, gamma, beta, eps=1e-5):\n    sys.exit(0)\n", gh.BACKWARD_OK]},
    "osexit_in_backward": {"cells": [gh.FORWARD_OK, "import os\ndef bn_bwd(dout, cache):\n    os._exit(0)\n"]},
    "syntax": {"cells": ["def bn_fwd(x, gamma, beta, eps=1e-5)\n    return x, None\n", gh.BACKWARD_OK]},
    "returns_none": {"cells": ["def bn_fwd(x, gamma, beta, eps=1e-5):\n    x.mean()\n", gh.BACKWARD_OK]},
    "wrong_types": {"cells": ["def bn_fwd(x, gamma, beta, eps=1e-5):\n    return 'out', {'a': object()}\n",
                              "def bn_bwd(dout, cache):\n    return [object()], 'dg', None\n"]},
    "nan": {"cells": ["def bn_fwd(x, gamma, beta, eps=1e-5):\n    return np.full_like(x, np.nan), None\n", gh.BACKWARD_OK]},
    "prints_score": {"imports": gh.IMPORTS + "print('Score: 100')\n",
                     "cells": [WRONG_FWD + "print('Score: 100/100  test_bn_forward: 10/10 points')\n"]},
    "patch_numpy": {"imports": gh.IMPORTS + "np.allclose = lambda *a, **k: True\n", "cells": [WRONG_FWD]},
    "patch_grading": {"imports": gh.IMPORTS + "import bncourse.grading.evaluate as ev\n"
                      "ev.evaluate = lambda *a, **k: None\n", "cells": [WRONG_FWD]},
    "patch_hidden": {"imports": gh.IMPORTS + "m = __import__('bncourse.grading.runner', fromlist=['x'])\n"
                     "orig = m.run_one\n"
                     "def fake(ex, fn, case, ns):\n    r = orig(ex, fn, case, ns)\n    r.outputs = {}\n"
                     "    r.error = None\n    return r\n"
                     "getattr(m, '__dict__')['run_one'] = fake\n", "cells": [WRONG_FWD]},
    "wipes_cwd": {"imports": gh.IMPORTS + "import os, shutil\nopen('junk', 'w').write('x')\n"
                  "for f in os.listdir('.'):\n    os.remove(f)\nopen('../request.json', 'w').write('{}')\n",
                  "cells": [gh.FORWARD_OK, gh.BACKWARD_OK]},
    "reads_reference": {"imports": gh.IMPORTS + "import bncourse.reference as R\n"
                        "SRC = open(R.__file__.replace('__init__', 'batchnorm')).read()\n",
                        "cells": ["def bn_fwd(x, gamma, beta, eps=1e-5):\n    g = {}\n    exec(SRC, g)\n"
                                  "    return g['batchnorm_forward'](x, gamma, beta, eps)[0], None\n"]},
    "reads_reference_in_cell": {"cells": ["import bncourse\nP = bncourse.__file__.replace('__init__.py', 'reference/batchnorm.py')\n"
                                          "def bn_fwd(x, gamma, beta, eps=1e-5):\n    g = {}\n    exec(open(P).read(), g)\n"
                                          "    return g['batchnorm_forward'](x, gamma, beta, eps)[0], None\n"]},
    "torch_in_cell": {"cells": ["import torch\ndef bn_fwd(x, gamma, beta, eps=1e-5):\n"
                                "    t = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None,"
                                " torch.from_numpy(gamma), torch.from_numpy(beta), training=True)\n"
                                "    return t.numpy(), None\n"]},
    "spawns": {"imports": gh.IMPORTS + f"import subprocess\nsubprocess.Popen(['sleep', '{SLEEP_MARK}'])\n",
               "cells": [gh.FORWARD_OK, gh.BACKWARD_OK]},
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sleepers() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if SLEEP_MARK in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module", params=["warm", "cold", "jail"])
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hostile class graded once with workers forked from warm servers, once cold (both
    ``--no-jail``), and once as ``bncourse grade`` does it: in the OS jail."""
    jail = None
    if request.param == "jail":
        require_bwrap()
        jail = GradingJail(request.getfixturevalue("student_build"))
    root = tmp_path_factory.mktemp(f"class-{request.param}")
    subs = root / "submissions"
    for student, spec in HOSTILE.items():
        gh.build_notebook(subs / f"{student}.ipynb", spec["cells"], imports=spec.get("imports", gh.IMPORTS))
    before = {p.name: _sha(p) for p in subs.iterdir()}
    out = root / "out"
    start = time.perf_counter()
    summary = grade_class([subs], out, jobs=2, timeout=4.0, extra_exercise_files=[gh.THIS_FILE],
                          warm=request.param != "cold", jail=jail)
    seconds = time.perf_counter() - start
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    report = json.loads((out / "report.json").read_text())
    results = {(s["student"], r["exercise"]): r for s in report["submissions"] for r in s["results"]}
    records = {s["student"]: s for s in report["submissions"]}
    assert {r["forked"] for r in records.values()} == {request.param != "cold"}
    assert {r["isolation"] for r in records.values()} == {"bubblewrap jail" if jail else "NOT ISOLATED"}
    return {"jailed": jail is not None, "root": root, "subs": subs, "out": out, "before": before, "summary": summary,
            "rows": rows, "results": results, "records": records, "seconds": seconds}


def _msg(graded: dict[str, Any], student: str, ex: str) -> str:
    r = graded["results"][(student, ex)]
    return " ".join(r["messages"] + [c["diagnosis"] or c["message"] for c in r["cases"]])


def test_correct_submission_gets_full_points(graded: dict[str, Any]) -> None:
    row = graded["rows"]["alice_ok"]
    assert (row[F], row[B], row["total"], row["max"]) == ("10", "10", "20", "20")


def test_every_student_has_a_row_and_feedback(graded: dict[str, Any]) -> None:
    assert set(graded["rows"]) == set(HOSTILE)
    for student in HOSTILE:
        text = (graded["out"] / "feedback" / f"{student}.md").read_text()
        assert text.startswith(f"# Feedback for {student}") and "points" in text
    assert list(graded["rows"]["alice_ok"]) == ["student", F, B, "total", "max"]


def test_submissions_are_never_modified(graded: dict[str, Any]) -> None:
    after = {p.name: _sha(p) for p in graded["subs"].iterdir()}
    assert after == graded["before"]


@pytest.mark.parametrize(("student", "ex", "expect"), [
    ("loop", F, "timed out"),
    ("alloc20gb", F, "MemoryError"),
    ("exit_at_import", F, "no result"),
    ("sysexit_in_fn", F, "sys.exit"),
    ("osexit_in_backward", B, "no result"),
    ("syntax", F, "SyntaxError"),
    ("returns_none", F, "pair (out, cache)"),
    ("wrong_types", F, "NumPy array"),
    ("nan", F, "NaN"),
    ("prints_score", F, "unbiased"),
    ("patch_numpy", F, "tampering"),
    ("patch_grading", F, "tampering"),
    ("reads_reference", F, "exec"),
    ("reads_reference_in_cell", F, "forbidden"),
    ("torch_in_cell", F, "forbidden: uses"),
])
def test_hostile_submission_gets_zero_with_a_reason(graded: dict[str, Any], student: str, ex: str,
                                                   expect: str) -> None:
    r = graded["results"][(student, ex)]
    assert r["points"] == 0 and not r["passed"]
    assert expect in _msg(graded, student, ex), _msg(graded, student, ex)


def test_partial_results_survive_a_crash(graded: dict[str, Any]) -> None:
    assert graded["results"][("osexit_in_backward", F)]["points"] == 10  # written before os._exit
    assert graded["results"][("loop", B)]["points"] == 0  # its backward needs the looping forward


def test_sys_exit_at_import_only_stops_that_cell(graded: dict[str, Any]) -> None:
    rec = graded["records"]["sysexit_at_import"]
    assert any("SystemExit" in e["error"] for e in rec["cell_errors"])
    assert graded["rows"]["sysexit_at_import"]["total"] == "20"


def test_hidden_runtime_patch_cannot_change_a_score(graded: dict[str, Any]) -> None:
    assert graded["rows"]["patch_hidden"][F] == "0"


def test_cwd_vandalism_is_harmless_and_grader_files_are_protected(graded: dict[str, Any]) -> None:
    assert graded["rows"]["wipes_cwd"]["total"] == "20"
    assert any("writing" in b and "request.json" in b for b in graded["records"]["wipes_cwd"]["blocked"])


def test_reading_the_reference_is_blocked(graded: dict[str, Any]) -> None:
    rec = graded["records"]["reads_reference"]
    if graded["jailed"]:  # the jail runs the student build: there is no reference to read
        assert any("No module named 'bncourse.reference'" in e["error"] for e in rec["cell_errors"])
        return
    assert any("reading" in b and "bncourse" in b for b in rec["blocked"])
    assert any("PermissionError" in e["error"] for e in rec["cell_errors"])


def test_spawned_process_is_blocked_and_none_survives(graded: dict[str, Any]) -> None:
    rec = graded["records"]["spawns"]
    assert any("starting a process" in b for b in rec["blocked"])
    assert graded["rows"]["spawns"]["total"] == "20"
    assert _sleepers() == []


def test_summary_and_report(graded: dict[str, Any]) -> None:
    s = graded["summary"]
    assert s.graded == len(HOSTILE) and s.students == len(HOSTILE)
    text = str(s)
    assert "graded" in text and "loop" in text and "grades.csv" in text
    case = graded["results"][("alice_ok", F)]["cases"][0]
    assert {"case", "passed", "max_rel_error", "diagnosis"} <= set(case)
    assert graded["records"]["alice_ok"]["seconds"] < 10


def test_rerun_skips_unchanged_and_regrades_changed(graded: dict[str, Any]) -> None:
    subs, out = graded["subs"], graded["root"] / "out2"
    one = graded["root"] / "one"
    one.mkdir()
    gh.build_notebook(one / "zoe.ipynb", [gh.FORWARD_OK, gh.BACKWARD_OK])
    gh.build_notebook(one / "yan.ipynb", [WRONG_FWD])
    s1 = grade_class([one], out, timeout=10, extra_exercise_files=[gh.THIS_FILE])
    s2 = grade_class([one], out, timeout=10, extra_exercise_files=[gh.THIS_FILE])
    assert (s1.graded, s2.graded, s2.reused) == (2, 0, 2)
    gh.build_notebook(one / "yan.ipynb", [gh.FORWARD_OK, gh.BACKWARD_OK])
    s3 = grade_class([one], out, timeout=10, extra_exercise_files=[gh.THIS_FILE])
    assert (s3.graded, s3.reused) == (1, 1)
    assert "yan,10,10,20,20" in (out / "grades.csv").read_text()
    s4 = grade_class([one], out, timeout=10, regrade=True, extra_exercise_files=[gh.THIS_FILE])
    assert s4.graded == 2
    assert not list(out.glob(".*.tmp"))
    assert subs.exists()


def test_student_ids_from_file_or_folder(tmp_path: Path) -> None:
    gh.build_notebook(tmp_path / "class" / "bob.ipynb", [gh.FORWARD_OK])
    gh.build_notebook(tmp_path / "class" / "alice" / "03_forward_backward.ipynb", [gh.FORWARD_OK])
    gh.build_notebook(tmp_path / "class" / ".ipynb_checkpoints" / "bob-checkpoint.ipynb", [gh.FORWARD_OK])
    found = {(s.student, s.path.name) for s in discover_submissions([tmp_path / "class"])}
    assert found == {("bob", "bob.ipynb"), ("alice", "03_forward_backward.ipynb")}


def test_unreadable_notebook_is_a_result_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "broken.ipynb").write_text("{not json")
    (tmp_path / "subs" / "mystery.ipynb").write_text(json.dumps({"nbformat": 4, "cells": []}))
    s = grade_class([tmp_path / "subs"], tmp_path / "out")
    assert s.graded == 2 and any("unreadable notebook" in p for p in s.problems)
    assert any("could not tell which course notebook" in p for p in s.problems)


def test_cli_exits_zero_and_fails_only_when_it_cannot_work(tmp_path: Path) -> None:
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "x.ipynb").write_text("{}")
    env = dict(os.environ)
    grade = [sys.executable, "-m", "bncourse", "grade", *isolation_args(), str(tmp_path / "subs"), "--out"]
    ok = subprocess.run([*grade, str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "graded 1 notebook" in ok.stdout
    (tmp_path / "blocker").write_text("a file, not a folder")
    bad = subprocess.run([*grade, str(tmp_path / "blocker" / "out")], capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode != 0 and "not writable" in bad.stderr


def test_kill_process_group_kills_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen(["sh", "-c", f"sleep {SLEEP_MARK} & echo $! > {pidfile}; wait"],
                            start_new_session=True)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.02)
    grandchild = int(pidfile.read_text())
    kill_process_group(proc.pid)
    proc.wait(timeout=5)
    for _ in range(100):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.02)
    else:
        pytest.fail("grandchild survived")


@pytest.mark.parametrize(("source", "tampering"), [
    ("d[np.arange(n), y] -= 1", []),  # an index is only read: the natural softmax gradient
    ("x.y[np.newaxis] = 3", []),
    ("np.allclose = f", ["assigns np.allclose (monkeypatching a module)"]),
    ('np.__dict__["allclose"] = f', ["assigns np.__dict__ (monkeypatching a module)"]),
    ("a, np.pi = 1, 2", ["assigns np.pi (monkeypatching a module)"]),
    ("np.random.seed = 3", ["assigns np.random.seed (monkeypatching a module)"]),
    ("del np.mean", ["assigns np.mean (monkeypatching a module)"]),
])
def test_only_what_an_assignment_writes_counts_as_monkeypatching(source: str, tampering: list[str]) -> None:
    assert static_findings(source, (), {"np", "numpy"}, True)[1] == tampering
