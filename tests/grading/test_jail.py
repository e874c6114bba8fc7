"""The jail (bubblewrap) as a hostile submission meets it: each test asserts that the
attack's own effect did not happen on the host, not merely that the jailed code failed.

Skipped with a visible reason where bubblewrap is missing, unless BNCOURSE_REQUIRE_JAIL=1
(set by .ci/run), where a missing bwrap fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from bncourse.grading.jail import (
    JAIL_BUILD,
    JAIL_UID,
    JailLimits,
    JailSpec,
    bwrap_path,
    run_in_jail,
)
from tests.jail_helpers import require_bwrap
from tests.paths import ROOT

if bwrap_path() is None:
    require_bwrap()  # a skip with its reason, or a failure in CI


@pytest.fixture(scope="module")
def build(student_build: Path) -> Path:
    return student_build


def _run(build: Path, tmp_path: Path, code: str, **limits: float) -> tuple[int | None, str, Path]:
    out = tmp_path / "out"
    spec = JailSpec(student_build=build, out=out)
    result = run_in_jail(spec, ["python", "-c", textwrap.dedent(code)], limits=JailLimits(**limits))  # type: ignore[arg-type]
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace"), out


def test_it_runs_the_student_build_as_nobody_with_the_libraries(build: Path, tmp_path: Path) -> None:
    code = """
        import os, importlib.util as u, bncourse, bncourse.edition as e, numpy, torch
        print(os.getuid(), os.getgid(), e.EDITION, u.find_spec("bncourse.reference"), bncourse.__file__)
        open("/out/result.txt", "w").write("written")
    """
    rc, text, out = _run(build, tmp_path, code)
    assert rc == 0, text
    uid, gid, edition, reference, where = text.split()[:5]
    assert (int(uid), int(gid), edition, reference) == (JAIL_UID, JAIL_UID, "student", "None")
    assert where.startswith(JAIL_BUILD)
    assert (out / "result.txt").read_text() == "written"


def test_no_answer_and_no_course_repository_is_reachable(build: Path, tmp_path: Path) -> None:
    secret = ROOT / "bncourse" / "lessons" / "l03_forward_backward" / "solutions.py"
    code = f"""
        import importlib
        for name in ("bncourse.reference", "bncourse.lessons.l03_forward_backward.solutions",
                     "bncourse.grading.grader"):
            try:
                importlib.import_module(name); print("LEAKED-IMPORT", name)
            except ModuleNotFoundError:
                print("absent", name)
        for path in ({str(secret)!r}, {str(ROOT / "README.md")!r}, "/root/.bash_history", "/etc/shadow"):
            try:
                open(path).read(); print("LEAKED-READ", path)
            except OSError as exc:
                print("unreadable", path, type(exc).__name__)
    """
    rc, text, _ = _run(build, tmp_path, code)
    assert rc == 0, text
    assert "LEAKED" not in text, text
    assert text.count("absent") == 3 and text.count("unreadable") == 4


def test_nothing_outside_tmp_and_out_is_writable_and_the_host_is_unchanged(build: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("intact")
    tmp_mode = os.stat("/tmp").st_mode
    code = f"""
        import os
        for path in ({str(victim)!r}, "/usr/evil", {str(build / "bncourse" / "evil.py")!r}, "/evil"):
            try:
                with open(path, "w") as f: f.write("pwned")
                print("LEAKED-WRITE", path)
            except OSError as exc:
                print("refused", path, type(exc).__name__)
        try:
            os.chmod("/tmp", 0o700); os.chmod({str(tmp_path)!r}, 0o700)
        except OSError:
            pass
        open("/tmp/scratch", "w").write("fine")  # its own tmpfs
    """
    rc, text, _ = _run(build, tmp_path, code)
    assert rc == 0, text
    assert "LEAKED" not in text, text
    assert victim.read_text() == "intact"
    assert not (build / "bncourse" / "evil.py").exists() and not Path("/usr/evil").exists()
    assert os.stat("/tmp").st_mode == tmp_mode
    assert not Path("/tmp/scratch").exists()


def test_no_connection_reaches_a_listener_on_the_host(build: Path, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = f"""
        import socket
        for host in ("127.0.0.1", "10.0.0.1"):
            try:
                socket.create_connection((host, {port}), timeout=1).send(b"pwned"); print("CONNECTED", host)
            except OSError as exc:
                print("no route", host, type(exc).__name__)
    """
    try:
        rc, text, _ = _run(build, tmp_path, code)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever arrived
    finally:
        listener.close()
    assert rc == 0, text
    assert "CONNECTED" not in text, text


def _alive(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
    return found


def test_no_process_outlives_the_jail_double_fork_and_setsid_included(build: Path, tmp_path: Path) -> None:
    marker = f"bncourse-daemon-{os.getpid()}-{time.monotonic_ns()}"
    code = f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-S", "-c", "import time; time.sleep(60)", "{marker}"])
            os._exit(0)
        time.sleep(0.5)
        print("parent done")
    """
    rc, text, _ = _run(build, tmp_path, code)
    assert rc == 0 and "parent done" in text, text
    deadline = time.monotonic() + 5
    while _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(marker) == []


def test_a_runaway_is_killed_at_the_wall_clock_limit_with_its_children(build: Path, tmp_path: Path) -> None:
    marker = f"bncourse-runaway-{os.getpid()}-{time.monotonic_ns()}"
    code = f"""
        import os, sys
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-S", "-c", "while True: pass", "{marker}"])
        while True:
            pass
    """
    start = time.monotonic()
    rc, _, _ = _run(build, tmp_path, code, wall_seconds=3.0)
    assert time.monotonic() - start < 15
    assert rc != 0
    time.sleep(0.5)
    assert _alive(marker) == []


def test_the_grader_and_its_other_processes_cannot_be_signalled(build: Path, tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        code = f"""
            import os, signal
            for pid in ({bystander.pid}, {os.getpid()}, 1):
                try:
                    os.kill(pid, signal.SIGKILL); print("KILLED", pid)
                except OSError as exc:
                    print("refused", pid, type(exc).__name__)
        """
        _, text, _ = _run(build, tmp_path, code)
        assert bystander.poll() is None, "the bystander was killed"
    finally:
        bystander.kill()
    # pid 1 in the jail is bubblewrap's own reaper: killing it ends the jail, nothing outside
    assert "KILLED " + str(bystander.pid) not in text and "KILLED " + str(os.getpid()) not in text, text


def test_a_huge_allocation_fails_inside_and_the_host_carries_on(build: Path, tmp_path: Path) -> None:
    code = """
        try:
            b = bytearray(20 * 2**30); print("ALLOCATED")
        except MemoryError:
            print("MemoryError")
    """
    _, text, _ = _run(build, tmp_path, code, memory_bytes=2 * 2**30)
    assert "ALLOCATED" not in text and "MemoryError" in text, text
