"""``bncourse export --nbgrader DIR``: nbgrader source assignments, checked against nbgrader itself.

Fast tests read the export's cell metadata with nbgrader's own schema validator and strip it
with nbgrader's own ClearSolutions; the slow round trip runs ``nbgrader generate_assignment``
and ``nbgrader autograde`` (nbgrader's command line, a temporary course directory and sqlite
gradebook, Jupyter state in the temporary folder and build/, never $HOME) on notebook 03,
whose four exercises run in about 15 s per submission, experiments included.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bncourse import cli, notebook_file
from bncourse.authoring import nbgrader_export, release
from bncourse.errors import BNCourseError, NotebookError
from bncourse.grading.registry import exercises_for_notebook
from tests import release_helpers as rh
from tests.lab_helpers import lab_environment
from tests.paths import NOTEBOOKS_DIR, require_notebooks

ROUND_TRIP = "03_forward_backward"
"""Four exercises, numpy only, the whole notebook runs in ~10 s: the cheapest full autograde."""
WRONG = {  # two exercises made wrong in a student's copy: (exercise id, instructor line, wrong line)
    "batchnorm_backward_alt": ("dx = gamma * inv_std / m * (m * dout - dbeta - x_hat * dgamma)",
                               "dx = gamma * inv_std * dout"),  # μ and σ treated as constants
    "numerical_gradient": ("/ (2 * h)", "/ h"),  # one-sided step in a centered difference
}
NOISY = {  # right, but numpy warns on stderr while checked: nbgrader scores stderr in a test cell 0
    "batchnorm_forward": ("mu = x.mean(axis=0)",
                          "np.log(np.zeros(1)); mu = x.mean(axis=0)"),
}


def _nbgrader() -> Any:
    try:
        import nbgrader
    except ImportError:  # a dev dependency: `make test` installs it
        pytest.fail("nbgrader is not installed: it is a dev dependency (pip install -e '.[dev]', or make setup)")
    return nbgrader


def _nbgrader_meta(cell: Any) -> dict[str, Any]:
    return dict(cell.metadata["nbgrader"])


def _export_one(tmp_path: Path, stem: str) -> Any:
    [path] = nbgrader_export.export(tmp_path / "export", NOTEBOOKS_DIR, [stem])
    assert path == tmp_path / "export" / "source" / stem / f"{stem}.ipynb"
    return notebook_file.read(path)


# --------------------------------------------------------------------------- the metadata


def test_every_course_notebook_exports_with_valid_nbgrader_metadata(tmp_path: Path) -> None:
    _nbgrader()
    from nbgrader.nbgraderformat import MetadataValidator

    notebooks = require_notebooks()
    written = nbgrader_export.export(tmp_path / "export", NOTEBOOKS_DIR)
    assert [p.parent.name for p in written] == [p.stem for p in notebooks]
    validator = MetadataValidator()
    for path, source_path in zip(written, notebooks, strict=True):
        stem = source_path.stem
        nb = notebook_file.read(path)
        validator.validate_nb(nb)  # nbgrader's schema v3 check, plus unique grade ids
        instructor = notebook_file.read(source_path)
        assert len(nb.cells) == len(release.kept_cells(instructor))  # no instructor cells, no speaker notes
        assert not any(c.get("metadata", {}).get("slideshow", {}).get("slide_type") == "notes" for c in nb.cells)
        assert nb.metadata["bncourse"] == {"notebook": stem, "edition": "nbgrader"}
        exercises = {e.id: e for e in exercises_for_notebook(stem)}
        solutions, tests, locked = [], [], []
        for cell in nb.cells:
            meta = _nbgrader_meta(cell)
            assert meta["schema_version"] == 3
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
            if meta["solution"]:
                assert (meta["grade"], meta["locked"], "exercise" in cell.metadata["tags"]) == (False, False, True)
                assert release.BEGIN in cell.source and release.END in cell.source
                solutions.append(meta["grade_id"])
            elif meta["grade"]:
                exercise = exercises[meta["grade_id"].removeprefix("test-")]
                assert meta["locked"] and meta["points"] == exercise.points
                assert f'    check("{exercise.id}", {exercise.name}, strict=True)' in cell.source.splitlines()
                compile(cell.source, "<test cell>", "exec")
                tests.append(exercise.id)
            else:
                assert meta["locked"] and meta["grade_id"].startswith("cell-")
                locked.append(cell.cell_type)
        assert sorted(solutions) == sorted(tests) == sorted(exercises), stem
        assert "markdown" in locked and "code" in locked  # the prose and the imports/experiments


def test_nbgraders_clear_solutions_keeps_the_hint_and_leaves_no_answer(tmp_path: Path) -> None:
    _nbgrader()
    from nbgrader.preprocessors import ClearSolutions

    require_notebooks()
    source = _export_one(tmp_path, ROUND_TRIP)
    student, _ = ClearSolutions().preprocess(copy.deepcopy(source), {})
    instructor = notebook_file.read(NOTEBOOKS_DIR / f"{ROUND_TRIP}.ipynb")
    assert rh.leaked_lines(instructor, student) == []
    for before, after in zip(source.cells, student.cells, strict=True):
        if not _nbgrader_meta(before)["solution"]:
            assert after.source == before.source
            continue
        hints = [ln for ln in before.source.splitlines() if ln.lstrip().startswith(release.HINT)]
        assert hints and all(h in after.source.splitlines() for h in hints)
        assert "raise NotImplementedError()" in after.source and "SOLUTION" not in after.source
        compile(after.source, "<student cell>", "exec")


def test_a_hint_inside_a_block_moves_above_it() -> None:
    source = ("def f(x):\n    ### BEGIN SOLUTION\n    ### HINT: square it.\n    y = x * x\n    return y\n"
              "    ### END SOLUTION\n")
    moved = nbgrader_export.hints_outside_blocks(source)
    assert moved == ("def f(x):\n    ### HINT: square it.\n    ### BEGIN SOLUTION\n    y = x * x\n    return y\n"
                     "    ### END SOLUTION\n")
    assert nbgrader_export.hints_outside_blocks(moved) == moved  # already outside: unchanged


def test_the_synthetic_notebook_drops_the_instructor_cell(tmp_path: Path) -> None:
    with rh.synthetic_exercises_registered():
        exported = nbgrader_export.nbgrader_notebook(rh.instructor_notebook(), rh.STEM)
    text = json.dumps(exported)
    assert rh.INSTRUCTOR_SECRET not in text and "instructor only" not in text
    grade_ids = [_nbgrader_meta(c)["grade_id"] for c in exported.cells]
    assert {rh.FN_ID, rh.CLS_ID, f"test-{rh.FN_ID}", f"test-{rh.CLS_ID}"} <= set(grade_ids)
    assert len(grade_ids) == len(set(grade_ids))


def test_the_exporter_stays_out_of_the_student_build_and_strict_check_ships() -> None:
    from bncourse.authoring import student_package

    files = student_package.package_files(expected_outputs=False)
    assert "bncourse/authoring/nbgrader_export.py" not in files
    assert b"strict: bool = False" in files["bncourse/grading/check.py"]  # released test cells call it
    assert b"class CheckFailedError" in files["bncourse/errors.py"]


# --------------------------------------------------------------------------- bad input


def _course_copy(tmp_path: Path, edit: Any = None) -> Path:
    """A notebooks folder holding a copy of the synthetic notebook, ``edit(nb)`` applied."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = rh.instructor_notebook()
    if edit is not None:
        edit(nb)
    rh.write(nb, folder / f"{rh.STEM}.ipynb")
    return folder


def _exercise_cell(nb: Any) -> int:
    return next(i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", []))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda nb: setattr(nb.cells[_exercise_cell(nb)], "source", rh.without_markers(nb.cells[_exercise_cell(nb)].source)),
     r"98_synthetic\.ipynb: cannot export to nbgrader: cell 4: exercise cell has no '### BEGIN SOLUTION'"),
    (lambda nb: nb.cells.__setitem__(2, nbformat.v4.new_markdown_cell("Write it between BEGIN SOLUTION and END SOLUTION.")),
     r"cell 3: line 1: .* contains 'BEGIN SOLUTION', which nbgrader reads as a delimiter"),
    (lambda nb: setattr(nb.cells[4], "source", f'check("{rh.FN_ID}", {rh.FN_NAME})\nprint("extra")'),
     r"cell 5: a check cell must hold only check\(\"<id>\", <function>\) calls, found 'print\(\"extra\"\)'"),
    (lambda nb: setattr(nb.cells[4], "source", f"check(\"no_such_id\", {rh.FN_NAME})"),
     r"cell 5: a check cell must check exactly one exercise of 98_synthetic, found \['no_such_id'\]"),
    (lambda nb: nb.cells.pop(7),
     rf"{rh.CLS_ID} has no check cell"),
], ids=["no-markers", "delimiter-in-prose", "code-in-check-cell", "unknown-exercise", "no-check-cell"])
def test_bad_notebooks_name_the_cell_and_write_nothing(tmp_path: Path, edit: Any, message: str) -> None:
    notebooks = _course_copy(tmp_path, edit)
    out = tmp_path / "export"
    with rh.synthetic_exercises_registered(), pytest.raises(NotebookError, match=message):
        nbgrader_export.export(out, notebooks)
    assert not out.exists()


def test_a_non_empty_folder_is_refused_without_force_and_only_the_export_changes_with_it(tmp_path: Path) -> None:
    notebooks = _course_copy(tmp_path)
    course = tmp_path / "course"
    (course / "source" / rh.STEM).mkdir(parents=True)
    gradebook = course / "gradebook.db"
    gradebook.write_bytes(b"the course's grades")
    stale = course / "source" / rh.STEM / f"{rh.STEM}.ipynb"
    stale.write_text("an older export")
    with rh.synthetic_exercises_registered():
        with pytest.raises(BNCourseError, match=r"is not empty \(gradebook\.db, source\).*--force"):
            nbgrader_export.export(course, notebooks)
        assert stale.read_text() == "an older export"  # nothing written
        [written] = nbgrader_export.export(course, notebooks, force=True)
    assert written == stale and notebook_file.read(written).metadata["bncourse"]["edition"] == "nbgrader"
    assert gradebook.read_bytes() == b"the course's grades"
    assert sorted(p.relative_to(course).as_posix() for p in course.rglob("*")) == [
        "gradebook.db", "source", f"source/{rh.STEM}", f"source/{rh.STEM}/{rh.STEM}.ipynb"]


def test_refuses_a_folder_inside_the_notebooks_and_unknown_notebooks(tmp_path: Path) -> None:
    notebooks = _course_copy(tmp_path)
    with pytest.raises(BNCourseError, match="inside the instructor notebooks folder"):
        nbgrader_export.export(notebooks / "nbgrader", notebooks)
    with pytest.raises(NotebookError, match=r"no notebook 42_nothing in .*there are: 98_synthetic"):
        nbgrader_export.export(tmp_path / "out", notebooks, ["42_nothing"])


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebooks = _course_copy(tmp_path)
    out = tmp_path / "export"
    with rh.synthetic_exercises_registered():
        assert cli.main(["export", "--nbgrader", str(out), "--notebooks", str(notebooks)]) == 0
        assert f"source/{rh.STEM}/{rh.STEM}.ipynb" in capsys.readouterr().out
        assert cli.main(["export", "--nbgrader", str(out), "--notebooks", str(notebooks)]) == 2
        assert "is not empty" in capsys.readouterr().err
        assert cli.main(["export", "--nbgrader", str(out), "--notebooks", str(notebooks), "--force",
                         rh.STEM]) == 0
    with pytest.raises(SystemExit):
        cli.main(["export", "--notebooks", str(notebooks)])  # --nbgrader DIR is required


# --------------------------------------------------------------------------- nbgrader itself


def _run_nbgrader(course: Path, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "[ERROR]" not in proc.stderr and "| ERROR]" not in proc.stderr, proc.stderr


def _submission(released: Any, source: Any, wrong: dict[str, tuple[str, str]]) -> Any:
    """The released notebook filled in with the instructor's solutions, ``wrong`` edits applied."""
    filled = rh.fill_solutions(released, source)
    for cell in filled.cells:
        exercise_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and exercise_id in wrong:
            right, bad = wrong[exercise_id]
            assert right in cell.source, f"{exercise_id}: {right!r} is not in the solution any more"
            cell.source = cell.source.replace(right, bad)
    return filled


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_nbgrader_generate_assignment_and_autograde_round_trip(tmp_path: Path) -> None:
    _nbgrader()
    from nbgrader.api import Gradebook

    require_notebooks()
    course = tmp_path / "course"
    nbgrader_export.export(course, NOTEBOOKS_DIR, [ROUND_TRIP])
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.CourseDirectory.course_id = 'bncourse'\n"
        f"c.CourseDirectory.db_url = {db_url!r}\n"
        "c.Execute.timeout = 120\n"  # per cell, as the README advises (nbgrader's default: 30 s)
    )
    home = tmp_path / "home"
    home.mkdir()
    env = lab_environment(tmp_path / "jupyter-runtime")  # Jupyter/IPython/matplotlib state in build/ and tmp
    env.update({
        "HOME": str(home),  # whatever else would write to $HOME writes here
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # nbgrader runs `alembic`
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(cli.__file__).resolve().parents[1]),
                                                    env.get("PYTHONPATH")])),  # the kernel imports this bncourse
    })
    started = time.perf_counter()
    _run_nbgrader(course, env, "generate_assignment", ROUND_TRIP)

    released_path = course / "release" / ROUND_TRIP / f"{ROUND_TRIP}.ipynb"
    released = notebook_file.read(released_path)
    instructor_path = NOTEBOOKS_DIR / f"{ROUND_TRIP}.ipynb"
    instructor = notebook_file.read(instructor_path)
    # what students get holds no solution: no marker, no line of a solution block, no statement of an answer
    assert "SOLUTION" not in released_path.read_text(encoding="utf-8")
    assert rh.leaked_lines(instructor, released) == []
    assert release.edition_leaks(release.answers([instructor_path]), {released_path.name: released}, {}) == []
    assert sum(cell.source.count("raise NotImplementedError()") for cell in released.cells) == len(
        release.solution_sources([instructor_path]))

    source = notebook_file.read(course / "source" / ROUND_TRIP / f"{ROUND_TRIP}.ipynb")
    for student, edits in (("honest", {}), ("two_wrong", {**WRONG, **NOISY})):
        folder = course / "submitted" / student / ROUND_TRIP
        folder.mkdir(parents=True)
        rh.write(_submission(released, source, edits), folder / f"{ROUND_TRIP}.ipynb")
    _run_nbgrader(course, env, "autograde", ROUND_TRIP)
    seconds = time.perf_counter() - started

    points = {e.id: e.points for e in exercises_for_notebook(ROUND_TRIP)}
    assert set(WRONG) <= set(points) and len(points) > len(WRONG)
    with Gradebook(db_url) as gb:
        for student, wrong in (("honest", {}), ("two_wrong", WRONG)):
            submission = gb.find_submission(ROUND_TRIP, student)
            assert submission.max_score == sum(points.values())
            assert submission.score == sum(p for e, p in points.items() if e not in wrong), student
            notebook = gb.find_submission_notebook(ROUND_TRIP, ROUND_TRIP, student)
            assert {g.name: g.auto_score for g in notebook.grades} == {
                f"test-{e}": (0.0 if e in wrong else float(p)) for e, p in points.items()}
    graded = notebook_file.read(course / "autograded" / "two_wrong" / ROUND_TRIP / f"{ROUND_TRIP}.ipynb")
    errors = {c.metadata["nbgrader"]["grade_id"]: o for c in graded.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"}
    assert set(errors) == {f"test-{e}" for e in WRONG}  # no other cell failed, experiments included
    assert all(o.ename == "CheckFailedError" and "cases passed" in o.evalue for o in errors.values())
    [noisy] = [c for c in graded.cells if c.metadata["nbgrader"]["grade_id"] == "test-batchnorm_forward"]
    assert "RuntimeWarning: divide by zero encountered in log" in "".join(o.get("text", "") for o in noisy.outputs if o.get("name") == "stdout")
    assert not any(o.get("name") == "stderr" for o in noisy.outputs)

    # nbgrader's submitted/ folder is also what `bncourse grade` reads (students by folder, the
    # notebook by its metadata): the same verdicts (its scores give partial credit per case)
    from bncourse.grading import grader

    grader.grade_class([course / "submitted"], tmp_path / "grades", timeout=120)
    with (tmp_path / "grades" / "grades.csv").open(newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["honest", "two_wrong"]
    for student, wrong in (("honest", {}), ("two_wrong", WRONG)):
        for e, p in points.items():
            assert (float(rows[student][e]) < p) == (e in wrong), (student, e, rows[student][e])
    print(f"nbgrader generate_assignment + autograde of 2 submissions: {seconds:.1f} s")
