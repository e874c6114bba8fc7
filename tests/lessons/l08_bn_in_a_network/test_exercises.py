"""Notebook 08's exercises: solutions pass, mutants get their diagnosis, the solutions match
torch autograd, the grader forbids torch and the stand-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from bncourse import oracle
from bncourse.grading import check, hint
from bncourse.grading.registry import exercises_for_notebook, get_exercise
from bncourse.lessons.l08_bn_in_a_network import solutions
from tests import exercise_helpers
from tests.lessons.l08_bn_in_a_network.mutants import CORRECT, MUTANTS

IDS = ("softmax_cross_entropy", "linear_backward", "network_backward", "batchnorm_layer_forward")


def test_exercises_registered_for_notebook_08() -> None:
    assert {e.id for e in exercises_for_notebook("08_bn_in_a_network")} == set(IDS)


test_solution_gets_full_points = exercise_helpers.solutions_get_full_points(IDS, "08_bn_in_a_network")
test_each_mistake_is_diagnosed_by_its_own_message = exercise_helpers.mistakes_diagnose_themselves(
    {exercise_id: get_exercise(exercise_id).mistakes for exercise_id in IDS}
)
test_mutant_fails_with_diagnosis = exercise_helpers.mutants_are_diagnosed(MUTANTS)
test_correct_alternative_gets_full_points = exercise_helpers.correct_versions_get_full_points(CORRECT)


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_exercise_has_a_three_rung_hint_ladder(exercise_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(get_exercise(exercise_id).hints) == 3
    hint(exercise_id, level=3)
    assert "Hint 3 of 3" in capsys.readouterr().out


def test_softmax_cross_entropy_matches_torch() -> None:
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(7, 5)) * 3, rng.integers(0, 5, size=7)
    z = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, torch.from_numpy(y))
    loss.backward()
    ours, dz = solutions.softmax_cross_entropy(logits, y)
    assert ours == pytest.approx(float(loss.detach()), rel=1e-12)
    np.testing.assert_allclose(dz, z.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_linear_backward_matches_torch_and_bias_is_a_sum() -> None:
    rng = np.random.default_rng(1)
    x, W, b, dout = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(6, 3))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    (xt @ wt + bt).backward(torch.from_numpy(dout))
    dx, dW, db = solutions.linear_backward(dout, x, W)
    for ours, theirs in ((dx, xt), (dW, wt), (db, bt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(db, dout.sum(axis=0), rtol=0, atol=0)


def test_network_backward_with_real_batch_norm_matches_autograd() -> None:
    """The solution composed with the course's stand-in BN equals autograd of the whole network."""
    from bncourse.course.data import load_digits_split
    from bncourse.lessons.l08_bn_in_a_network import experiments as net

    data = load_digits_split(seed=0, dtype=np.float64)
    fns = net.NetFunctions(oracle.batchnorm_forward, oracle.batchnorm_backward, None, solutions.softmax_cross_entropy,
                           solutions.linear_backward, solutions.network_backward)
    model = net.NumpyMLP(net.init_params(seed=3), fns)
    _, dlogits, grads = model.gradients(data.x_train[:32], data.y_train[:32])
    ref = net.autograd_gradients(model.params, data.x_train[:32], data.y_train[:32])
    for key in net.BACKPROP_ORDER:
        got = dlogits if key == "logits" else grads[key]
        np.testing.assert_allclose(got, ref[key], rtol=1e-9, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_layer_forward_matches_torch_module(training: bool) -> None:
    rng = np.random.default_rng(2)
    bn = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.normal(size=4)
    rm, rv = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
        bn.running_mean.copy_(torch.from_numpy(rm))
        bn.running_var.copy_(torch.from_numpy(rv))
    bn.train(training)
    x = rng.normal(size=(5, 4)) * 2 + 1
    out_t = bn(torch.from_numpy(x)).detach().numpy()
    out, rm2, rv2 = solutions.batchnorm_layer_forward(x, gamma, beta, rm, rv, training)
    np.testing.assert_allclose(out, out_t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm2, bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv2, bn.running_var.numpy(), rtol=1e-12)


def test_torch_in_an_exercise_is_forbidden() -> None:
    def softmax_cross_entropy(logits, y):  # type: ignore[no-untyped-def]
        z = torch.tensor(logits, requires_grad=True)
        loss = F.cross_entropy(z, torch.from_numpy(np.asarray(y)))
        loss.backward()
        return float(loss), z.grad.numpy()

    result = check("softmax_cross_entropy", softmax_cross_entropy, verbose=False)
    assert result.status == "forbidden" and result.points == 0


def test_the_stand_in_is_not_accepted_as_the_students_code() -> None:
    result = check("linear_backward", oracle.linear_backward, verbose=False)
    assert result.status == "forbidden" and result.points == 0
