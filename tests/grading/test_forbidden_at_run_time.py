"""A forbidden function scores nothing however the student's code reaches it.

The static check sees names; these submissions hide the function in a container built in
the imports cell, behind ``getattr`` or ``importlib`` with a split string.  The run-time
watch (``runner.watching_calls``) sees the call itself.  Each test asserts the verdict
*and* that the check stayed usable afterwards (the profile hook is removed).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from bncourse import oracle
from bncourse.grading import check

HIDDEN: dict[str, Any] = {"bn": F.batch_norm, "T": torch}  # what "the imports cell" put in a container


def _exec_student(source: str, **names: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {"np": np, "__name__": "__main__", **names}
    exec(compile(source, "<student cell>", "exec"), ns)
    return ns


def _verdict(exercise_id: str, fn: Any) -> Any:
    result = check(exercise_id, fn, verbose=False, namespace={})
    assert sys.getprofile() is None, "the watch must be removed after the check"
    return result


def test_torch_batch_norm_in_a_container_is_forbidden() -> None:
    ns = _exec_student(
        "def batchnorm_forward(x, gamma, beta, eps=1e-5):\n"
        "    T = HIDDEN['T']\n"
        "    t = HIDDEN['bn'](T.as_tensor(x), None, None, T.as_tensor(gamma), T.as_tensor(beta), True, 0.1, eps)\n"
        "    return t.numpy(), None\n",
        HIDDEN=HIDDEN,
    )
    result = _verdict("batchnorm_forward", ns["batchnorm_forward"])
    assert result.status == "forbidden" and result.points == 0
    said = " ".join(result.messages + [c.diagnosis or "" for c in result.cases])
    assert "torch" in said and "called at run time" in said


def test_the_stand_in_behind_importlib_and_getattr_is_forbidden() -> None:
    ns = _exec_student(
        "def batchnorm_forward(x, gamma, beta, eps=1e-5):\n"
        "    m = IL.import_module('bncourse.' + 'ora' + 'cle')\n"
        "    return getattr(m, 'batchnorm_' + 'forward')(x, gamma, beta, eps)\n",
        IL=importlib,
    )
    result = _verdict("batchnorm_forward", ns["batchnorm_forward"])
    assert result.status == "forbidden" and result.points == 0
    said = " ".join(result.messages + [c.diagnosis or "" for c in result.cases])
    assert "bncourse.oracle" in said and "called at run time" in said


def test_an_exercises_own_stand_in_is_forbidden_where_the_oracle_is_allowed() -> None:
    # Notebook 04 lets bias_grad_through_bn use the batch-norm passes, not its own stand-in.
    ns = _exec_student(
        "def bias_grad_through_bn(x, W, b, gamma, beta, dout, eps=1e-5):\n"
        "    return HIDDEN['f'](x, W, b, gamma, beta, dout, eps)\n",
        HIDDEN={"f": oracle.bias_grad_through_bn},
    )
    result = _verdict("bias_grad_through_bn", ns["bias_grad_through_bn"])
    assert result.status == "forbidden" and result.points == 0


def test_the_allowed_building_blocks_still_score() -> None:
    ns = _exec_student(
        "def bias_grad_through_bn(x, W, b, gamma, beta, dout, eps=1e-5):\n"
        "    z = x @ W.T + b\n"
        "    _, cache = batchnorm_forward(z, gamma, beta, eps)\n"
        "    dz, _, _ = batchnorm_backward_alt(dout, cache)\n"
        "    return dz.T @ x, dz.sum(axis=0)\n",
        batchnorm_forward=oracle.batchnorm_forward, batchnorm_backward_alt=oracle.batchnorm_backward_alt,
    )
    result = _verdict("bias_grad_through_bn", ns["bias_grad_through_bn"])
    assert result.passed, result.messages


def test_a_function_the_exercise_hands_over_may_be_called() -> None:
    # numerical_gradient differentiates the f the case gives it, one of them the torch stand-in.
    ns = _exec_student(
        "def numerical_gradient(f, x, dout, h=1e-5):\n"
        "    grad = np.zeros_like(x)\n"
        "    for i in np.ndindex(x.shape):\n"
        "        old = x[i]\n"
        "        x[i] = old + h; fp = f(x)\n"
        "        x[i] = old - h; fm = f(x)\n"
        "        x[i] = old\n"
        "        grad[i] = np.sum((fp - fm) * dout) / (2 * h)\n"
        "    return grad\n",
    )
    result = _verdict("numerical_gradient", ns["numerical_gradient"])
    assert result.passed, (result.messages, [c.message for c in result.cases])


def test_python_itself_is_library_code_not_the_students() -> None:
    """The watch judges calls made by the student's code; the standard library (in a venv it
    lives under the base prefix) and the frozen import machinery call torch on behalf of
    allowed code, e.g. a first use that imports a torch submodule (seen in the grader)."""
    import dataclasses

    from bncourse.grading.runner import _is_course_frame

    assert _is_course_frame(dataclasses.__file__)
    assert _is_course_frame("<frozen importlib._bootstrap>")
    assert _is_course_frame(oracle.__file__)
    assert not _is_course_frame("<student cell>")
    assert not _is_course_frame("/tmp/ipykernel_123/4567.py")
