"""best_available and best_pair: the student's function once it passed, else a torch stand-in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bncourse import oracle
from bncourse.grading import best_available, best_pair, check
from bncourse.grading.check import _PASSED


@pytest.fixture(autouse=True)
def _fresh_kernel() -> Any:
    saved = dict(_PASSED)
    _PASSED.clear()
    yield
    _PASSED.clear()
    _PASSED.update(saved)


def my_forward(x, gamma, beta, eps=1e-5):  # a student's, with a cache of their own
    mu, var = x.mean(axis=0), x.var(axis=0)
    xh = (x - mu) / np.sqrt(var + eps)
    return gamma * xh + beta, {"xh": xh, "s": np.sqrt(var + eps), "g": gamma}


def my_backward(dout, cache):
    m, xh = dout.shape[0], cache["xh"]
    dgamma, dbeta = (dout * xh).sum(axis=0), dout.sum(axis=0)
    dx = cache["g"] / (m * cache["s"]) * (m * dout - dbeta - xh * dgamma)
    return dx, dgamma, dbeta


def test_unsolved_exercises_fall_back_to_the_stand_in_and_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert best_available("batchnorm_forward", my_forward) is oracle.batchnorm_forward
    assert "using a stand-in computed by torch" in capsys.readouterr().out


def test_a_passed_exercise_uses_the_students_function(capsys: pytest.CaptureFixture[str]) -> None:
    assert check("batchnorm_forward", my_forward, verbose=False, namespace={}).passed
    assert best_available("batchnorm_forward", my_forward) is my_forward
    assert "using your batchnorm_forward" in capsys.readouterr().out


def test_a_pair_never_mixes_a_students_forward_with_the_stand_in_backward() -> None:
    x = np.random.default_rng(0).standard_normal((6, 3))
    g, b, dout = np.ones(3), np.zeros(3), np.ones((6, 3))
    assert check("batchnorm_forward", my_forward, verbose=False, namespace={}).passed
    fwd, bwd = best_pair("batchnorm_forward", my_forward, "batchnorm_backward_alt", my_backward)
    assert (fwd, bwd) == (oracle.batchnorm_forward, oracle.batchnorm_backward_alt)
    bwd(dout, fwd(x, g, b)[1])  # the pair fits
    with pytest.raises(TypeError, match="batchnorm_forward"):
        oracle.batchnorm_backward_alt(dout, my_forward(x, g, b)[1])  # what mixing would do
    ns = {"batchnorm_forward": my_forward}
    assert check("batchnorm_backward_alt", my_backward, verbose=False, namespace=ns).passed
    assert best_pair("batchnorm_forward", my_forward, "batchnorm_backward_alt", my_backward) == (my_forward, my_backward)
