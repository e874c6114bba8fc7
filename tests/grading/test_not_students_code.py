"""What the grader runs for an exercise must be the student's own code: not a course
stand-in, a library function, a partial of one, or a subclass of a forbidden library class."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from bncourse import oracle
from bncourse.grading.grader import grade_class
from bncourse.grading.jail import GradingJail
from bncourse.grading.runner import forbidden_base, not_students_code
from tests.jail_helpers import require_bwrap
from tests.paths import NOTEBOOKS_DIR

STUDENT = {"__name__": "__main__"}
exec(compile("def mine(x):\n    return x\nclass Mine:\n    def __call__(self, x):\n        return x\n"
             "class Sub(Base):\n    pass\n", "<cell 3>", "exec"), STUDENT | {"Base": torch.nn.BatchNorm1d}, STUDENT)


@pytest.mark.parametrize(("obj", "origin"), [
    (oracle.population_stats, "bncourse.oracle"),
    (functools.partial(oracle.population_stats), "bncourse.oracle"),
    (np.mean, "numpy"),
    (np.add, "numpy"),
    (len, "builtins"),
    (torch.nn.BatchNorm1d, "torch"),
])
def test_code_the_student_did_not_write_is_named(obj: object, origin: str) -> None:
    found = not_students_code(obj)
    assert found is not None and found.startswith(origin)


def test_the_students_own_functions_classes_and_instances_pass() -> None:
    assert [not_students_code(o) for o in (STUDENT["mine"], STUDENT["Mine"], STUDENT["Mine"](), lambda x: x)] \
        == [None] * 4


def test_a_subclass_of_a_forbidden_library_class_is_named() -> None:
    assert forbidden_base(STUDENT["Sub"], ("torch",)) == "torch.nn.modules.batchnorm.BatchNorm1d"
    assert forbidden_base(STUDENT["Mine"], ("torch",)) is None


@pytest.mark.slow
def test_the_grader_gives_no_points_for_a_stand_in_or_a_disguised_torch_class(tmp_path: Path,
                                                                              student_build: Path) -> None:
    require_bwrap()
    nb = nbformat.read(NOTEBOOKS_DIR / "05_test_time.ipynb", as_version=4)
    imports = next(c for c in nb.cells if "imports" in c.metadata.get("tags", []))
    imports.source += "\nfrom torch.nn import BatchNorm1d as Base\n"
    replacements = {"population_stats": 'population_stats = best_available("population_stats", None)\n',
                    "BatchNorm1d": "class BatchNorm1d(Base):\n    pass\n"}
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []):
            for name, source in replacements.items():
                if f"def {name}(" in cell.source or f"class {name}" in cell.source:
                    cell.source = source
    (tmp_path / "class" / "mallory").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "class" / "mallory" / "05_test_time.ipynb")
    out = tmp_path / "out"
    grade_class([tmp_path / "class"], out, timeout=30, jail=GradingJail(student_build))
    with open(out / "grades.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["population_stats"], row["BatchNorm1d"], row["batchnorm_inference"]) == ("0", "0", "10")
    results = {r["exercise"]: r for r in json.loads((out / "report.json").read_text())["submissions"][0]["results"]}
    assert "not code you wrote" in results["population_stats"]["messages"][0]
    assert "a subclass of torch" in results["BatchNorm1d"]["messages"][0]
