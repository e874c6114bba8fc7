"""Every backward exercise that runs on the student's own forward (03's batch norm, 06's
spatial batch norm, 07's layer norm) treats that forward the same way: two stubs are
"not implemented yet", a stub or wrong forward is blamed by name, a right pair passes.

(``check`` also checks the forward on its own and, when it fails, replaces the backward's
diagnosis with "Your <forward> does not pass its check yet ... fix <forward> first.")"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bncourse import reference
from bncourse.grading import check

# backward exercise, forward name, backward name, forward exercise, reference forward/backward
CASES = [
    ("batchnorm_backward", "batchnorm_forward", "batchnorm_backward", "batchnorm_forward",
     reference.batchnorm_forward, reference.batchnorm_backward),
    ("spatial_batchnorm_backward", "spatial_batchnorm_forward", "spatial_batchnorm_backward", "spatial_batchnorm_forward",
     reference.spatial_batchnorm_forward, reference.spatial_batchnorm_backward),
    ("layernorm_backward", "layernorm_forward", "layernorm_backward", "layernorm_forward",
     reference.layernorm_forward, reference.layernorm_backward),
]
IDS = [c[0] for c in CASES]


def _stub(*args: Any) -> Any:
    raise NotImplementedError


def _check(exercise_id: str, names: dict[str, Callable[..., Any]], backward_name: str) -> Any:
    """``check`` as a notebook cell calls it: the student's functions are globals."""
    ns: dict[str, Any] = {"check": check, **names}
    exec(f"r = check({exercise_id!r}, {backward_name}, verbose=False)", ns)
    return ns["r"]


@pytest.mark.parametrize(("exercise_id", "fwd", "bwd", "fwd_ex", "ref_fwd", "ref_bwd"), CASES, ids=IDS)
def test_two_stubs_are_not_implemented_yet(exercise_id: str, fwd: str, bwd: str, fwd_ex: str,
                                           ref_fwd: Any, ref_bwd: Any) -> None:
    result = _check(exercise_id, {fwd: _stub, bwd: _stub}, bwd)
    assert result.status == "not_implemented" and result.points == 0


@pytest.mark.parametrize(("exercise_id", "fwd", "bwd", "fwd_ex", "ref_fwd", "ref_bwd"), CASES, ids=IDS)
def test_a_stub_forward_is_named(exercise_id: str, fwd: str, bwd: str, fwd_ex: str,
                                 ref_fwd: Any, ref_bwd: Any) -> None:
    result = _check(exercise_id, {fwd: _stub, bwd: ref_bwd}, bwd)
    assert not result.passed and result.status == "checked"
    assert result.diagnosis.startswith(f"Your {fwd} does not pass its check yet")
    assert result.diagnosis.endswith(f"fix {fwd_ex} first."), result.diagnosis


@pytest.mark.parametrize(("exercise_id", "fwd", "bwd", "fwd_ex", "ref_fwd", "ref_bwd"), CASES, ids=IDS)
def test_a_wrong_forward_is_blamed_not_the_backward(exercise_id: str, fwd: str, bwd: str, fwd_ex: str,
                                                    ref_fwd: Any, ref_bwd: Any) -> None:
    def shifted(x: Any, gamma: Any, beta: Any, eps: float = 1e-5) -> Any:
        out, cache = ref_fwd(x, gamma, beta, eps)
        return out + 1.0, cache  # right cache, wrong output

    result = _check(exercise_id, {fwd: shifted, bwd: ref_bwd}, bwd)
    assert not result.passed
    assert result.diagnosis.startswith(f"Your {fwd} does not pass its check yet")
    assert result.diagnosis.endswith(f"fix {fwd_ex} first."), result.diagnosis


@pytest.mark.parametrize(("exercise_id", "fwd", "bwd", "fwd_ex", "ref_fwd", "ref_bwd"), CASES, ids=IDS)
def test_a_right_pair_passes(exercise_id: str, fwd: str, bwd: str, fwd_ex: str,
                             ref_fwd: Any, ref_bwd: Any) -> None:
    result = _check(exercise_id, {fwd: ref_fwd, bwd: ref_bwd}, bwd)
    assert result.passed and result.points == result.max_points
