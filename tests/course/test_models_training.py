"""The shared models and the training loop (seeded, and BN really trains the sigmoid MLP)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bncourse.course.data import load_digits_split
from bncourse.course.models import init_scaled_, make_cnn, make_mlp
from bncourse.course.training import History, accuracy, minibatch_step, steps_to_reach, train
from bncourse.errors import ParameterError


def test_mlp_layout_and_seed() -> None:
    m = make_mlp(norm="bn")
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Linear", "BatchNorm1d", "Sigmoid"] * 3 + ["Linear"]
    after = [type(layer).__name__ for layer in make_mlp(norm="bn_after")]
    assert after[:3] == ["Linear", "Sigmoid", "BatchNorm1d"]
    a, b = make_mlp(seed=1), make_mlp(seed=1)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not torch.equal(next(make_mlp(seed=2).parameters()), next(a.parameters()))


def test_mlp_norm_factory_and_errors() -> None:
    m = make_mlp(hidden=(5,), norm="bn", norm_factory=lambda w: nn.Identity())
    assert isinstance(m[1], nn.Identity)
    with pytest.raises(ParameterError, match="norm must be"):
        make_mlp(norm="gn")
    with pytest.raises(ParameterError, match="activation must be one of"):
        make_mlp(activation="swish")


@pytest.mark.parametrize("norm", ["none", "bn", "gn", "ln", "in"])
def test_cnn_shapes(norm: str) -> None:
    m = make_cnn(norm=norm)
    assert m(torch.zeros(4, 1, 8, 8)).shape == (4, 10)
    convs = [layer for layer in m if isinstance(layer, nn.Conv2d)]
    assert all((c.bias is None) == (norm != "none") for c in convs)


def test_init_scaled() -> None:
    m = make_mlp(hidden=(4,), seed=0)
    w = m[0].weight.detach().clone()
    init_scaled_(m, 3.0)
    torch.testing.assert_close(m[0].weight.detach(), 3 * w)


@pytest.mark.slow
def test_train_is_deterministic_and_bn_trains_deep_sigmoid() -> None:
    torch.set_num_threads(1)
    s = load_digits_split()
    runs = [
        train(make_mlp(norm="bn"), s.x_train, s.y_train, s.x_test, s.y_test,
              steps=300, lr=0.5, eval_every=100, seed=0)
        for _ in range(2)
    ]
    assert runs[0].test_acc == runs[1].test_acc and runs[0].steps == [0, 100, 200, 300]
    plain = train(make_mlp(norm="none"), s.x_train, s.y_train, s.x_test, s.y_test,
                  steps=300, lr=0.5, eval_every=100, seed=0)
    assert runs[0].final_acc > 0.85
    assert plain.final_acc < 0.5, "3 sigmoid layers without BN barely move in 300 steps"
    assert np.isnan(runs[0].train_loss[0]) and runs[0].train_loss[-1] < runs[0].train_loss[1]


def test_train_callback_and_divergence() -> None:
    s = load_digits_split()
    h = train(make_mlp(hidden=(8,)), s.x_train, s.y_train, s.x_test, s.y_test, steps=20,
              eval_every=10, callback=lambda step, m: {"w": m[0].weight.abs().mean().item()})
    assert h.record_array("w").shape == (3,)
    h = train(make_mlp(hidden=(8,), activation="relu"), s.x_train * 1e30, s.y_train, s.x_test,
              s.y_test, steps=50, lr=1e30, eval_every=10)
    assert h.diverged and np.isnan(h.train_loss[-1]) and h.steps[-1] < 50


def test_accuracy_restores_mode_and_steps_to_reach() -> None:
    m = make_mlp(norm="bn", hidden=(8,))
    s = load_digits_split()
    m.train()
    accuracy(m, s.x_test, s.y_test)
    assert m.training
    h = History(steps=[0, 10, 20], test_acc=[0.1, 0.5, 0.9])
    assert steps_to_reach(h, 0.5) == 10 and steps_to_reach(h, 0.95) is None
    with pytest.raises(ParameterError):
        train(m, s.x_train, s.y_train, s.x_test, s.y_test, steps=1, eval_every=0)


def test_minibatch_step_is_one_sgd_step_on_a_seeded_batch() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    model, twin = nn.Linear(3, 2), nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    seen: list[float] = []
    loss = minibatch_step(model, torch.optim.SGD(model.parameters(), lr=0.5), x, y,
                          torch.Generator().manual_seed(3), 4,
                          before_step=lambda m: seen.append(float(m.weight.grad.abs().sum())))
    idx = torch.randint(0, 20, (4,), generator=torch.Generator().manual_seed(3))  # the same draw
    expected = nn.functional.cross_entropy(twin(x[idx]), y[idx])
    expected.backward()
    with torch.no_grad():
        for p in twin.parameters():
            p -= 0.5 * p.grad
    assert loss.item() == expected.item()
    assert seen and seen[0] > 0  # the hook saw the gradients, before the step
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7)
