"""Grading in the OS jail: what a submission's process is and sees, that no two submissions
share anything, and the run's rules around it (refusal without bubblewrap, the NOT ISOLATED
stamp, the roster, the signed re-run cache).

A probe submission reports facts about its own process as its imports cell's error (the
one channel back is the result folder, whose cell errors the grader reads).
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bncourse.cli import main
from bncourse.errors import BNCourseError
from bncourse.grading import grader
from bncourse.grading.grader import grade_class, read_roster
from bncourse.grading.jail import (
    JAIL_BUILD,
    JAIL_UID,
    GradingJail,
    JailSpec,
    jail_command,
    run_in_jail,
)
from bncourse.grading.sandbox import CellSource, ForkServer, SandboxOutcome, run_submission
from tests import grading_helpers as gh
from tests.jail_helpers import require_bwrap

pytestmark = pytest.mark.slow

F, B = gh.FORWARD_ID, gh.BACKWARD_ID

PROBE = r'''
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
def attempt(r):
    return "failed " + os.strerror(ctypes.get_errno()) if r == -1 else "ok"
def others():
    alive = []
    for pid in range(2, 400):
        if libc.kill(pid, 0) == 0:
            alive.append(pid)
    return alive
FACTS = {
    "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "others": others(),
    "root": sorted(os.listdir("/")), "opt": sorted(os.listdir("/opt/bncourse")),
    "proc": os.listdir("/proc"), "tmp": sorted(os.listdir("/tmp")), "out": sorted(os.listdir("/out")),
    "no_new_privs": libc.prctl(39, 0, 0, 0, 0), "seccomp": libc.prctl(21, 0, 0, 0, 0),
    "unshare_user": attempt(libc.unshare(0x10000000)),
    "mount": attempt(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)),
    "umount_out": attempt(libc.umount2(b"/out", 2)),
    "ptrace": attempt(libc.ptrace(0, 0, None, None)),
    "inet": attempt(libc.socket(2, 1, 0)), "unix": attempt(libc.socket(1, 1, 0)),
    "write_usr": attempt(libc.open(b"/usr/x", 0o101, 0o644)),
    "write_build": attempt(libc.open(JAIL_BUILD.encode() + b"/x", 0o101, 0o644)),
    "write_dev": attempt(libc.open(b"/dev/left-by-the-last-one", 0o101, 0o644)),
    "shm": sorted(os.listdir("/dev/shm")),
}
for folder in ("/tmp", "/out", "/dev/shm"):
    libc.close(libc.open(folder.encode() + b"/left-by-the-last-one", 0o101, 0o644))
if libc.fork() == 0:  # a daemon that would outlive the submission (the audit hook never sees it)
    libc.setsid()
    if libc.fork() == 0:
        libc.sleep(600)
    libc._exit(0)
raise RuntimeError("FACTS" + json.dumps(FACTS) + "<<END>>")
'''
PROBE_CELL = "exec(compile(PROBE, '<frozen importlib._bootstrap>', 'exec'))\n"
"""Compiled under the import machinery's file name, the probe gets past the in-process audit
hook (which is diagnostics, not the boundary): what it then finds is the OS jail alone."""


def _facts(outcome: SandboxOutcome) -> dict[str, Any]:
    text = " ".join(e["error"] for e in outcome.cell_errors)
    assert "FACTS" in text, (outcome.cell_errors, outcome.stderr_tail)
    start, end = text.index("FACTS") + len("FACTS"), text.index("<<END>>")
    return dict(json.loads(text[start:end]))


@pytest.fixture(scope="module")
def jail(student_build: Path) -> GradingJail:
    require_bwrap()
    return GradingJail(student_build)


@pytest.fixture(scope="module")
def probed(jail: GradingJail) -> list[dict[str, Any]]:
    """Two probe submissions run one after the other by one warm jailed server."""
    code = f"PROBE = {PROBE.replace('JAIL_BUILD', repr(JAIL_BUILD))!r}\n" + PROBE_CELL
    facts = []
    with ForkServer(["numpy"], jail=jail) as server:
        for _ in range(2):
            outcome = run_submission([CellSource(0, "imports", code)], [], timeout=30, server=server)
            facts.append(_facts(outcome))
    return facts


def test_a_submission_runs_as_nobody_alone_in_its_own_pid_namespace(probed: list[dict[str, Any]]) -> None:
    for facts in probed:
        assert (facts["uid"], facts["gid"], facts["pid"]) == (JAIL_UID, JAIL_UID, 1)
        assert facts["others"] == []  # the daemon of the one before is gone; the server is not visible
        assert facts["proc"] == []  # /proc is an empty folder


def test_it_sees_only_python_the_libraries_and_the_student_build(probed: list[dict[str, Any]]) -> None:
    facts = probed[0]
    assert facts["opt"] == ["build", "lib0"]
    pythons = {Path(os.path.realpath(p)).parts[1] for p in (sys.base_prefix, sys.prefix)}  # e.g. root, work
    assert set(facts["root"]) <= {"usr", "bin", "lib", "lib64", "sbin", "proc", "dev", "tmp", "out", "opt",
                                  "etc"} | pythons  # those hold only the Python installation
    assert not {"home", "var"} & set(facts["root"]) - pythons


def test_it_cannot_regain_privileges_or_undo_its_confinement(probed: list[dict[str, Any]]) -> None:
    facts = probed[0]
    assert facts["no_new_privs"] == 1 and facts["seccomp"] == 2  # seccomp filter mode
    for key in ("unshare_user", "mount", "umount_out", "ptrace", "inet", "write_usr", "write_build", "write_dev"):
        assert facts[key].startswith("failed"), (key, facts[key])
    assert facts["unix"] == "ok"  # AF_UNIX stays (multiprocessing uses it), inside its own namespaces


def test_no_two_submissions_share_a_tmp_a_result_folder_or_a_process(probed: list[dict[str, Any]]) -> None:
    for facts in probed:  # nothing the first one left: a fresh /tmp, /dev/shm and result folder
        assert facts["tmp"] == [] and facts["shm"] == [] and facts["out"] == ["stderr.txt", "stdout.txt"]


def test_no_process_of_a_submission_survives_it(probed: list[dict[str, Any]]) -> None:
    sleepers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"left-by-the-last-one" in cmd:
            sleepers.append(pid)
    assert sleepers == []


def test_an_installed_copy_of_the_package_is_masked(student_build: Path, tmp_path: Path) -> None:
    require_bwrap()
    site = tmp_path / "site-packages"
    (site / "bncourse" / "reference").mkdir(parents=True)
    (site / "bncourse" / "reference" / "batchnorm.py").write_text("ANSWER = 42\n")
    spec = JailSpec(student_build, tmp_path / "out", libraries=(site,))
    assert "--tmpfs" in jail_command(spec, ["true"])
    result = run_in_jail(spec, ["python", "-c", "import os; print(os.listdir('/opt/bncourse/lib0/bncourse'))"])
    assert result.returncode == 0 and result.stdout.decode().strip() == "[]"


def test_a_copy_installed_in_the_python_installation_is_masked_too(student_build: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from bncourse.grading import jail as jail_module

    require_bwrap()
    prefix = tmp_path / "python"
    (prefix / "lib" / "python3.11" / "site-packages" / "bncourse").mkdir(parents=True)
    monkeypatch.setattr(jail_module, "_ro_binds", lambda spec: [prefix])
    cmd = jail_command(JailSpec(student_build, tmp_path / "out", libraries=()), ["true"])
    target = str(prefix / "lib" / "python3.11" / "site-packages" / "bncourse")
    assert cmd[cmd.index(target) - 1] == "--tmpfs"


def test_a_fork_bomb_is_bounded_by_the_pids_cgroup(student_build: Path) -> None:
    require_bwrap()
    bomb = ("import ctypes, time\nlibc = ctypes.CDLL(None)\nn = 0\nend = time.monotonic() + 3\n"
            "while time.monotonic() < end:\n    pid = libc.fork()\n    if pid < 0:\n        break\n"
            "    if pid == 0:\n        libc.sleep(30)\n        libc._exit(0)\n    n += 1\n"
            "raise RuntimeError(f'FORKED {n} END')\n")
    bomb = f"PROBE = {bomb!r}\n" + PROBE_CELL
    with ForkServer(["numpy"], jail=GradingJail(student_build, max_pids=64)) as server:
        outcome = run_submission([CellSource(0, "imports", bomb)], [], timeout=20, server=server)
        if server._cgroup is None:
            pytest.skip("no pids cgroup can be made on this machine (the wall clock alone bounds a fork bomb)")
        text = " ".join(e["error"] for e in outcome.cell_errors)
        forked = int(text.split("FORKED ")[1].split(" END")[0])
        assert 0 < forked < 64
        again = run_submission([CellSource(0, "imports", "raise RuntimeError('FINE')")], [], timeout=20, server=server)
        assert "FINE" in again.cell_errors[0]["error"]  # the bomb's processes died with it


# --- the run's rules ------------------------------------------------------------------------


def _class(root: Path) -> Path:
    subs = root / "class"
    gh.build_notebook(subs / "ann.ipynb", [gh.FORWARD_OK, gh.BACKWARD_OK])
    gh.build_notebook(subs / "ben.ipynb", [gh.FORWARD_OK])
    return subs


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def test_grading_refuses_to_run_without_bubblewrap_naming_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(grader, "bwrap_path", lambda: None)
    assert main(["grade", str(_class(tmp_path)), "--out", str(tmp_path / "out")]) != 0
    assert "apt-get install bubblewrap" in capsys.readouterr().err
    assert not (tmp_path / "out" / "grades.csv").exists()
    with pytest.raises(BNCourseError, match=r"apt-get install bubblewrap.*--no-jail"):
        grader.require_jail()


def test_no_jail_runs_and_stamps_every_report_not_isolated(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    subs = _class(tmp_path)
    out = tmp_path / "out"
    summary = grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE])
    assert str(summary).startswith("*** NOT ISOLATED")
    report = json.loads((out / "report.json").read_text())
    assert report["isolation"] == "NOT ISOLATED"
    assert {r["isolation"] for r in report["submissions"]} == {"NOT ISOLATED"}
    assert "NOT ISOLATED" in (out / "feedback" / "ann.md").read_text()
    assert _rows(out)["ann"]["total"] == "20"


def test_a_jailed_run_gives_the_same_grades_and_never_reuses_an_unjailed_record(tmp_path: Path,
                                                                              jail: GradingJail) -> None:
    subs, out = _class(tmp_path), tmp_path / "out"
    grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE])
    unjailed = _rows(out)
    summary = grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail)
    assert (summary.graded, summary.reused, summary.isolation) == (2, 0, "bubblewrap jail")
    assert _rows(out) == unjailed
    report = json.loads((out / "report.json").read_text())
    assert "NOT ISOLATED" not in (out / "feedback" / "ann.md").read_text()
    assert report["isolation"] == "bubblewrap jail"
    cold = grade_class([subs], tmp_path / "cold", timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail,
                       warm=False)  # --cold: a fresh jail per notebook
    assert (cold.graded, _rows(tmp_path / "cold")) == (2, unjailed)


def test_the_rerun_cache_trusts_only_records_it_signed(tmp_path: Path, jail: GradingJail) -> None:
    subs, out = _class(tmp_path), tmp_path / "out"
    first = grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail)
    assert (first.graded, _rows(out)["ben"]["total"]) == (2, "10")
    key = out / ".grader-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    report = json.loads((out / "report.json").read_text())
    for rec in report["submissions"]:
        if rec["student"] == "ben":  # a forged full mark, as a daemon or a student with access would write it
            for r in rec["results"]:
                r["points"], r["passed"] = r["max_points"], True
    (out / "report.json").write_text(json.dumps(report))
    second = grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail)
    assert (second.graded, second.reused) == (1, 1)  # ben graded again, ann's signed record reused
    assert _rows(out)["ben"]["total"] == "10"
    key.write_bytes(os.urandom(32))  # a new key: nothing signed with the old one is trusted
    third = grade_class([subs], out, timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail)
    assert (third.graded, third.reused) == (2, 0)


def test_a_roster_names_the_students(tmp_path: Path, jail: GradingJail) -> None:
    uploads = tmp_path / "uploads"
    gh.build_notebook(uploads / "a81f.ipynb", [gh.FORWARD_OK, gh.BACKWARD_OK])
    gh.build_notebook(uploads / "c3d2.ipynb", [gh.FORWARD_OK])
    roster = tmp_path / "roster.csv"
    roster.write_text("student,path\ns1234 Ann,uploads/a81f.ipynb\ns5678 Ben,uploads/c3d2.ipynb\n")
    assert [(s.student, s.path.name) for s in read_roster(roster)] == [("s1234 Ann", "a81f.ipynb"),
                                                                       ("s5678 Ben", "c3d2.ipynb")]
    out = tmp_path / "out"
    grade_class([], out, timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail, roster=roster)
    rows = _rows(out)
    assert (rows["s1234 Ann"]["total"], rows["s5678 Ben"]["total"]) == ("20", "10")
    roster.write_text("name,file\nann,uploads/a81f.ipynb\n")
    with pytest.raises(BNCourseError, match="needs the columns student,path"):
        read_roster(roster)
    roster.write_text("student,path\n,uploads/a81f.ipynb\n")
    with pytest.raises(BNCourseError, match="line 2"):
        read_roster(roster)


def test_grading_with_the_jail_leaves_no_folder_and_no_process_behind(
    tmp_path: Path, jail: GradingJail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every temporary folder of the grader goes to a folder of this test, so "nothing is left
    # behind" is exact even while another grader (another test run) uses /tmp.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    mode = os.stat("/tmp").st_mode
    grade_class([_class(tmp_path)], tmp_path / "out", jobs=2, timeout=20, extra_exercise_files=[gh.THIS_FILE],
                jail=jail)
    time.sleep(0.2)
    assert made and all(Path(m).parent == private_tmp for m in made)  # the grader's folders were here
    assert sorted(p.name for p in private_tmp.iterdir()) == []
    assert os.stat("/tmp").st_mode == mode
    cgroups = Path("/sys/fs/cgroup/pids")
    if cgroups.is_dir():
        assert not [p for p in cgroups.iterdir() if p.name.startswith(f"bncourse-grade-{os.getpid()}-")]


def test_a_killed_run_leaves_nothing_the_next_run_trips_over(tmp_path: Path, jail: GradingJail) -> None:
    import signal
    import subprocess
    import sys

    subs = tmp_path / "class"
    for i in range(6):
        gh.build_notebook(subs / f"s{i}.ipynb", [gh.FORWARD_OK, "import time\ntime.sleep(1)\n" + gh.BACKWARD_OK])
    out = tmp_path / "out"
    runner = ("import sys; from bncourse.grading.grader import grade_class; from bncourse.grading.jail import "
              "GradingJail; from pathlib import Path; from tests import grading_helpers as gh; "
              "grade_class([Path(sys.argv[1])], Path(sys.argv[2]), jobs=2, timeout=20, "
              "extra_exercise_files=[gh.THIS_FILE], jail=GradingJail(Path(sys.argv[3])))")
    proc = subprocess.Popen([sys.executable, "-c", runner, str(subs), str(out), str(jail.student_build)],
                            cwd=Path(gh.THIS_FILE).parent.parent, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(Path("/tmp").glob("bncourse-forkserver-*/out/[0-9]*")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the grader is killed mid-run
    proc.wait()
    time.sleep(0.5)
    assert not (out / "grades.csv").exists()
    summary = grade_class([subs], out, jobs=2, timeout=20, extra_exercise_files=[gh.THIS_FILE], jail=jail)
    assert summary.graded == 6 and {r["total"] for r in _rows(out).values()} == {"20"}
    leftovers = []  # no jail of the killed run is alive: bwrap dies with its parent, and its jail with it
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"bwrap" in cmd and str(jail.student_build).encode() in cmd:
            leftovers.append(pid)
    assert leftovers == []
