"""A whole class with attackers in it, graded once by ``bncourse grade`` (jailed, ``--jobs 2``).

One class folder holds two honest students (unmodified instructor notebooks 01 and 05), two
colluders and, for each attack class, four attackers: the attack in the ``imports`` cell or
at the top of an ``exercise`` cell, each once plainly and once after switching off every
in-process guard it can reach (profile hook, SIGALRM, guarded builtins, and the audit hook,
neutered through ``gc``), so that only the operating-system jail stands in the way.  The
attacks themselves are in :mod:`tests.hostile_helpers`.

The class is graded once (module fixture), then the test waits 3 s (time for a surviving
daemon to act) and looks at the host.  Each test asserts that its attack's *effect* did not
happen — a file, a connection, a process, a changed gradebook, points — and that the attack
ran (its witness line is in ``report.json``), so no test passes because an attack died early.

The order of grading is deliberate (students are graded in path order, two at a time):
the colluders go first (``c0-*``: each of the two fork servers grades one of them before
anything else), ``honest1`` next, the attackers (``m*``) and ``zz-honest2`` last; the fork
bombs (``m5a``) are followed by the 20-second loops (``m5b``), so no honest student shares the
machine with a fork bomb (CPU fairness between jobs is not what these tests measure).

Skipped with a visible reason where bubblewrap is missing, unless BNCOURSE_REQUIRE_JAIL=1.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bncourse.cli import main
from bncourse.grading.jail import bwrap_path
from tests.hostile_helpers import (
    BOMB,
    DAEMON,
    DONE,
    EXERCISES,
    NB05,
    Attack,
    Listeners,
    ProcessWatch,
    children_of,
    files_under,
    honest_sources,
    paths_with,
    processes_with,
    write_attack,
    write_honest,
)
from tests.jail_helpers import require_bwrap
from tests.paths import NOTEBOOKS_DIR, ROOT

pytestmark = pytest.mark.slow

if bwrap_path() is None:
    require_bwrap()  # a skip with its reason, or a failure in CI

NB01 = "01_feature_scaling.ipynb"
HONEST = ("honest1", "zz-honest2")
CANARY_NAME = "hostile-canary-notes.txt"
WALL_CLOCK_BOUND = 170.0
"""Seconds the whole grading run may take (it takes about a minute on 2 cores)."""
WAIT_AFTER_RUN = 3.0

PREFIX = {
    "steal": "m1-steal", "stand_in": "m1s-standin", "write": "m2-write", "leech": "m2c-leech",
    "network": "m3-net", "outlive": "m4-outlive", "exhaust": "m5a-exhaust", "loop": "m5b-loop",
    "tamper": "m6-tamper",
}
ATTACKS = [
    Attack(f"{prefix}-{where}-{'guardoff' if off else 'plain'}", kind, where, off)
    for kind, prefix in PREFIX.items() for where in ("imports", "exercise") for off in (False, True)
]
COLLUDERS = [Attack("c0-colluder-a", "plant", "imports", True), Attack("c0-colluder-b", "plant", "exercise", True)]
STEAL_MODULES = [
    "bncourse.reference", "bncourse.reference.batchnorm", "bncourse.lessons.l05_test_time.solutions",
    "bncourse.lessons.l05_test_time.mistakes", "bncourse.grading.grader", "bncourse.nn.from_scratch",
]


def _of(kind: str) -> list[Attack]:
    return [a for a in ATTACKS if a.kind == kind]


@dataclass(repr=False)
class ClassRun:
    """Everything the tests look at, gathered once."""

    status: int
    seconds: float
    printed: str
    root: Path
    class_dir: Path
    out: Path
    private_tmp: Path
    marker: str
    canary: str
    rows: dict[str, dict[str, str]]
    report: dict[str, Any]
    after_run: dict[str, bytes]
    after_wait: dict[str, bytes]
    subs_before: dict[str, str]
    subs_after: dict[str, str]
    victim: Path
    victim_before: tuple[bytes, int]
    network_events: list[str]
    seen_during_run: list[str]
    alive: list[str]
    new_children: list[str]
    tmp_stat: tuple[os.stat_result, os.stat_result]
    marker_paths: list[str]
    cgroups_left: list[str]

    def __repr__(self) -> str:
        return f"<ClassRun: exit {self.status}, {self.seconds:.0f} s, {len(self.rows)} rows, out {self.out}>"

    def record(self, student: str, notebook: str = NB05) -> dict[str, Any]:
        (rec,) = [s for s in self.report["submissions"]
                  if s["student"] == student and Path(s["path"]).name == notebook]
        return rec

    def witness(self, student: str) -> str | None:
        """The attack's own last line (``ATTACK-DONE <student> leaks=N ...``), if it got there."""
        return next((e["error"] for e in self.record(student).get("cell_errors", [])
                     if f"{DONE} {student} " in e["error"]), None)

    def points(self, student: str) -> dict[str, float]:
        return {r["exercise"]: float(r["points"]) for r in self.record(student)["results"]}

    def out_text(self) -> str:
        return "\n".join(data.decode("utf-8", "replace") for data in self.after_wait.values())


def _sha256_tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 and mtime of every file under ``root``."""
    return {name: f"{hashlib.sha256(data).hexdigest()} {(root / name).stat().st_mtime_ns}"
            for name, data in files_under(root).items()}


def _config(root: Path, class_dir: Path, out: Path, private_tmp: Path, marker: str,
            listeners: Listeners) -> dict[str, Any]:
    steal_files = [str(class_dir / s / nb) for s in HONEST for nb in (NB01, NB05)]
    steal_files += [str(class_dir / s / CANARY_NAME) for s in HONEST]
    steal_files += [str(class_dir / a.student / NB05) for a in COLLUDERS]
    steal_files += [str(NOTEBOOKS_DIR / NB05), str(NOTEBOOKS_DIR / NB01)]
    for repo in dict.fromkeys([ROOT, Path(sys.prefix).resolve().parent]):  # the worktree, the installed repo
        package = repo / "bncourse"
        steal_files += [str(package / "lessons" / "l05_test_time" / f) for f in ("solutions.py", "mistakes.py")]
        steal_files += [str(package / "grading" / f) for f in ("grader.py", "expected_outputs.json")]
        steal_files += [str(p) for p in sorted((package / "reference").glob("*.py"))]
    daemon_targets = [str(out / "grades.csv"), str(out / "report.json"),
                      *(str(out / "feedback" / f"{s}.md") for s in HONEST),
                      f"/tmp/{marker}-daemon", str(root / f"{marker}-daemon")]
    return {
        "marker": marker,
        "names": list(EXERCISES),
        "canary_name": CANARY_NAME,
        "steal_modules": STEAL_MODULES,
        "expected_module": "bncourse.grading.expected",
        "oracle_module": "bncourse.oracle",
        "runner_module": "bncourse.grading.runner",
        "registry_module": "bncourse.grading.registry",
        "steal_files": steal_files,
        "walk_seconds": 0.4,
        "write_targets": [str(root / "victim.txt"), str(root / f"{marker}-new.txt"), f"/tmp/{marker}-new.txt",
                          str(out / f"{marker}-new.txt"), str(out / "grades.csv"),
                          str(class_dir / f"{marker}-new.txt"), str(class_dir / HONEST[0] / NB05),
                          str(class_dir / HONEST[0] / f"{marker}-new.ipynb"),
                          str(private_tmp / f"{marker}-new.txt")],
        "write_dirs": [str(root), "/tmp", str(out), str(class_dir), str(class_dir / HONEST[0]), str(private_tmp)],
        "plant": {name: "import numpy as np\n" + src for name, src in honest_sources().items()},
        "tcp_port": listeners.tcp_port,
        "udp_port": listeners.udp_port,
        "unix_path": str(listeners.unix_path),
        "abstract_name": listeners.abstract_name,
        "daemon_code": DAEMON,
        "bomb_code": BOMB,
        "daemon_config": json.dumps({"targets": daemon_targets}).encode().hex(),
    }


def _cgroups(pid: int) -> list[str]:
    return [str(p) for root in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
            for p in (root.glob(f"bncourse-grade-{pid}-*") if root.is_dir() else [])]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ClassRun:
    root = tmp_path_factory.mktemp("hostile-class")
    marker = "hx" + secrets.token_hex(6)  # 14 characters: fits in /proc/PID/comm
    canary = "canary-" + secrets.token_hex(16)
    class_dir, out, private_tmp = root / "class", root / "out", root / "tmp"
    private_tmp.mkdir()
    for student in HONEST:
        write_honest(class_dir / student / NB05)
        write_honest(class_dir / student / NB01, NB01)
        (class_dir / student / CANARY_NAME).write_text(canary + "\n")
    victim = root / "victim.txt"
    victim.write_text("intact\n")
    listeners = Listeners(root / "listen.sock", f"bncourse-hostile-{marker}")
    watch = ProcessWatch(marker)
    try:
        config = _config(root, class_dir, out, private_tmp, marker, listeners)
        for attack in COLLUDERS + ATTACKS:
            path = class_dir / attack.student / NB05
            write_attack(path, attack, dict(config, write_targets=[*config["write_targets"], str(path)]))
        subs_before = _sha256_tree(class_dir)
        victim_before = (victim.read_bytes(), victim.stat().st_mtime_ns)
        tmp_before = os.stat("/tmp")
        children_before = set(children_of(os.getpid()))
        printed = io.StringIO()
        start = time.monotonic()
        # Every temporary folder of the grader goes to a folder of this test (tempfile.tempdir),
        # so "nothing is left behind" is exact even while other graders run on this machine.
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed), \
                contextlib.redirect_stderr(printed):
            mp.setattr(tempfile, "tempdir", str(private_tmp))
            status = main(["grade", str(class_dir), "--out", str(out), "--jobs", "2", "--timeout", "20"])
        seconds = time.monotonic() - start
        after_run = files_under(out)
        time.sleep(WAIT_AFTER_RUN)
        after_wait = files_under(out)
        alive = processes_with(marker)
        new_children = sorted(set(children_of(os.getpid())) - children_before)
    finally:
        listeners.close()
        watch.close()
    marker_paths = paths_with(root, marker) + [f"{d}/{n}" for d in ("/tmp", "/dev/shm") if os.path.isdir(d)
                                               for n in os.listdir(d) if marker in n]
    rows: dict[str, dict[str, str]] = {}
    report: dict[str, Any] = {"submissions": []}
    if (out / "grades.csv").is_file():
        with open(out / "grades.csv", newline="") as f:
            rows = {r["student"]: r for r in csv.DictReader(f)}
    if (out / "report.json").is_file():
        report = json.loads((out / "report.json").read_text())
    return ClassRun(
        status=status, seconds=seconds, printed=printed.getvalue(), root=root, class_dir=class_dir, out=out,
        private_tmp=private_tmp, marker=marker, canary=canary, rows=rows, report=report,
        after_run=after_run, after_wait=after_wait, subs_before=subs_before, subs_after=_sha256_tree(class_dir),
        victim=victim, victim_before=victim_before, network_events=list(listeners.events),
        seen_during_run=sorted(watch.seen.values()), alive=alive,
        new_children=new_children, tmp_stat=(tmp_before, os.stat("/tmp")), marker_paths=marker_paths,
        cgroups_left=_cgroups(os.getpid()),
    )


def _witnesses(run: ClassRun, attacks: list[Attack]) -> dict[str, str]:
    """Each attacker's witness line; fails naming those whose attack did not run to its end."""
    found = {a.student: run.witness(a.student) for a in attacks}
    missing = {s: run.record(s).get("cell_errors") for s, w in found.items() if w is None}
    assert not missing, f"these attacks did not run to their end (so they prove nothing): {missing}"
    return {s: w for s, w in found.items() if w is not None}


def _unearned(run: ClassRun, attacks: list[Attack]) -> dict[str, dict[str, float]]:
    return {a.student: pts for a in attacks if any((pts := run.points(a.student)).values())}


# --- the run as a whole -----------------------------------------------------------------------


def test_the_run_succeeds_jailed_with_a_row_for_everyone(run: ClassRun) -> None:
    assert run.status == 0, run.printed[-3000:]
    assert run.report.get("isolation") == "bubblewrap jail"
    expected = {*HONEST, *(a.student for a in COLLUDERS + ATTACKS)}
    assert set(run.rows) == expected, f"missing {expected - set(run.rows)}, extra {set(run.rows) - expected}"
    assert all(r["isolation"] == "bubblewrap jail" for r in run.report["submissions"])


def _assert_honest_full_marks(run: ClassRun) -> None:
    for student in HONEST:
        row = run.rows.get(student)
        assert row is not None and row["total"] == row["max"] and float(row["max"]) > 0, (student, row)


def test_every_honest_student_has_full_marks(run: ClassRun) -> None:
    _assert_honest_full_marks(run)


def test_the_guard_disabling_attacks_did_switch_the_in_process_guards_off(run: ClassRun) -> None:
    """Not the grader's property but the tests': the guard-off variants really reach the jail."""
    for attack in ATTACKS:
        if attack.guard_off and attack.kind != "loop":
            witness = run.witness(attack.student) or ""
            assert "guards off: ok audit hooks neutered: 1" in witness, (attack.student, witness)


# --- 1. unearned points -----------------------------------------------------------------------


def test_1_no_points_from_answers_the_grader_or_classmates_notebooks(run: ClassRun) -> None:
    attacks = _of("steal")
    witnesses = _witnesses(run, attacks)
    leaked = {s: w for s, w in witnesses.items() if " leaks=0 " not in w}
    assert not leaked, f"answers, grader code or classmates' files were reachable: {leaked}"
    assert _unearned(run, attacks) == {}
    assert run.canary not in run.out_text(), "a classmate's file found its way into the grader's outputs"


def test_1b_the_stand_ins_the_jail_ships_are_not_accepted_as_answers(run: ClassRun) -> None:
    """Handing in the torch stand-ins (``bncourse.oracle``, which ``best_available`` returns)
    as the exercises' functions: nothing of the student's own runs, so no points."""
    attacks = _of("stand_in")
    _witnesses(run, attacks)
    assert _unearned(run, attacks) == {}, "a stand-in handed in as the answer earned points"


# --- 2. reading and writing outside -----------------------------------------------------------


def test_2_nothing_is_written_outside_the_jail(run: ClassRun) -> None:
    _witnesses(run, _of("write"))
    assert (run.victim.read_bytes(), run.victim.stat().st_mtime_ns) == run.victim_before
    assert run.marker_paths == [], "files made by attackers on the host"
    assert run.subs_after == run.subs_before, "submissions changed during grading"


def test_2b_no_submission_leaves_anything_for_the_next_one(run: ClassRun) -> None:
    """Two colluders graded first plant their solved cells where a jail's later submissions
    could find them (the jail's ``/dev/shm``); leechers without a solution look there."""
    _witnesses(run, COLLUDERS)
    witnesses = _witnesses(run, _of("leech"))
    found = {s: m.group(1) if (m := re.search(r"found=(\S+)", w)) else w for s, w in witnesses.items()}
    assert set(found.values()) == {"0"}, f"code planted by an earlier submission was found: {found}"
    assert _unearned(run, _of("leech")) == {}, "a classmate's code passed from one jailed run to the next"


# --- 3. network -------------------------------------------------------------------------------


def test_3_no_connection_leaves_the_jail(run: ClassRun) -> None:
    witnesses = _witnesses(run, _of("network"))
    assert run.network_events == []
    assert not [w for w in witnesses.values() if ": ok CONNECTED" in w]


# --- 4. outliving and attacking the grader ----------------------------------------------------


def test_4_nothing_outlives_its_submission_and_the_gradebook_stays_put(run: ClassRun) -> None:
    witnesses = _witnesses(run, _of("outlive"))
    for attack in _of("outlive"):
        if attack.guard_off:  # the daemon was really started (the jail is what must stop it)
            assert "daemon: ok spawned" in witnesses[attack.student], witnesses[attack.student]
        assert " leaks=0 " in witnesses[attack.student], witnesses[attack.student]
    daemons = [p for p in run.seen_during_run if f"[argv {run.marker}-daemon]" in p]
    assert daemons, f"no daemon was ever seen on the host, so its absence proves nothing: {run.seen_during_run}"
    assert run.alive == [], "attackers' processes outlived the grading run"
    assert run.new_children == [], "the grader left child processes behind"
    assert run.after_wait == run.after_run, "the outputs changed after the grader finished"
    assert "PWNED" not in run.out_text()
    assert run.status == 0
    _assert_honest_full_marks(run)
    assert {a.student for a in ATTACKS} <= set(run.rows)


# --- 5. resource exhaustion -------------------------------------------------------------------


def test_5_exhaustion_stays_inside_its_own_corner(run: ClassRun) -> None:
    witnesses = _witnesses(run, _of("exhaust"))
    for attack in _of("exhaust"):
        witness = witnesses[attack.student]
        assert " leaks=0 " in witness, witness  # neither 100 GB allocated nor mapped
        for where in ("/tmp", "/out", "cwd"):  # each filled up to its cap (ENOSPC), not to the attack's 2 GB
            m = re.search(rf"fill {where}: (?:ok filled (\d+) MB errno (\w+)|(_SoftTimeout))", witness)
            assert m, (attack.student, where, witness)
            if m.group(3):  # the 1.3 s budget of an exercise cell ran out (the guard doing its job)
                assert attack.where == "exercise" and not attack.guard_off, witness
            else:
                assert m.group(2) == "28" and int(m.group(1)) < 2048, (attack.student, where, witness)
    for attack in _of("exhaust"):  # the bomb met a process limit (its own cap is 2048 forks in 2 s)
        m = re.search(r"fork bomb: ok forked=(\d+) at-limit=(\d+)", witnesses[attack.student])
        if attack.guard_off or attack.where == "imports":  # else its 1.3 s cell budget may cut the wait
            assert m, witnesses[attack.student]
        if m:
            assert int(m.group(1)) < 2048 and int(m.group(2)) > 0, witnesses[attack.student]
    for attack in _of("loop"):  # graded as far as it went: a row, no points
        assert attack.student in run.rows and not any(run.points(attack.student).values())
    assert run.status == 0
    assert run.seconds < WALL_CLOCK_BOUND, f"the run took {run.seconds:.0f} s"
    _assert_honest_full_marks(run)
    before, after = run.tmp_stat
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (
        stat.S_IMODE(before.st_mode), before.st_uid, before.st_gid)
    bomb = [p for p in run.seen_during_run if f"[argv {run.marker}-bomb]" in p]
    assert bomb, f"no fork-bomb process was ever seen on the host: {run.seen_during_run}"
    assert run.alive == [] and run.new_children == []
    assert sorted(os.listdir(run.private_tmp)) == [], "the grader left temporary folders behind"
    assert run.cgroups_left == [], "the grader left its pids cgroups behind"


# --- 6. tampering with the worker -------------------------------------------------------------


def test_6_a_tampered_worker_earns_nothing(run: ClassRun) -> None:
    witnesses = _witnesses(run, _of("tamper"))
    for witness in witnesses.values():
        assert "write fake result files: ok fakes written" in witness, witness
        assert "patch numpy.savez: ok" in witness, witness
    assert _unearned(run, _of("tamper")) == {}
    assert run.status == 0
    _assert_honest_full_marks(run)
