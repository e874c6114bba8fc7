"""The seccomp filter of :mod:`bncourse.grading.confine` (the jail tests run it for real)."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from bncourse.grading import confine

HEADER = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def test_the_system_call_numbers_are_the_kernels() -> None:
    if not HEADER.exists():
        pytest.skip(f"{HEADER} is not installed (package linux-libc-dev)")
    numbers = dict(re.findall(r"#define __NR_(\w+) (\d+)", HEADER.read_text()))
    wrong = {name: nr for name, nr in confine.SECCOMP_DENIED.items() if int(numbers[name]) != nr}
    assert wrong == {}
    assert (int(numbers["clone"]), int(numbers["clone3"]), int(numbers["socket"])) == (56, 435, 41)


def _run(program: list[tuple[int, int, int, int]], nr: int, arch: int = 0xC000003E, arg0: int = 0) -> int:
    """Interpret the classic-BPF program on one ``seccomp_data`` (nr, arch, ip, args)."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == 0x06:
            return k
        else:
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if hit else jf)


@pytest.mark.parametrize(("nr", "arg0", "verdict"), [
    (0, 0, "allow"),                          # read
    (57, 0, "allow"),                         # fork
    (56, 0x11, "allow"),                      # clone(SIGCHLD): a plain fork
    (56, 0x3D0F00, "allow"),                  # clone of a thread
    (56, 0x10000000, "EPERM"),                # clone(CLONE_NEWUSER)
    (435, 0, "ENOSYS"),                       # clone3: glibc falls back to clone
    (101, 0, "EPERM"),                        # ptrace
    (165, 0, "EPERM"),                        # mount
    (272, 0, "EPERM"),                        # unshare
    (41, 1, "allow"),                         # socket(AF_UNIX)
    (41, 2, "EAFNOSUPPORT"),                  # socket(AF_INET)
    (41, 10, "EAFNOSUPPORT"),                 # socket(AF_INET6)
    (0x40000000 + 1, 0, "EPERM"),             # the x32 ABI
])
def test_the_filter_allows_what_numpy_needs_and_refuses_the_rest(nr: int, arg0: int, verdict: str) -> None:
    expected = {"allow": 0x7FFF0000, "EPERM": 0x50001, "ENOSYS": 0x50026, "EAFNOSUPPORT": 0x50061}[verdict]
    assert _run(confine._filter(), nr, arg0=arg0) == expected


def test_another_architecture_is_killed() -> None:
    assert _run(confine._filter(), 0, arch=0x40000003) == 0x80000000  # i386
