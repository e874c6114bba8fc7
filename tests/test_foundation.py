"""The skeleton: packaging metadata, environment.yml, CLI, lazy imports, data, conventions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

import bncourse
from bncourse import conventions
from bncourse.course.data import (
    load_digits_split,
    make_two_scale_regression,
    minibatches,
    shift_digits,
)
from bncourse.errors import BNCourseError, DTypeError, ParameterError

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_agrees_with_pyproject() -> None:
    meta = _pyproject()["project"]
    wanted = {_name(r): r for r in meta["dependencies"] + meta["optional-dependencies"]["dev"]}
    text = (ROOT / "environment.yml").read_text()
    deps = text.split("dependencies:", 1)[1]
    conda = {}
    for line in deps.splitlines():
        m = re.match(r"^\s+-\s+([A-Za-z0-9_.\-]+)(.*)$", line)
        if m and m.group(1) not in ("pip", "-e"):
            conda[_name(m.group(1))] = (m.group(1) + m.group(2)).replace(" ", "")
    torch_pin = re.search(r"TORCH_PIN := (\S+)", (ROOT / "Makefile").read_text()).group(1)
    assert f"- {torch_pin}" in text, "environment.yml must pin torch as the Makefile does"
    missing = sorted(set(wanted) - set(conda) - {"torch"})
    assert not missing, f"in pyproject but not in environment.yml: {missing}"
    extra = sorted(set(conda) - set(wanted) - {"python", "torch"})
    assert not extra, f"in environment.yml but not in pyproject: {extra}"
    for name, req in wanted.items():
        if name == "torch":
            continue
        assert conda[name].replace(" ", "") == req.replace(" ", ""), f"{name}: {conda[name]} != {req}"
    py_req = meta["requires-python"]
    assert f"python{py_req}" in conda["python"], f"python pin differs: {conda['python']} vs {py_req}"


def test_import_is_lazy() -> None:
    code = (
        "import sys, bncourse, bncourse.course.data, bncourse.conventions, bncourse.errors, bncourse.grading;"
        "heavy = [m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import bncourse pulled in: {out.stdout.strip()}"


def test_cli_help_and_version() -> None:
    out = subprocess.run([sys.executable, "-m", "bncourse", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"bncourse {bncourse.__version__}"
    out = subprocess.run([sys.executable, "-m", "bncourse", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("release", "grade", "slides", "lint-notebooks"):
        assert command in out.stdout
    out = subprocess.run([sys.executable, "-m", "bncourse", "grade", "--help"], capture_output=True, text=True)
    assert "--timeout" in out.stdout and "--jobs" in out.stdout and "never modified" in out.stdout


def test_console_script_is_declared() -> None:
    assert _pyproject()["project"]["scripts"]["bncourse"] == "bncourse.cli:main"
    assert (ROOT / "bncourse" / "py.typed").exists()


def test_errors_are_value_errors() -> None:
    assert issubclass(BNCourseError, ValueError)
    for cls in (DTypeError, ParameterError):
        assert issubclass(cls, BNCourseError)


def test_conventions_keras_torch_momentum() -> None:
    assert conventions.EPS == 1e-5 and conventions.BN_MOMENTUM == 0.1
    assert conventions.keras_momentum_to_torch(conventions.KERAS_BN_MOMENTUM) == pytest.approx(0.01)
    assert conventions.torch_momentum_to_keras(conventions.BN_MOMENTUM) == pytest.approx(0.9)
    assert conventions.ema_update(0.0, 1.0) == pytest.approx(0.1)  # weight 0.1 on the *new* value


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_digits_split_is_seeded_and_disjoint(dtype: type) -> None:
    a = load_digits_split(seed=3, dtype=dtype)
    b = load_digits_split(seed=3, dtype=dtype)
    c = load_digits_split(seed=4, dtype=dtype)
    assert a.x_train.dtype == dtype
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    n = len(a.x_train) + len(a.x_val) + len(a.x_test)
    assert n == 1797
    rows = {r.tobytes() for r in a.x_test.astype(np.float64)}
    overlap = sum(r.tobytes() in rows for r in a.x_train.astype(np.float64))
    assert overlap <= 5, "train and test should be (almost) disjoint; digits has a few duplicates"
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0
    a.x_train[:] = -1  # callers get copies
    assert load_digits_split(seed=3, dtype=dtype).x_train.min() >= 0


def test_digits_images_shape() -> None:
    s = load_digits_split(images=True)
    assert s.x_train.shape[1:] == (1, 8, 8)


def test_data_errors() -> None:
    with pytest.raises(DTypeError, match="float32 or float64, got int64"):
        load_digits_split(dtype=np.int64)
    with pytest.raises(ParameterError, match="val_fraction"):
        load_digits_split(val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ParameterError, match="kind must be"):
        shift_digits(np.zeros((2, 64)), "rotate", 1.0)
    with pytest.raises(ParameterError, match="batch_size >= 1"):
        minibatches(10, 0, seed=0)


def test_two_scale_regression_scales() -> None:
    x, y = make_two_scale_regression(n=2000, scale_ratio=100.0, seed=1)
    ratio = x[:, 1].std() / x[:, 0].std()
    assert 90 < ratio < 110
    w, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    np.testing.assert_allclose(w, [2.0, 0.03, 1.0], rtol=0.05, atol=0.01)


def test_minibatches_cover_and_drop_last() -> None:
    batches = minibatches(10, 3, seed=0)
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(np.concatenate(batches))) == 9
    assert [len(b) for b in minibatches(10, 3, seed=0, drop_last=False)] == [3, 3, 3, 1]


@pytest.mark.parametrize("kind", ["scale", "offset", "noise", "invert"])
def test_shift_digits_changes_data_and_keeps_dtype(kind: str) -> None:
    x = load_digits_split().x_test
    out = shift_digits(x, kind, 0.5)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert not np.allclose(out, x)
