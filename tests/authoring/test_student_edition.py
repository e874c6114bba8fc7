"""The leak test: the real student edition holds no answer, installs on its own and works.

Builds the edition from the real notebooks once, then:

- unpacks its wheel: no instructor-only module, the edition marker says "student", the
  expected outputs are there;
- scans every ``.py`` of the wheel, every code cell of the student notebooks and every code
  block of the slides for a statement of the answers (syntax trees, identifiers erased);
- releases again: byte-identical wheel and zip;
- installs the wheel alone in a fresh virtual environment (the libraries it needs come
  from this environment's site-packages, the instructor's ``bncourse`` does not) and, from
  outside the repository: runs every student notebook top to bottom with nothing filled
  in, checks the notebooks with the instructor's solutions pasted in (full marks), and runs
  the mutant catalogue against both editions (the same verdicts and diagnoses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bncourse.authoring import leaks, release, slides, student_package
from tests.paths import NOTEBOOKS_DIR, ROOT, notebook_params, require_notebook, require_notebooks
from tests.release_helpers import fill_solutions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def edition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_notebooks()
    start = time.perf_counter()
    out = release.build(tmp_path_factory.mktemp("edition") / "student", NOTEBOOKS_DIR)
    print(f"release took {time.perf_counter() - start:.1f} s")
    return out


def _wheel(edition: Path) -> Path:
    (whl,) = sorted((edition / "wheels").glob("*.whl"))
    return whl


def test_the_edition_is_self_contained(edition: Path) -> None:
    files = {p.relative_to(edition).as_posix() for p in edition.rglob("*") if p.is_file()}
    assert {"README.md", "Makefile", release.MANIFEST, f"wheels/{_wheel(edition).name}"} <= files
    assert {f"notebooks/{p.name}" for p in require_notebooks()} <= files
    readme, makefile = (edition / "README.md").read_text(), (edition / "Makefile").read_text()
    for text in (readme, makefile):
        assert "repository" not in text and "make student" not in text and "-e " not in text
    assert "make lab" in readme and "make check" in readme and _wheel(edition).name in makefile
    zipped = zipfile.ZipFile(release.zip_path(edition))
    assert sorted(zipped.namelist()) == sorted(f"student/{f}" for f in files)


def test_the_wheel_holds_no_instructor_module(edition: Path) -> None:
    names = zipfile.ZipFile(_wheel(edition)).namelist()
    package = [n for n in names if n.startswith("bncourse/")]
    assert not [n for n in package if student_package.is_instructor_only(n)]
    for gone in ("bncourse/reference/", "solutions.py", "mistakes.py", "bncourse/authoring/",
                 "bncourse/grading/grader.py", "bncourse/nn/from_scratch.py"):
        assert not [n for n in package if gone in n], gone
    for jail_side in ("sandbox.py", "confine.py", "jail.py"):  # what the grader's jail runs (no answer in it)
        assert f"bncourse/grading/{jail_side}" in names
    assert "bncourse/grading/expected_outputs.json" in names
    edition_py = zipfile.ZipFile(_wheel(edition)).read("bncourse/edition.py").decode()
    assert '= "student"' in edition_py


def test_no_statement_of_an_answer_in_the_wheel_the_notebooks_or_the_slides(edition: Path, tmp_path: Path) -> None:
    sources = require_notebooks()
    answers = release.answers(sources)
    assert len(answers) > 100  # the scanner has something to look for
    # positive control: the reference itself is full of answers
    assert len(leaks.find_leaks(answers, leaks.python_files(ROOT / "bncourse" / "reference"))) > 50
    code: list[tuple[str, str]] = []
    with zipfile.ZipFile(_wheel(edition)) as whl:
        code += [(n, whl.read(n).decode()) for n in whl.namelist() if n.endswith(".py")]
    for nb_path in sorted((edition / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        code += [(f"{nb_path.name} cell {i}", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    decks = 0
    for src in sources:
        deck = slides.render_deck(src, tmp_path)
        blocks = leaks.code_blocks_of_html(deck.html.read_text(encoding="utf-8"))
        assert blocks, deck.html
        code += [(f"{deck.html.name} block {i}", b) for i, b in enumerate(blocks)]
        decks += 1
    assert decks == len(sources)
    assert leaks.find_leaks(answers, code) == []


def test_releasing_twice_gives_byte_identical_wheel_and_zip(edition: Path, tmp_path: Path) -> None:
    again = release.build(tmp_path / "student", NOTEBOOKS_DIR)
    assert _wheel(again).read_bytes() == _wheel(edition).read_bytes()
    assert release.zip_path(again).read_bytes() == release.zip_path(edition).read_bytes()


# --------------------------------------------------------------------------- a fresh environment


@pytest.fixture(scope="session")
def student_python(edition: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the edition's wheel installed (libraries from this environment)."""
    venv = tmp_path_factory.mktemp("student-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # A plain path entry: the libraries are importable, but the .pth files in it (the
    # instructor's editable install of bncourse) are not processed.
    (site / "libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(site), str(_wheel(edition))], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import bncourse, bncourse.edition as e, importlib.util as u; "
         "print(bncourse.__file__, e.EDITION, u.find_spec('bncourse.reference'))"],
        check=True, capture_output=True, text=True, cwd=tmp_path_factory.getbasetemp(),
    ).stdout.split()
    assert probe == [str(site / "bncourse" / "__init__.py"), "student", "None"], probe
    return python


@pytest.fixture(scope="session")
def student_kernel(student_python: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    spec = tmp_path_factory.mktemp("jupyter") / "kernels" / "bncourse-student"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(student_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bncourse student edition", "language": "python",
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(spec.parent.parent), os.environ.get("JUPYTER_PATH", "")])
    return "bncourse-student"


def _outside(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path / "mpl"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    return env


@pytest.mark.notebooks
@pytest.mark.parametrize("path", notebook_params())
def test_every_student_notebook_runs_top_to_bottom_in_a_fresh_environment(
    path: Path, edition: Path, student_kernel: str, tmp_path: Path,
    record_property: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.authoring.test_release import _cells_by_tag, _errors, _text, execute

    path = require_notebook(path)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    nb = nbformat.read(edition / "notebooks" / path.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import bncourse, bncourse.edition\nprint(bncourse.__file__, bncourse.edition.EDITION)"))
    nb, seconds = execute(nb, edition / "notebooks", kernel_name=student_kernel)
    record_property("seconds", round(seconds, 1))
    print(f"{path.name}: Run All in the fresh environment took {seconds:.1f} s")
    assert _errors(nb) == []
    where, which = _text(nb.cells[-1]).split()
    assert which == "student" and not Path(where).is_relative_to(ROOT)
    for cell in _cells_by_tag(nb, "check"):
        assert "not implemented yet" in _text(cell) and "Traceback" not in _text(cell), cell.source
    for cell in nb.cells:
        if cell.cell_type == "code" and "best_available(" in cell.source:
            assert "using a stand-in computed by torch" in _text(cell), cell.source
    assert seconds < 240, f"{path.name}: student edition took {seconds:.1f} s (bar: 60 s)"


def test_pasted_solutions_get_full_marks_in_a_fresh_environment(
    edition: Path, student_python: Path, tmp_path: Path
) -> None:
    filled = tmp_path / "filled"
    filled.mkdir()
    for src in require_notebooks():
        student = nbformat.read(edition / "notebooks" / src.name, as_version=4)
        nbformat.write(fill_solutions(student, nbformat.read(src, as_version=4)), filled / src.name)
    done = subprocess.run([str(student_python), "-m", "bncourse", "check", str(filled)], cwd=tmp_path,
                          env=_outside(tmp_path), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    total = done.stdout.strip().splitlines()[-1]
    got, most = total.split()[1].split("/")
    assert got == most and int(most) >= 220, done.stdout
    assert "✗" not in done.stdout and "!" not in done.stdout, done.stdout


_VERDICTS = textwrap.dedent('''
    """Print the verdict of check() on every mutant and correct implementation, as JSON."""
    import importlib.util, json, sys, types
    from pathlib import Path

    root = Path(sys.argv[1])
    import bncourse
    if not importlib.util.find_spec("bncourse.reference"):
        # The backward mutants read the reference forward's cache, and the mutants of
        # notebook 04 import its batch norm passes: give the student build the instructor's
        # reference (and nothing else of it), installed like a library (under a
        # site-packages folder, so that check treats it as library code, not the student's).
        import shutil, tempfile
        lib = Path(tempfile.mkdtemp()) / "site-packages" / "reference"
        shutil.copytree(root / "bncourse" / "reference", lib)
        spec = importlib.util.spec_from_file_location(
            "bncourse.reference", lib / "__init__.py", submodule_search_locations=[str(lib)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["bncourse.reference"] = module
        spec.loader.exec_module(module)
    from bncourse.reference import (batchnorm_forward, groupnorm_forward, layernorm_forward,
                                    spatial_batchnorm_forward)
    from bncourse.grading import check
    ns = {"batchnorm_forward": batchnorm_forward, "layernorm_forward": layernorm_forward,
          "groupnorm_forward": groupnorm_forward, "spatial_batchnorm_forward": spatial_batchnorm_forward}
    out = []
    for path in sorted((root / "tests" / "lessons").glob("l[0-9][0-9]_*/mutants.py")):
        spec = importlib.util.spec_from_file_location("_m_" + path.parent.name, path)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        pairs = [(e, i) for e, _, i in getattr(m, "MUTANTS", [])] + list(getattr(m, "CORRECT", []))
        for ex, impl in pairs:
            r = check(ex, impl, verbose=False, namespace=ns)
            out.append([ex, impl.__qualname__, r.points, r.status, r.messages,
                        [[c.case, c.passed, c.message, c.diagnosis] for c in r.cases]])
    print(json.dumps(out))
''')


def test_the_mutant_catalogue_gets_the_same_verdicts_in_both_editions(
    student_python: Path, tmp_path: Path
) -> None:
    script = tmp_path / "verdicts.py"
    script.write_text(_VERDICTS)
    student = subprocess.run([str(student_python), str(script), str(ROOT)], cwd=tmp_path, env=_outside(tmp_path),
                             capture_output=True, text=True, timeout=600)
    assert student.returncode == 0, student.stderr[-3000:]
    instructor = subprocess.run([sys.executable, str(script), str(ROOT)], cwd=tmp_path, env=_outside(tmp_path),
                                capture_output=True, text=True, timeout=600)
    assert instructor.returncode == 0, instructor.stderr[-3000:]
    a, b = json.loads(student.stdout), json.loads(instructor.stdout)
    assert len(a) >= 150
    different = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert different == [], different[:5]


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", ["03_forward_backward", "06_bn_in_cnns", "07_alternatives_and_caveats"])
def test_a_student_who_solved_only_the_forwards_still_runs_every_experiment(
    stem: str, edition: Path, student_kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their forward passes, their backward is a stub: the experiments must use a pair that
    fits (best_pair / forward_for), never the stand-in backward on the student's cache."""
    from tests.authoring.test_release import _errors, _text, execute

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    student = nbformat.read(edition / "notebooks" / f"{stem}.ipynb", as_version=4)
    filled = fill_solutions(student, nbformat.read(NOTEBOOKS_DIR / f"{stem}.ipynb", as_version=4))
    stubs = {c.get("id"): c.source for c in student.cells}
    reverted = 0
    for cell in filled.cells:
        if "exercise" in cell.metadata.get("tags", []) and "backward" in cell.source.split("(")[0]:
            cell.source, reverted = stubs[cell.get("id")], reverted + 1
    assert reverted >= 1
    nb, _ = execute(filled, edition / "notebooks", kernel_name=student_kernel)
    assert _errors(nb) == []
    said = "".join(_text(c) for c in nb.cells)
    assert "(it passed its check)" in said  # the student's forward is used where it is used alone
    assert "computed by torch" in said      # and the stand-ins where a backward is needed
