"""Tests of bncourse.lessons.l05_test_time.experiments: the estimates of BN's test-time statistics and the pitfalls
(the exercises' solutions are tested in test_solutions.py and test_exercises.py)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from bncourse.course.models import make_mlp
from bncourse.course.training import accuracy
from bncourse.errors import ParameterError, ShapeError
from bncourse.lessons.l05_test_time import experiments as infs
from bncourse.lessons.l05_test_time import solutions

# ---------------------------------------------------------------------------- moving averages


def test_running_average_reproduces_torch_buffers_for_momentum_and_none() -> None:
    rng = np.random.default_rng(4)
    xs = [rng.normal(i, 1.0, size=(n, 5)) for i, n in enumerate([8, 2, 5, 13, 3, 6])]
    means = np.stack([x.mean(0) for x in xs])
    variances = np.stack([x.var(0, ddof=1) for x in xs])
    for momentum in (0.1, 0.37, None):
        bn = torch.nn.BatchNorm1d(5, momentum=momentum, dtype=torch.float64)
        for x in xs:
            bn(torch.from_numpy(x))
        np.testing.assert_allclose(infs.running_average(means, momentum, 0.0)[-1], bn.running_mean.numpy(),
                                   rtol=1e-12, err_msg=f"running_mean, momentum={momentum}")
        np.testing.assert_allclose(infs.running_average(variances, momentum, 1.0)[-1], bn.running_var.numpy(),
                                   rtol=1e-12, err_msg=f"running_var, momentum={momentum}")


def test_running_average_none_is_the_plain_average_and_ignores_initial() -> None:
    b = np.random.default_rng(5).normal(size=(9, 2))
    out = infs.running_average(b, None, initial=123.0)
    for t in range(9):
        np.testing.assert_allclose(out[t], b[: t + 1].mean(0), rtol=1e-13)


def test_running_average_momentum_weights_the_new_value() -> None:
    out = infs.running_average(np.array([10.0]), momentum=0.1, initial=0.0)
    assert out[0] == pytest.approx(1.0)  # 0.9 * 0 + 0.1 * 10, not 0.1 * 0 + 0.9 * 10


def test_window_average_and_its_errors() -> None:
    b = np.arange(20, dtype=float).reshape(10, 2)
    np.testing.assert_allclose(infs.window_average(b, 5, 10), b[5:].mean(0))
    for start, stop in [(5, 5), (-1, 3), (0, 11)]:
        with pytest.raises(ParameterError):
            infs.window_average(b, start, stop)


def test_half_life_and_steps_to_forget() -> None:
    assert infs.half_life(0.9) == pytest.approx(math.log(0.5) / math.log(0.9))
    assert 0.9 ** infs.half_life(0.9) == pytest.approx(0.5)
    assert infs.steps_to_forget(0.1, 0.01) == 44
    assert infs.steps_to_forget(0.01, 0.01) == 459
    for m in (0.01, 0.1, 0.3, 0.9):
        k = infs.steps_to_forget(m, 0.01)
        assert (1 - m) ** k <= 0.01 < (1 - m) ** (k - 1)
    with pytest.raises(ParameterError):
        infs.half_life(1.0)
    with pytest.raises(ParameterError):
        infs.steps_to_forget(0.0)


def test_past_batch_weights_plus_initial_weight_sum_to_one() -> None:
    for m in (0.01, 0.1, 0.9):
        w = infs.past_batch_weights(m, 50)
        assert w[0] == pytest.approx(m)
        assert w.sum() + (1 - m) ** 50 == pytest.approx(1.0)


def test_stat_distance() -> None:
    mu, var = np.array([0.0, 1.0]), np.array([4.0, 1.0])
    assert infs.stat_distance(mu, var, mu, var) == (0.0, 0.0)
    d_mu, d_var = infs.stat_distance(mu + np.array([2.0, 1.0]), var * math.e, mu, var)
    assert d_mu == pytest.approx(1.0)  # (2/2)² and (1/1)²: RMS 1
    assert d_var == pytest.approx(1.0)  # ln e = 1 for both
    with pytest.raises(ShapeError):
        infs.stat_distance(mu, var, mu[:1], var)


# ---------------------------------------------------------------------------- torch helpers


@pytest.fixture(scope="module")
def tiny() -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(120, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=120)
    model = make_mlp(hidden=(16, 12), norm="bn", seed=1)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(5):
        idx = slice(step * 20, step * 20 + 20)
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, x, y


def test_recorder_replay_reproduces_buffers_and_ignores_eval_mode() -> None:
    torch.manual_seed(0)
    model = make_mlp(hidden=(8, 6), norm="bn", seed=0)
    rec = infs.BatchStatsRecorder(model)
    x = torch.randn(40, 64)
    model.train()
    with torch.no_grad():
        for i in range(4):
            model(x[i * 10 : i * 10 + 10] + i)
        model.eval()
        model(x)  # not recorded
    rec.remove()
    assert rec.steps == 4
    means, variances = rec.arrays()
    assert [m.shape for m in means] == [(4, 8), (4, 6)]
    for layer, m, v in zip(infs.bn_layers(model), means, variances, strict=True):
        np.testing.assert_allclose(infs.running_average(m, 0.1, 0.0)[-1], layer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(infs.running_average(v, 0.1, 1.0)[-1], layer.running_var.numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        model.train()(x[:10])
    assert rec.steps == 4  # hooks removed


def test_recorder_needs_bn_layers() -> None:
    with pytest.raises(ParameterError):
        infs.BatchStatsRecorder(make_mlp(hidden=(4,), norm="none"))


def test_population_statistics_first_layer_and_model_untouched(tiny) -> None:  # type: ignore[no-untyped-def]
    model, x, _ = tiny
    before = [b.clone() for b in model.buffers()]
    stats = infs.population_statistics(model, x)
    for b0, b1 in zip(before, model.buffers(), strict=True):
        assert torch.equal(b0, b1)
    with torch.no_grad():
        z1 = model[0](torch.from_numpy(x)).double().numpy()  # input of the first BN layer
    mean, var = solutions.population_stats([z1[:50], z1[50:]])
    np.testing.assert_allclose(stats[0][0], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats[0][1], var, rtol=1e-5, atol=1e-6)
    assert [s[0].shape for s in stats] == [(16,), (12,)]


def test_with_statistics_sets_buffers_on_a_copy_in_eval_mode(tiny) -> None:  # type: ignore[no-untyped-def]
    model, x, y = tiny
    stats = [(np.full(16, 0.5), np.full(16, 2.0)), (np.zeros(12), np.ones(12))]
    twin = infs.with_statistics(model, stats)
    assert not twin.training
    np.testing.assert_allclose(infs.bn_layers(twin)[0].running_var.numpy(), 2.0)
    assert not np.allclose(infs.bn_layers(model)[0].running_var.numpy(), 2.0)
    with pytest.raises(ShapeError):
        infs.with_statistics(model, stats[:1])
    # the model's own buffers plugged back in give the model's own eval accuracy
    own = infs._buffers(model)
    assert accuracy(infs.with_statistics(model, own), x, y) == accuracy(model, x, y)


def test_companion_logits_depend_on_companions_only_in_train_mode(tiny) -> None:  # type: ignore[no-untyped-def]
    model, x, _ = tiny
    before = [b.clone() for b in model.buffers()]
    out = infs.companion_logits(model, x, 0, [x[1:5], x[50:54] + 3.0])
    assert out["train"].shape == (2, 10) and out["eval"].shape == (10,)
    assert np.abs(out["train"][0] - out["train"][1]).max() > 1e-3
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(out["eval"], model(torch.from_numpy(x[:1]))[0].double().numpy(), rtol=1e-6)
    for b0, b1 in zip(before, model.buffers(), strict=True):
        assert torch.equal(b0, b1)
    changed = infs.prediction_changed(model, x, [0, 1], [x[1:5], x[50:54] + 3.0])
    assert changed.shape == (2,) and changed.dtype == bool


def test_batch_of_one_error_message(tiny) -> None:  # type: ignore[no-untyped-def]
    model, x, _ = tiny
    msg = infs.batch_of_one_error(model, x)
    assert msg.startswith("ValueError:") and "Expected more than 1 value per channel" in msg
    assert infs.batch_of_one_error(make_mlp(hidden=(4,), norm="none"), x) == "no error"


def test_train_mode_accuracy(tiny) -> None:  # type: ignore[no-untyped-def]
    model, x, y = tiny
    full = infs.train_mode_accuracy(model, x, y, len(x))
    assert full == pytest.approx(accuracy(model, x, y, train_mode=True))
    # 120 = 7 * 17 + 1: the last batch of one is merged instead of raising
    assert 0.0 <= infs.train_mode_accuracy(model, x, y, 17) <= 1.0
    with pytest.raises(ParameterError):
        infs.train_mode_accuracy(model, x, y, 1)


@pytest.mark.slow
def test_run_estimates_experiment_small() -> None:
    res = infs.run_estimates_experiment(steps=60, eval_every=20, lr=0.5)
    assert list(res.steps) == [20, 40, 60]
    assert res.replay_error < 1e-5
    for key in infs.ESTIMATES:
        assert res.accuracy[key].shape == (3,)
        assert np.all((res.accuracy[key] >= 0) & (res.accuracy[key] <= 1))
    np.testing.assert_allclose(res.d_mean["population"], 0.0)
    np.testing.assert_allclose(res.final_d_var["population"][-1], 0.0)
    # the EMA estimate is the trained model's buffers
    for (m, v), layer in zip(res.final["ema"], infs.bn_layers(res.model), strict=True):
        np.testing.assert_allclose(m, layer.running_mean.double().numpy())
        np.testing.assert_allclose(v, layer.running_var.double().numpy())
    # cumulative = window over all steps
    T = res.batch_means[0].shape[0]
    assert T == 60
    np.testing.assert_allclose(res.final["cumulative"][0][0], res.batch_means[0].mean(0), rtol=1e-12)
    np.testing.assert_allclose(res.final["late"][0][1], res.batch_vars[0][30:].mean(0), rtol=1e-12)
    rows = infs.evaluate_windows(res, {"all": (0, T), "late": (T // 2, T)}, res.model[0].weight.new_zeros(4, 64).numpy(),
                                 np.zeros(4, dtype=np.int64))
    assert rows["all"][1] == pytest.approx(res.final_d_mean["cumulative"][-1])
    assert rows["late"][2] == pytest.approx(res.final_d_var["late"][-1])


# ---------------------------------------------------------------------------- plots


def test_plot_momentum_rules_draws_each_rule() -> None:
    import matplotlib.pyplot as plt

    rules = {"a": 0.9, "b": 0.1}
    fig = infs.plot_momentum_rules(rules, n_steps=50, change_at=25)
    ax_w, ax_t = fig.axes
    assert len(ax_w.get_lines()) == 2
    assert len(ax_t.get_lines()) == 4  # batch statistic, truth, two rules
    slow = ax_t.get_lines()[3].get_ydata()
    fast = ax_t.get_lines()[2].get_ydata()
    assert abs(slow[0]) < abs(fast[0])  # the slow rule starts nearer its initial 0
    plt.close(fig)


def test_plot_companions_and_estimates() -> None:
    import matplotlib.pyplot as plt

    probs = np.full((3, 10), 0.1)
    fig = infs.plot_companions(probs, ["a", "b", "c"], 2, title="t")
    assert len(fig.axes[0].patches) == 30
    plt.close(fig)
    K = 4
    res = infs.EstimatesResult(
        steps=np.arange(1, K + 1) * 10, steps_per_epoch=5.0,
        accuracy={k: np.linspace(0.5, 0.9, K) for k in infs.ESTIMATES},
        d_mean={k: np.linspace(0.1, 0.2, K) for k in infs.ESTIMATES},
        d_var={k: np.linspace(0.1, 0.2, K) for k in infs.ESTIMATES},
        final_d_mean={}, final_d_var={}, layer=2, replay_error=0.0,
    )
    fig = infs.plot_estimates(res)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].get_lines()) == 4 and len(fig.axes[1].get_lines()) == 3
    plt.close(fig)


@pytest.mark.parametrize("fn", [lambda m: infs.running_average(np.ones(3), momentum=m),
                                lambda m: infs.past_batch_weights(m, 4)])
@pytest.mark.parametrize(("momentum", "message"), [(1.5, "got momentum=1.5"), (-0.1, "got momentum=-0.1"),
                                                   ("0.5", "must be a number"), (True, "must be a number")])
def test_momentum_is_checked_like_the_reference(fn: Any, momentum: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        fn(momentum)


def test_past_batch_weights_refuses_the_cumulative_average() -> None:
    with pytest.raises(ParameterError, match="momentum=None"):
        infs.past_batch_weights(None, 4)  # type: ignore[arg-type]
