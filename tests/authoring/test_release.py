"""``bncourse release``: the student edition strips solutions with no leak, keeps the rest,
starts at 0 points, round-trips to full points, runs top to bottom, and never overwrites a
student's work.

Unit tests use the synthetic notebook of ``release_helpers`` (no dependency on the course
notebooks); the tests at the end run over the real ``notebooks/*.ipynb`` that exist.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bncourse.authoring import release, student_package
from bncourse.cli import main
from bncourse.errors import BNCourseError, NotebookError
from bncourse.grading import check
from tests.paths import (
    COURSE_NOTEBOOKS,
    NOTEBOOKS_DIR,
    ROOT,
    notebook_params,
    require_notebook,
    require_notebooks,
)
from tests.release_helpers import (
    CLS_ID,
    CLS_NAME,
    CLS_SOURCE,
    FN_ID,
    FN_NAME,
    FN_SOURCE,
    INSTRUCTOR_SECRET,
    SOLUTION_LINES,
    STEM,
    execute,
    fill_solutions,
    instructor_notebook,
    leaked_lines,
    synthetic_exercises_registered,
    without_markers,
    write,
)

REAL_NOTEBOOKS = COURSE_NOTEBOOKS
NB_NAME = f"notebooks/{STEM}.ipynb"


@pytest.fixture
def synthetic_registered() -> Iterator[None]:
    with synthetic_exercises_registered():
        yield


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    d = tmp_path / "notebooks"
    d.mkdir()
    write(instructor_notebook(), d / f"{STEM}.ipynb")
    return d


def _cells_by_tag(nb: Any, tag: str) -> list[Any]:
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------- stripping


def test_strip_replaces_block_with_raise_and_keeps_everything_outside() -> None:
    stripped = release.strip_solutions(FN_SOURCE)
    lines = stripped.splitlines()
    raise_line = '    raise NotImplementedError("Hint: square elementwise, then add everything up.")'
    assert raise_line in lines
    kept = [ln for ln in FN_SOURCE.splitlines() if ln.strip() not in [*SOLUTION_LINES, "return total"]
            and "SOLUTION" not in ln]
    assert [ln for ln in lines if ln != raise_line] == kept  # signature, docstring, hint comment, in order
    for sol in [*SOLUTION_LINES[:2], "return total"]:
        assert sol not in stripped


def test_strip_handles_several_blocks_at_method_indentation_without_hint() -> None:
    stripped = release.strip_solutions(CLS_SOURCE)
    raises = [ln for ln in stripped.splitlines() if "NotImplementedError" in ln]
    assert raises == [f'        raise NotImplementedError("{release.NO_HINT_MESSAGE}")'] * 2
    assert "        return self.n" in stripped.splitlines()  # outside the markers: stays
    tree = ast.parse(stripped)
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef) and [f.name for f in cls.body if isinstance(f, ast.FunctionDef)] == [
        "__init__", "step"]


def test_hint_with_quotes_and_backslash_becomes_a_valid_literal() -> None:
    hint = 'divide by "N" (not N-1) \\ see ε'
    src = f"def f(x):\n    ### HINT: {hint}\n    ### BEGIN SOLUTION\n    return x * 2\n    ### END SOLUTION\n"
    stripped = release.strip_solutions(src)
    call = ast.parse(stripped).body[0].body[-1]  # type: ignore[attr-defined]
    assert isinstance(call, ast.Raise)
    assert ast.literal_eval(call.exc.args[0]) == f"Hint: {hint}"  # type: ignore[union-attr]
    assert stripped.endswith("\n")


BAD_SOURCES = {
    "unclosed": ("def f(x):\n    ### BEGIN SOLUTION\n    return x\n", "never closed"),
    "end without begin": ("def f(x):\n    return x\n    ### END SOLUTION\n", "without"),
    "nested": ("def f(x):\n    ### BEGIN SOLUTION\n    y = x\n    ### BEGIN SOLUTION\n"
               "    return y\n    ### END SOLUTION\n", "inside the block"),
    "two hashes": ("def f(x):\n    ## BEGIN SOLUTION\n    return x\n    ## END SOLUTION\n", "malformed"),
    "lower case": ("def f(x):\n    ### begin solution\n    return x\n    ### end solution\n", "malformed"),
    "no space": ("def f(x):\n    ###BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n", "malformed"),
    "trailing text": ("def f(x):\n    ### BEGIN SOLUTION here\n    return x\n    ### END SOLUTION\n", "malformed"),
    "indent mismatch": ("def f(x):\n    ### BEGIN SOLUTION\n    return x\n### END SOLUTION\n", "indented"),
    "empty block": ("def f(x):\n    ### BEGIN SOLUTION\n\n    ### END SOLUTION\n", "empty"),
    "dangling hint": ("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
                      "    ### HINT: late\n", "belongs to no block"),
    "two hints": ("def f(x):\n    ### HINT: one\n    ### HINT: two\n    ### BEGIN SOLUTION\n"
                  "    return x\n    ### END SOLUTION\n", "one '### HINT:' line"),
    "malformed hint": ("def f(x):\n    ### Hint - do it\n    ### BEGIN SOLUTION\n    return x\n"
                       "    ### END SOLUTION\n", "malformed hint"),
    "code hint": ("def f(x):\n    ### HINT: y = x.mean(axis=0)\n    ### BEGIN SOLUTION\n    return x\n"
                  "    ### END SOLUTION\n", "Python code"),
    "hint leaks a line": ("def f(x):\n    ### HINT: just write total = x.sum() then return it\n"
                          "    ### BEGIN SOLUTION\n    total = x.sum()\n    return total\n"
                          "    ### END SOLUTION\n", "contains the solution line 'total = x.sum()'"),
}


@pytest.mark.parametrize("kind", sorted(BAD_SOURCES))
def test_malformed_markers_and_hints_stop_the_release(kind: str) -> None:
    source, message = BAD_SOURCES[kind]
    nb = instructor_notebook()
    _cells_by_tag(nb, "exercise")[0].source = source
    with pytest.raises(NotebookError, match=re.escape(message)) as info:
        release.student_notebook(nb, name="x.ipynb")
    assert "x.ipynb: refusing to release" in str(info.value) and "cell 4" in str(info.value)


@pytest.mark.parametrize("cell_index", [2, 5])  # a markdown cell and an experiment code cell
def test_markers_outside_exercise_cells_stop_the_release(cell_index: int) -> None:
    nb = instructor_notebook()
    nb.cells[cell_index].source += "\n### BEGIN SOLUTION\nsecret = 1\n### END SOLUTION"
    with pytest.raises(NotebookError, match=f"cell {cell_index + 1}: solution marker or hint outside"):
        release.student_notebook(nb)


def test_definition_inside_the_markers_stops_the_release() -> None:
    nb = instructor_notebook()
    _cells_by_tag(nb, "exercise")[0].source = "### BEGIN SOLUTION\ndef f(x):\n    return x\n### END SOLUTION"
    with pytest.raises(NotebookError, match=r"defines \['f'\] but its student version defines \[\]"):
        release.student_notebook(nb)


# --------------------------------------------------------------------------- one notebook


def test_student_notebook_drops_instructor_cells_clears_outputs_and_keeps_the_rest() -> None:
    inst = instructor_notebook()
    inst.metadata["kernelspec"]["argv"] = ["/home/prof/.venv/bin/python", "-m", "ipykernel"]
    inst.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    student = release.student_notebook(inst)
    nbformat.validate(student)
    kept = [c for c in inst.cells if "instructor" not in c.metadata.get("tags", [])]
    assert [c.id for c in student.cells] == [c.id for c in kept]
    assert INSTRUCTOR_SECRET not in json.dumps(student)
    for s, i in zip(student.cells, kept, strict=True):
        assert s.metadata.get("tags") == i.metadata.get("tags")
        assert s.metadata["slideshow"] == i.metadata["slideshow"]
        assert "execution" not in s.metadata
        if s.cell_type == "code":
            assert s.outputs == [] and s.execution_count is None
            if "exercise" not in s.metadata.get("tags", []):
                assert s.source == i.source
        else:
            assert s.source == i.source  # markdown, including the <details> answer
    assert "<details><summary>Answer</summary>14</details>" in student.cells[-2].source
    assert student.metadata == {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python", "version": "3.11.7"},
    }
    assert inst.cells[4].outputs, "the instructor notebook itself must not be modified"


def test_synthetic_student_edition_does_not_leak_and_the_leak_rule_can_fail() -> None:
    inst = instructor_notebook()
    student = release.student_notebook(inst)
    assert leaked_lines(inst, student) == []
    text = json.dumps(student)
    for line in SOLUTION_LINES:
        assert line not in text
    # the rule itself catches a leak: the instructor notebook "released" as is, or one line put back
    assert set(leaked_lines(inst, inst)) >= set(SOLUTION_LINES)
    student.cells[2].source += "\n```python\ntotal = float(squares.sum())\n```"
    assert leaked_lines(inst, student) == ["total = float(squares.sum())"]


def _run_exercises(nb: Any) -> dict[str, Any]:
    """Execute the imports and exercise cells of ``nb`` in a fresh namespace, as the grader does."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "imports" in tags or "exercise" in tags:
            exec(compile(cell.source, "<cell>", "exec"), ns)
    return ns


@pytest.mark.usefixtures("synthetic_registered")
def test_student_edition_starts_at_zero_points() -> None:
    student = release.student_notebook(instructor_notebook())
    ns = _run_exercises(student)
    for ex_id, name in [(FN_ID, FN_NAME), (CLS_ID, CLS_NAME)]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            result = check(ex_id, ns[name])
        assert result.status == "not_implemented" and result.points == 0 and not result.passed
        assert "not implemented yet" in buf.getvalue() and "Traceback" not in buf.getvalue()


@pytest.mark.usefixtures("synthetic_registered")
def test_round_trip_filled_student_edition_gets_full_points() -> None:
    inst = instructor_notebook()
    filled = fill_solutions(release.student_notebook(inst), inst)
    for f, i in zip(_cells_by_tag(filled, "exercise"), _cells_by_tag(inst, "exercise"), strict=True):
        assert f.source == without_markers(i.source)  # nothing else of the cell was changed
    ns = _run_exercises(filled)
    for ex_id, name in [(FN_ID, FN_NAME), (CLS_ID, CLS_NAME)]:
        result = check(ex_id, ns[name], verbose=False)
        assert result.passed and result.points == result.max_points, result


# --------------------------------------------------------------------------- the edition


def test_build_writes_notebooks_readme_and_a_manifest(source_dir: Path, tmp_path: Path) -> None:
    out = release.build(tmp_path / "student", source_dir)
    files = _tree_hashes(out)
    wheel = f"wheels/{student_package.wheel_name()}"
    assert sorted(files) == sorted([release.MANIFEST, "Makefile", "README.md", NB_NAME, wheel])
    assert release.zip_path(out).is_file()
    manifest = json.loads((out / release.MANIFEST).read_text())
    assert manifest["files"] == {k: v for k, v in files.items() if k != release.MANIFEST}
    nb = nbformat.read(out / NB_NAME, as_version=4)
    nbformat.validate(nb)
    assert leaked_lines(instructor_notebook(), nb) == []
    readme = (out / "README.md").read_text()
    assert f"`{NB_NAME}` — 98 — Synthetic" in readme
    assert "make lab" in readme and "make check" in readme and student_package.wheel_name() in readme
    assert "repository" not in readme and "pip install -e" not in readme and not re.search(r"\$\w", readme)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".student")], "temp folders left behind"
    assert (out.stat().st_mode & 0o777) == 0o755
    assert nb.metadata["bncourse"] == {"notebook": STEM, "edition": "student"}


def test_build_is_deterministic_and_rebuilds_an_unmodified_release(source_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    release.build(out, source_dir)
    first = _tree_hashes(out)
    (out / NB_NAME).unlink()  # a deleted file is nothing lost
    release.build(out, source_dir)
    assert _tree_hashes(out) == first


def test_refuses_to_overwrite_a_modified_notebook_and_force_does(source_dir: Path, tmp_path: Path) -> None:
    out = release.build(tmp_path / "student", source_dir)
    original = (out / NB_NAME).read_bytes()
    nb = nbformat.read(out / NB_NAME, as_version=4)
    _cells_by_tag(nb, "exercise")[0].source = "def sum_of_squares(x):\n    return 0.0  # my attempt"
    write(nb, out / NB_NAME)
    work = (out / NB_NAME).read_bytes()
    with pytest.raises(BNCourseError, match=re.escape(NB_NAME)):
        release.build(out, source_dir)
    assert (out / NB_NAME).read_bytes() == work, "the student's work was touched"
    release.build(out, source_dir, force=True)
    assert (out / NB_NAME).read_bytes() == original


@pytest.mark.parametrize("extra", ["notebooks/my_notes.ipynb", "notebooks/.ipynb_checkpoints/x-checkpoint.ipynb"])
def test_refuses_when_unknown_files_were_added(source_dir: Path, tmp_path: Path, extra: str) -> None:
    out = release.build(tmp_path / "student", source_dir)
    (out / extra).parent.mkdir(parents=True, exist_ok=True)
    (out / extra).write_text("{}")
    with pytest.raises(BNCourseError, match=re.escape(extra)):
        release.build(out, source_dir)
    assert (out / extra).exists()
    release.build(out, source_dir, force=True)
    assert not (out / extra).exists()


def test_folder_without_manifest(source_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    out.mkdir()
    release.build(out, source_dir)  # an empty folder is fine
    (out / release.MANIFEST).unlink()
    with pytest.raises(BNCourseError, match=re.escape("README.md")):
        release.build(out, source_dir)
    (out / release.MANIFEST).write_text("not json")
    with pytest.raises(BNCourseError, match=re.escape("README.md")):
        release.build(out, source_dir)
    release.build(out, source_dir, force=True)
    assert (out / release.MANIFEST).is_file()


def test_never_replaces_the_sources_or_a_repository_even_with_force(source_dir: Path, tmp_path: Path) -> None:
    for out in (source_dir, tmp_path, source_dir / "student", Path.cwd()):
        with pytest.raises(BNCourseError):
            release.build(out, source_dir, force=True)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    with pytest.raises(BNCourseError, match=re.escape(".git")):
        release.build(repo, source_dir, force=True)
    assert (source_dir / f"{STEM}.ipynb").is_file() and (repo / ".git").is_dir()


def test_a_failed_build_leaves_the_previous_release_untouched(
    source_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = release.build(tmp_path / "student", source_dir)
    before = _tree_hashes(out)
    bad = instructor_notebook()
    _cells_by_tag(bad, "exercise")[1].source = CLS_SOURCE.replace("### END SOLUTION\n        return", "return", 1)
    write(bad, source_dir / "99_broken.ipynb")
    with pytest.raises(NotebookError, match=re.escape("99_broken.ipynb")):
        release.build(out, source_dir)
    (source_dir / "99_broken.ipynb").unlink()

    def boom(listing: list[tuple[str, str]], wheel: str) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(release, "_render_readme", boom)
    with pytest.raises(OSError, match="disk full"):
        release.build(out, source_dir, force=True)
    assert _tree_hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "student", "student.zip"], "temp folders left behind"


def test_a_save_during_the_build_is_not_overwritten(
    source_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = release.build(tmp_path / "student", source_dir)
    write_edition = release._write_edition

    def save_meanwhile(root: Path, notebooks_dir: Path, sources: list[Path]) -> dict[str, str]:
        (out / NB_NAME).write_text("{}  ")  # the student presses save while the edition is being built
        return write_edition(root, notebooks_dir, sources)

    monkeypatch.setattr(release, "_write_edition", save_meanwhile)
    with pytest.raises(BNCourseError, match=re.escape(NB_NAME)):
        release.build(out, source_dir)
    assert (out / NB_NAME).read_text() == "{}  "
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "student", "student.zip"]


def test_local_images_are_copied_and_missing_ones_stop_the_release(source_dir: Path, tmp_path: Path) -> None:
    nb = instructor_notebook()
    nb.cells[2].source += '\n\n![curve](figures/curve.png) <img src="figures/b.svg" width=3> ![web](https://x.org/a.png)'
    write(nb, source_dir / f"{STEM}.ipynb")
    (source_dir / "figures").mkdir()
    (source_dir / "figures" / "curve.png").write_bytes(b"\x89PNG")
    with pytest.raises(NotebookError, match=re.escape("'figures/b.svg' does not exist")):
        release.build(tmp_path / "student", source_dir)
    (source_dir / "figures" / "b.svg").write_text("<svg/>")
    out = release.build(tmp_path / "student", source_dir)
    assert (out / "notebooks/figures/curve.png").read_bytes() == b"\x89PNG"
    assert "notebooks/figures/b.svg" in json.loads((out / release.MANIFEST).read_text())["files"]


def test_no_notebooks_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotebookError, match="no notebooks"):
        release.build(tmp_path / "student", tmp_path / "empty")
    with pytest.raises(NotebookError, match="no instructor notebooks folder"):
        release.build(tmp_path / "student", tmp_path / "missing")


def test_cli_release_refuses_with_exit_status_2_and_names_the_file(
    source_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "student"
    args = ["release", "--out", str(out), "--notebooks", str(source_dir)]
    assert main(args) == 0
    (out / "README.md").write_text("my notes")
    assert main(args) == 2
    assert "README.md" in capsys.readouterr().err
    assert (out / "README.md").read_text() == "my notes"
    assert main([*args, "--force"]) == 0
    assert (out / "README.md").read_text() != "my notes"


# --------------------------------------------------------------------------- kernels


def _text(cell: Any) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
        else:
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def _errors(nb: Any) -> list[str]:
    return [f"cell {i + 1}: {o.ename}: {o.evalue}" for i, c in enumerate(nb.cells)
            for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.slow
def test_synthetic_student_edition_runs_top_to_bottom_from_its_folder(source_dir: Path, tmp_path: Path) -> None:
    out = release.build(tmp_path / "student", source_dir)
    nb = nbformat.read(out / NB_NAME, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import bncourse\nprint(bncourse.__file__)"))
    nb, _ = execute(nb, out / "notebooks")
    assert _errors(nb) == []
    checks = _cells_by_tag(nb, "check")
    assert len(checks) == 2 and all("not implemented yet" in _text(c) for c in checks)
    assert not any("Traceback" in _text(c) for c in checks)
    assert f"[{FN_ID}] using a stand-in computed by torch" in _text(nb.cells[5])
    assert "14.0" in _text(nb.cells[5])  # the experiment still ran, with the reference
    assert Path(_text(nb.cells[-1]).strip()) == ROOT / "bncourse" / "__init__.py"


# --------------------------------------------------------------------------- the real notebooks

_real = pytest.mark.parametrize(
    "path",
    notebook_params(),
)


@pytest.fixture(scope="session")
def real_editions(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    """Each real notebook's student edition, built alone (one bad notebook fails only its tests)."""
    return {}


@pytest.fixture
def real_edition(path: Path, real_editions: dict[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = require_notebook(path)
    if path not in real_editions:
        src = tmp_path_factory.mktemp(f"src-{path.stem}") / "notebooks"
        src.mkdir()
        (src / path.name).symlink_to(path.resolve())
        for ref in release.local_images(nbformat.read(path, as_version=4)):
            (src / ref).parent.mkdir(parents=True, exist_ok=True)
            (src / ref).symlink_to((path.parent / ref).resolve())
        real_editions[path] = release.build(src.parent / "student", src)
    return real_editions[path]


def _student(edition: Path, path: Path) -> Any:
    return nbformat.read(edition / "notebooks" / path.name, as_version=4)


def test_real_release_builds_the_whole_edition(tmp_path: Path) -> None:
    """What `make student` does: every notebook, the README, the Makefile, the wheel and the manifest, nothing else."""
    require_notebooks()
    out = release.build(tmp_path / "student", NOTEBOOKS_DIR)
    manifest = json.loads((out / release.MANIFEST).read_text())["files"]
    notebooks = {f"notebooks/{p.name}" for p in REAL_NOTEBOOKS}
    top = {"README.md", "Makefile", f"wheels/{student_package.wheel_name()}"}
    assert notebooks | top <= set(manifest)
    assert all(k.startswith("notebooks/") for k in set(manifest) - notebooks - top)
    readme = (out / "README.md").read_text()
    assert all(p.name in readme for p in REAL_NOTEBOOKS)


@_real
def test_real_notebook_no_leak(path: Path, real_edition: Path) -> None:
    inst = nbformat.read(path, as_version=4)
    student = _student(real_edition, path)
    assert leaked_lines(inst, student) == []
    n_ex = len(_cells_by_tag(inst, "exercise"))
    assert len(_cells_by_tag(student, "exercise")) == n_ex
    assert not _cells_by_tag(student, "instructor")
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None
               for c in student.cells if c.cell_type == "code")
    nbformat.validate(student)


def _grade(nb: Any, tmp_path: Path, name: str) -> dict[str, list[Any]]:
    """Exercise id -> [points, max_points, status] of ``nb`` graded as a submission.

    With the class grader (``bncourse.grading.grader.grade_class``): only the imports and
    exercise cells run, sandboxed.  Without it: the same cells in a kernel, then ``check``.
    """
    try:
        from bncourse.grading.grader import grade_class
    except ImportError:
        grade_class = None
    if grade_class is not None:
        sub = tmp_path / "submissions" / "student"
        sub.mkdir(parents=True)
        write(nb, sub / name)
        grade_class([sub.parent], out=tmp_path / "grades", jobs=1, timeout=120, regrade=True)
        (record,) = json.loads((tmp_path / "grades" / "report.json").read_text())["submissions"]
        assert record["errors"] == [] and record["cell_errors"] == [], record
        return {r["exercise"]: [r["points"], r["max_points"], r["status"]] for r in record["results"]}
    pairs = []
    for cell in _cells_by_tag(nb, "check"):
        call = ast.parse(cell.source).body[0].value  # type: ignore[attr-defined]
        pairs.append((call.args[0].value, call.args[1].id))
    graded = copy.deepcopy(nb)
    graded.cells = [c for c in nb.cells if {"imports", "exercise"} & set(c.metadata.get("tags", []))]
    graded.cells.append(nbformat.v4.new_code_cell(
        "import json as _json\nfrom bncourse.grading import check\n"
        f"_scores = {{i: check(i, globals()[n], verbose=False) for i, n in {pairs!r}}}\n"
        "print(_json.dumps({i: [r.points, r.max_points, r.status] for i, r in _scores.items()}))"
    ))
    graded, _ = execute(graded, tmp_path)
    assert _errors(graded) == []
    return dict(json.loads(_text(graded.cells[-1]).strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.notebooks
@_real
def test_real_student_edition_starts_at_zero_points_in_the_grader(
    path: Path, real_edition: Path, tmp_path: Path
) -> None:
    scores = _grade(_student(real_edition, path), tmp_path, path.name)
    if not scores:
        pytest.skip(f"{path.name} has no exercises")
    # "checked": an exercise checked with the student's own earlier function (the backward
    # runs the student's forward) fails with "your batchnorm_forward is not implemented yet".
    assert all(points == 0 and status in ("not_implemented", "checked") for points, _, status in scores.values())
    assert any(status == "not_implemented" for _, _, status in scores.values()), scores


@pytest.mark.slow
@pytest.mark.notebooks
@_real
def test_real_round_trip_gets_full_points(path: Path, real_edition: Path, tmp_path: Path) -> None:
    inst = nbformat.read(path, as_version=4)
    filled = fill_solutions(_student(real_edition, path), inst)
    for f, i in zip(_cells_by_tag(filled, "exercise"), _cells_by_tag(inst, "exercise"), strict=True):
        assert f.source == without_markers(i.source)
    scores = _grade(filled, tmp_path, path.name)
    if not scores:
        pytest.skip(f"{path.name} has no exercises")
    assert {i: s[0] for i, s in scores.items()} == {i: s[1] for i, s in scores.items()}, scores


def test_speaker_notes_are_the_lecturers_and_not_in_the_student_edition() -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell("Say: the brief wanted this", metadata={"slideshow": {"slide_type": "notes"}}),
        nbformat.v4.new_markdown_cell("Prose", metadata={"slideshow": {"slide_type": "-"}}),
    ])
    student = release.student_notebook(nb)
    assert [c.source for c in student.cells] == ["# Title", "Prose"]
