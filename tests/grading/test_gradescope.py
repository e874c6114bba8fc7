"""The Gradescope autograder: the zip (what it holds, what it refuses), and a simulation of
Gradescope's container: the zip unpacked into a root laid out like ``/autograder``,
``setup.sh`` then ``run_autograder`` on an honest, a wrong and a hostile submission, in the
bubblewrap jail and as an unprivileged user, every results.json validated against a JSON
Schema written from Gradescope's specification (``gradescope_results.schema.json``).

The simulation skips the network: ``BNCOURSE_AUTOGRADER_PYTHON`` points ``setup.sh`` at this
interpreter (torch and the dependencies already installed); the grading oracle is still
installed from the zip's wheel, offline, and the grader imports it from there.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import nbformat
import pytest

from bncourse.authoring import autograder, student_package
from bncourse.cli import main
from bncourse.errors import BNCourseError
from bncourse.grading import gradescope
from bncourse.grading.gradescope import Assignment, Layout
from tests.jail_helpers import require_bwrap
from tests.paths import NOTEBOOKS_DIR

NB = "03_forward_backward"
EXERCISES = ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt", "numerical_gradient"]
SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
PACKAGE = Path(autograder.__file__).resolve().parent.parent
UNPRIVILEGED = "nobody"


def validate(results: dict[str, Any]) -> None:
    """Gradescope's schema, plus what this autograder promises for every test."""
    jsonschema.validate(results, SCHEMA)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)


def unpack(zip_path: Path, root: Path) -> None:
    """What Gradescope does with the zip: ``/autograder/source``, modes kept, run_autograder copied."""
    source = root / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            zf.extract(info, source)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(source / info.filename, mode)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()


def instructor_notebook() -> Any:
    return nbformat.read(NOTEBOOKS_DIR / f"{NB}.ipynb", as_version=4)


def exercise_cell(nb: Any, name: str) -> Any:
    return next(c for c in nb.cells if c.cell_type == "code" and "exercise" in c.metadata.get("tags", [])
                and f"def {name}(" in c.source)


def wrong_notebook() -> Any:
    """The solutions, but batchnorm_forward with the unbiased variance (a known mistake)."""
    nb = instructor_notebook()
    cell = exercise_cell(nb, "batchnorm_forward")
    right = "var = (x_centered**2).mean(axis=0)"
    assert right in cell.source
    cell.source = cell.source.replace(right, "var = (x_centered**2).sum(axis=0) / (x.shape[0] - 1)")
    return nb


ATTACK = r'''
import gc as _gc, json as _j, types as _ty
for _obj in _gc.get_objects():  # the audit hook cannot be removed: make it think it is busy
    if isinstance(_obj, _ty.FunctionType) and _obj.__closure__ and "busy" in _obj.__code__.co_freevars:
        _cell = _obj.__closure__[_obj.__code__.co_freevars.index("busy")].cell_contents
        if isinstance(_cell, list) and _cell:
            _cell[0] = True
_cfg = _j.loads(bytes.fromhex("{config}").decode())
_reads = _writes = 0
for _p in _cfg["read"]:
    try:
        with open(_p, "rb") as _f:
            _data = _f.read()
        _reads += 1
        if _p.endswith("solutions.py"):
            _ns = {{"np": np}}
            exec(_data, _ns)
            _STOLEN = _ns
    except Exception:
        pass
for _p in _cfg["write"]:
    try:
        with open(_p, "w") as _f:
            _f.write(_j.dumps({{"score": 1000, "tests": [], "output": "written by the submission"}}))
        _writes += 1
    except Exception:
        pass
_sockets = 0
try:
    import socket as _so
    _so.socket(_so.AF_INET, _so.SOCK_STREAM).close()
    _sockets += 1
except Exception:
    pass
raise RuntimeError("ATTACK" + "-DONE reads_ok=%d writes_ok=%d sockets_ok=%d" % (_reads, _writes, _sockets))
'''


def hostile_notebook(root: Path) -> Any:
    """Reads the oracle's solutions, the zip's settings and the oracle's wheel, writes
    results.json and a file next to it, opens a network socket, then defines every exercise
    as the stolen solution.
    The attack is compiled under the import machinery's file name and switches the in-process
    audit hook off (it is a diagnostic, not the boundary), as ``tests/hostile_helpers.py``'s
    attacks do: only the jail or the user's rights can stop it (graded with ``--no-jail`` as
    root, it reads all three files, writes both and opens its socket)."""
    config = {
        "read": [str(root / "oracle/bncourse/lessons/l03_forward_backward/solutions.py"),
                 str(root / "source" / gradescope.CONFIG_FILE),
                 *map(str, sorted((root / "source/oracle").glob("*.whl")))],
        "write": [str(root / "results/results.json"), str(root / "results/planted.txt")],
    }
    nb = instructor_notebook()
    imports = next(c for c in nb.cells if c.cell_type == "code" and "imports" in c.metadata.get("tags", []))
    attack = ATTACK.format(config=json.dumps(config).encode().hex())
    imports.source += f"\nexec(compile(bytes.fromhex({attack.encode().hex()!r}).decode(), " \
                      "'<frozen importlib._bootstrap>', 'exec'))\n"
    for name in EXERCISES:
        cell = exercise_cell(nb, name)
        cell.source = f"def {name}(*args, **kwargs):\n    return _STOLEN[{name!r}](*args, **kwargs)\n"
    return nb


# --- the zip ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return autograder.build_gradescope_zip(tmp_path_factory.mktemp("zip") / "autograder.zip", [NB])


def test_zip_holds_the_contract_the_student_build_and_the_oracle(autograder_zip: Path) -> None:
    with zipfile.ZipFile(autograder_zip) as zf:
        names = zf.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        settings = json.loads(zf.read(gradescope.CONFIG_FILE))
        wheel = next(n for n in names if n.startswith("oracle/"))
        with zipfile.ZipFile(zf.open(wheel)) as whl:
            oracle = whl.namelist()
        edition = zf.read("student_build/bncourse/edition.py").decode()
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert settings["notebooks"] == [NB]
    assert not [n for n in names if n.endswith(".ipynb")]
    build = [n.removeprefix("student_build/") for n in names if n.startswith("student_build/")]
    assert build and not [n for n in build if student_package.is_instructor_only(n)]
    assert "bncourse/grading/expected_outputs.json" not in build  # the jail's build: no oracle inside
    assert '= "student"' in edition
    assert "bncourse/lessons/l03_forward_backward/solutions.py" in oracle  # the oracle: the answers
    assert "bncourse/grading/gradescope.py" in oracle
    assert not [n for n in oracle if n.startswith("bncourse/authoring/")]
    assert set(names) - {n for n in names if n.startswith(("student_build/", "oracle/"))} == {
        "setup.sh", "run_autograder", gradescope.CONFIG_FILE, "requirements.txt", "requirements-min.txt"}


def test_course_zip_grades_every_notebook(tmp_path: Path) -> None:
    out = autograder.build_gradescope_zip(tmp_path / "course.zip")
    with zipfile.ZipFile(out) as zf:
        settings = json.loads(zf.read(gradescope.CONFIG_FILE))
        pinned, floors = zf.read("requirements.txt").decode(), zf.read("requirements-min.txt").decode()
    assert settings["notebooks"] == sorted({e.notebook for e in gradescope.all_exercises()})
    assert "numpy==" in pinned and "numpy>=" in floors and "torch" not in pinned + floors


def test_setup_installs_the_torch_the_makefile_pins(autograder_zip: Path) -> None:
    makefile = (NOTEBOOKS_DIR.parent / "Makefile").read_text()
    assert f"TORCH_PIN := {autograder.TORCH_PIN}" in makefile
    with zipfile.ZipFile(autograder_zip) as zf:
        setup = zf.read("setup.sh").decode()
    assert f'"{autograder.TORCH_PIN}" --index-url' in setup and autograder.TORCH_INDEX in setup


def test_the_autograder_module_is_not_in_the_student_build() -> None:
    assert student_package.is_instructor_only("bncourse/grading/gradescope.py")


def _package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "bncourse"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("plant", ["notebook", "link outside", "stray file"])
def test_builder_refuses_notebooks_and_files_outside_the_build(tmp_path: Path, plant: str) -> None:
    package = _package_copy(tmp_path)
    lesson = package / "lessons" / "l03_forward_backward"
    if plant == "notebook":
        shutil.copy(NOTEBOOKS_DIR / f"{NB}.ipynb", lesson / "solutions_notebook.ipynb")
        expected = "solutions_notebook.ipynb is a notebook"
    elif plant == "link outside":
        (lesson / "notes.py").symlink_to(NOTEBOOKS_DIR.parent / "tests" / "conftest.py")
        expected = "notes.py is a symbolic link"
    else:
        (lesson / "answers.csv").write_text("batchnorm_forward,42\n")
        expected = "answers.csv is not part of the package's build"
    out = tmp_path / "out" / "autograder.zip"
    with pytest.raises(BNCourseError, match=expected):
        autograder.build_gradescope_zip(out, [NB], package_dir=package)
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no zip, no temporary file


def test_entry_check_refuses_anything_but_build_and_oracle() -> None:
    entries = autograder.zip_entries(Assignment((NB,)))
    student = {k.removeprefix("student_build/"): v for k, v in entries.items() if k.startswith("student_build/")}
    oracle = autograder.oracle_files()
    autograder._check_entries(entries, student, oracle)  # the real list passes
    for name, data in [(f"notebooks/{NB}.ipynb", b"{}"), ("source/secret.py", b"x = 1\n"),
                       ("student_build/bncourse/reference/batchnorm.py", oracle["bncourse/reference/batchnorm.py"])]:
        with pytest.raises(BNCourseError, match="refusing to build the autograder"):
            autograder._check_entries({**entries, name: data}, student, oracle)


def test_cli_builds_and_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ag.zip"
    assert main(["autograder", "--gradescope", "--out", str(out), "--notebook", NB]) == 0
    assert zipfile.is_zipfile(out)
    assert main(["autograder", "--out", str(tmp_path / "x.zip")]) == 2
    assert main(["autograder", "--gradescope", "--out", str(tmp_path / "y.zip"), "--notebook", "42_nothing"]) == 2
    err = capsys.readouterr().err
    assert "--gradescope" in err and "unknown notebook(s) 42_nothing" in err
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "y.zip").exists()


# --- bad uploads (in-process: nothing reaches a worker) -----------------------------------------


@pytest.fixture()
def root(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "autograder")
    for d in (layout.source, layout.submission, layout.results.parent):
        d.mkdir(parents=True)
    (layout.source / gradescope.CONFIG_FILE).write_text(Assignment((NB,)).to_json())
    return layout


def _run(layout: Layout) -> dict[str, Any]:
    env = {"BNCOURSE_AUTOGRADER_ROOT": str(layout.root), "BNCOURSE_AUTOGRADER_ISOLATION": "user",
           "BNCOURSE_AUTOGRADER_USER": UNPRIVILEGED}
    assert gradescope.main(env) == 0
    results = json.loads(layout.results.read_text())
    validate(results)
    return results


@pytest.mark.parametrize(("upload", "message"), [
    ({}, "no notebook (.ipynb) in your submission: upload 03_forward_backward.ipynb"),
    ({"answers.py": "x = 1"}, "no notebook (.ipynb) in your submission (found answers.py)"),
    ({"a.ipynb": "{}", "b/03_forward_backward.ipynb": "{}"}, "2 notebooks were submitted"),
    ({"03_forward_backward.ipynb": "not json at all"}, "unreadable notebook"),
])
def test_bad_upload_gives_zero_and_a_clear_message(root: Layout, upload: dict[str, str], message: str) -> None:
    for name, text in upload.items():
        (root.submission / name).parent.mkdir(parents=True, exist_ok=True)
        (root.submission / name).write_text(text)
    results = _run(root)
    assert results["score"] == 0
    assert message in results["output"]
    assert [t["name"] for t in results["tests"]] == EXERCISES
    assert all(t["score"] == 0 and message in t["output"] for t in results["tests"])


def test_another_lessons_notebook_is_not_graded_as_this_one(root: Layout) -> None:
    nbformat.write(nbformat.read(NOTEBOOKS_DIR / "05_test_time.ipynb", as_version=4), root.submission / "hw.ipynb")
    results = _run(root)
    message = "hw.ipynb is notebook 05_test_time, which this assignment does not grade: upload 03_forward_backward"
    assert results["score"] == 0 and message in results["output"]
    assert all(message in t["output"] for t in results["tests"])


def test_broken_settings_still_write_results(root: Layout) -> None:
    (root.source / gradescope.CONFIG_FILE).write_text('{"notebooks": ["42_nothing"]}')
    results = _run(root)
    assert results["score"] == 0 and "not your fault" in results["output"]


def test_isolation_choice() -> None:
    assert gradescope.choose_isolation({"BNCOURSE_AUTOGRADER_ISOLATION": "user"}) == gradescope.ISOLATION_USER
    with pytest.raises(BNCourseError, match="auto, jail or user"):
        gradescope.choose_isolation({"BNCOURSE_AUTOGRADER_ISOLATION": "chroot"})


# --- the simulation ----------------------------------------------------------------------------


def _worker_python() -> str | None:
    """An interpreter the unprivileged user can run with this environment's libraries (this
    one may live in a home folder it cannot enter), or None."""
    libraries = gradescope._libraries([])
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        probe = ("import json, sys; sys.path[:0] = json.loads(sys.argv[1]); import numpy, torch")
        try:
            done = subprocess.run(["runuser", "-u", UNPRIVILEGED, "--", candidate, "-I", "-S", "-c", probe,
                                   json.dumps(libraries)], capture_output=True, timeout=60, cwd="/")
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def container(autograder_zip: Path) -> Iterator[Path]:
    """The zip unpacked and set up in a root the unprivileged user can enter (like /autograder)."""
    if os.geteuid() != 0:
        pytest.skip("the Gradescope simulation runs as root, as Gradescope does")
    root = Path(tempfile.mkdtemp(prefix="bncourse-autograder-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        unpack(autograder_zip, root)
        env = {**os.environ, "BNCOURSE_AUTOGRADER_ROOT": str(root), "BNCOURSE_AUTOGRADER_PYTHON": sys.executable,
               "BNCOURSE_AUTOGRADER_USER": UNPRIVILEGED}
        env.pop("PYTHONPATH", None)
        subprocess.run(["bash", str(root / "source" / "setup.sh")], env=env, check=True, timeout=300)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def autograde(root: Path, notebooks: dict[str, Any], isolation: str, **extra: str) -> tuple[dict[str, Any], str]:
    """Put ``notebooks`` in the submission folder, run ``run_autograder``; (results, its stdout)."""
    shutil.rmtree(root / "submission")
    (root / "submission").mkdir()
    (root / "results" / "results.json").unlink(missing_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, root / "submission" / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"BNCOURSE_AUTOGRADER_ROOT": str(root), "BNCOURSE_AUTOGRADER_ISOLATION": isolation,
            "BNCOURSE_AUTOGRADER_USER": UNPRIVILEGED, **extra}
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300,
                          cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    return results, done.stdout


def _check_honest(results: dict[str, Any], stdout: str, root: Path, isolation: str) -> None:
    assert results["extra_data"]["isolation"] == isolation
    assert f"grader: {root / 'oracle' / 'bncourse'}" in stdout  # the oracle installed from the zip's wheel
    assert [t["name"] for t in results["tests"]] == EXERCISES
    assert results["score"] == 40 == sum(t["max_score"] for t in results["tests"])
    assert "All cases match" in results["tests"][0]["output"]
    assert "# Feedback for" in results["output"] and "**40 / 40 points**" in results["output"]
    assert "blocked:" not in results["output"]  # an honest notebook is not told it was blocked


def _check_wrong(results: dict[str, Any]) -> None:
    forward = results["tests"][0]
    assert forward["name"] == "batchnorm_forward" and forward["score"] < forward["max_score"]
    assert "not N-1" in forward["output"]  # the diagnosis is the test's output
    assert 0 < results["score"] < 40
    assert results["tests"][-1]["score"] == 10  # numerical_gradient does not depend on it


def _check_hostile(results: dict[str, Any], root: Path) -> None:
    text = json.dumps(results)
    assert "ATTACK-DONE reads_ok=0 writes_ok=0 sockets_ok=0" in text  # it ran to its end, and got nothing
    assert results["score"] == 0 and all(t["score"] == 0 for t in results["tests"])
    assert "written by the submission" not in text and not (root / "results" / "planted.txt").exists()
    solutions = (root / "oracle/bncourse/lessons/l03_forward_backward/solutions.py").read_text()
    assert not [line for line in solutions.splitlines() if len(line.strip()) > 30 and line.strip() in text]


@pytest.mark.slow
def test_gradescope_simulation_in_the_jail(container: Path) -> None:
    require_bwrap()
    if not gradescope.jail_available():
        pytest.skip("bubblewrap cannot make namespaces here")
    honest, stdout = autograde(container, {f"{NB}.ipynb": instructor_notebook()}, "auto")
    _check_honest(honest, stdout, container, gradescope.ISOLATION_JAIL)
    wrong, _ = autograde(container, {"my_homework.ipynb": wrong_notebook()}, "jail")
    _check_wrong(wrong)
    hostile, _ = autograde(container, {f"{NB}.ipynb": hostile_notebook(container)}, "jail")
    _check_hostile(hostile, container)
    no_ids = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("my answers"),
                                             nbformat.v4.new_code_cell("x = 1")])
    empty, _ = autograde(container, {"answers.ipynb": no_ids}, "jail")
    assert empty["score"] == 0 and "no cell is tagged `exercise`" in empty["tests"][0]["output"]


@pytest.mark.slow
def test_gradescope_simulation_as_an_unprivileged_user(container: Path) -> None:
    python = _worker_python()
    if python is None:
        pytest.skip(f"no interpreter that user {UNPRIVILEGED!r} can run with this environment's libraries")
    extra = {"BNCOURSE_AUTOGRADER_WORKER_PYTHON": python}
    honest, stdout = autograde(container, {f"{NB}.ipynb": instructor_notebook()}, "user", **extra)
    _check_honest(honest, stdout, container, gradescope.ISOLATION_USER)
    hostile, _ = autograde(container, {f"{NB}.ipynb": hostile_notebook(container)}, "user", **extra)
    _check_hostile(hostile, container)
    assert stat.S_IMODE(os.stat(container / "oracle").st_mode) == 0o700
    leftovers = [p for p in (container / "work").iterdir()] if (container / "work").exists() else []
    assert not leftovers  # each run's folder is removed


@pytest.mark.slow
def test_a_jail_that_cannot_start_falls_back_to_the_user(container: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    python = _worker_python()
    if python is None or not gradescope.jail_available():
        pytest.skip("needs both the jail probe to pass and a python the unprivileged user can run")
    monkeypatch.setattr(gradescope.ForkServer, "ready", lambda self: False)  # the jail's server never starts
    shutil.rmtree(container / "submission")
    (container / "submission").mkdir()
    nbformat.write(instructor_notebook(), container / "submission" / f"{NB}.ipynb")
    env = {"BNCOURSE_AUTOGRADER_ROOT": str(container), "BNCOURSE_AUTOGRADER_ISOLATION": "auto",
           "BNCOURSE_AUTOGRADER_USER": UNPRIVILEGED, "BNCOURSE_AUTOGRADER_WORKER_PYTHON": python}
    assert gradescope.main(env) == 0
    results = json.loads((container / "results" / "results.json").read_text())
    validate(results)
    assert results["extra_data"]["isolation"] == gradescope.ISOLATION_USER and results["score"] == 40
    assert "the jail did not start, grading as the unprivileged user" in capsys.readouterr().err
