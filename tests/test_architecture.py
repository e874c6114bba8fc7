"""The package's layer contracts (pyproject.toml, [tool.importlinter]) hold, and each one
fails when it is broken on purpose; loading the exercise registry imports no torch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "400"}  # one line per contract
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", "pyproject.toml"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def _verdicts(output: str) -> dict[str, str]:
    """Contract name -> KEPT/BROKEN, from lint-imports' summary lines ``<name> KEPT``."""
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"^(.+) (KEPT|BROKEN)$", output, re.M)}


def test_lint_imports_is_installed() -> None:
    assert LINT_IMPORTS.exists(), "import-linter is a dev dependency: pip install -e '.[dev]'"


def test_every_layer_contract_is_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = _verdicts(result.stdout)
    assert len(verdicts) == 9 and set(verdicts.values()) == {"KEPT"}, result.stdout


VIOLATIONS = {
    "reference imports torch": ("bncourse/reference/fold.py", "import torch\n", "reference is NumPy only"),
    "reference imports the grader": ("bncourse/reference/fold.py", "import bncourse.grading.check\n",
                                     "The library is layered"),
    "a lesson imports another": ("bncourse/lessons/l01_feature_scaling/experiments.py",
                                 "from bncourse.lessons.l02_internal_covariate_shift import experiments as _e\n",
                                 "lessons never import each other"),
    "an experiment imports a solution": ("bncourse/lessons/l03_forward_backward/experiments.py",
                                         "from bncourse.lessons.l03_forward_backward import solutions as _s\n",
                                         "solutions and mistakes are imported by no module"),
    "grading imports a course helper": ("bncourse/grading/evaluate.py", "import bncourse.course.data\n",
                                        "grading never imports experiments"),
    "a reference function takes the fast path": ("bncourse/reference/spatial.py",
                                                 "from bncourse.reference import _fast as _f\n",
                                                 "the fast path is for benchmarks only"),
    "the oracle imports the reference": ("bncourse/oracle/linalg.py", "import bncourse.reference.weightnorm\n",
                                         "the oracle (torch stand-ins"),
    "the oracle imports a solution": ("bncourse/oracle/batchnorm.py",
                                      "from bncourse.lessons.l03_forward_backward import solutions as _s\n",
                                      "the oracle (torch stand-ins"),
    "an experiment imports the reference": ("bncourse/lessons/l04_gamma_beta/experiments.py",
                                            "from bncourse.reference import fold_batchnorm as _fold\n",
                                            "what the student build ships never imports"),
    "nn imports the reference": ("bncourse/nn/renorm.py", "import bncourse.reference\n",
                                 "what the student build ships never imports"),
    "exercises import a solution": ("bncourse/lessons/l03_forward_backward/exercises.py",
                                    "from bncourse.lessons.l03_forward_backward import solutions as _s\n",
                                    "what the student build ships never imports"),
    "exercises import an experiment": ("bncourse/lessons/l06_bn_in_cnns/exercises.py",
                                       "from bncourse.lessons.l06_bn_in_cnns import experiments as _x\n",
                                       "grading never imports experiments"),
}


@pytest.mark.slow
@pytest.mark.parametrize("violation", list(VIOLATIONS), ids=list(VIOLATIONS))
def test_a_broken_contract_fails(violation: str, tmp_path: Path) -> None:
    """The contracts are not vacuous: one illegal import in a copy of the package breaks the
    named contract (and only the check of the copy fails, the real package is untouched)."""
    path, line, contract = VIOLATIONS[violation]
    shutil.copytree(ROOT / "bncourse", tmp_path / "bncourse", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / path
    source = target.read_text()
    future = "from __future__ import annotations\n"
    target.write_text(source.replace(future, future + line, 1) if future in source else line + source)
    result = _lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [name for name, verdict in _verdicts(result.stdout).items() if verdict == "BROKEN"]
    assert any(name.startswith(contract) for name in broken), (broken, result.stdout[-3000:])


def test_loading_the_exercise_registry_imports_no_torch_or_plotting() -> None:
    """import-linter sees function-level imports too, so this runtime property is checked at run
    time: every exercise declaration, solution and mistake loads without torch or matplotlib."""
    code = ("import sys, json; from bncourse.grading import registry; ids = registry.exercise_ids(); "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'ipywidgets', 'sklearn')); "
            "print(json.dumps({'ids': ids, 'heavy': heavy, 'broken': registry._BROKEN}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["broken"] == {}
    assert len(report["ids"]) >= 21
    assert report["heavy"] == []


def test_one_lesson_package_per_notebook() -> None:
    """``notebooks/NN_topic.ipynb`` <-> ``bncourse/lessons/lNN_topic/``, both ways, and the
    notebooks are really there (nbval and the notebook tests would pass vacuously without them)."""
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    lessons = sorted(p.name[1:] for p in (ROOT / "bncourse" / "lessons").iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    assert len(notebooks) >= 7, f"the course notebooks are missing from {ROOT / 'notebooks'}: {notebooks}"
    assert notebooks == lessons


def test_each_lesson_has_its_parts_and_its_tests() -> None:
    """Every lesson declares its exercises with solutions and mistakes beside them, and its tests
    (with the independent mutants) sit in the mirror folder tests/lessons/lNN_topic/."""
    for lesson in sorted((ROOT / "bncourse" / "lessons").glob("l[0-9][0-9]_*")):
        parts = {p.stem for p in lesson.glob("*.py")}
        assert {"experiments", "exercises", "solutions", "mistakes"} <= parts, (lesson.name, parts)
        tests = ROOT / "tests" / "lessons" / lesson.name
        assert (tests / "mutants.py").exists() and list(tests.glob("test_*.py")), tests


def test_every_exercise_is_checked_against_its_lessons_solution() -> None:
    """An exercise's solution is ``solutions.<id>`` of the lesson that declares it (one name per
    exercise, everywhere), and that lesson's notebook is the exercise's notebook."""
    import importlib

    from bncourse.grading.registry import all_exercises

    course = [e for e in all_exercises() if e.cases.__module__.startswith("bncourse.lessons.")]
    assert len(course) >= 22
    for exercise in course:
        lesson = exercise.cases.__module__.rsplit(".", 1)[0]
        assert lesson.split(".")[-1] == "l" + exercise.notebook, (exercise.id, lesson)
        solutions = importlib.import_module(f"{lesson}.solutions")
        assert exercise.id in solutions.__all__ and exercise.solution.resolve() is getattr(solutions, exercise.id), exercise.id
