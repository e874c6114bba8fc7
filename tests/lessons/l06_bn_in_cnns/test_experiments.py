"""Notebook 06's experiments: spatial BN parity, the CNN runs and tables, deep stacks,
outliers, per-channel activations, folding BN.  (The exercises: ``test_exercises.py``.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bncourse.course.data import load_digits_split
from bncourse.course.models import make_cnn
from bncourse.course.training import History
from bncourse.errors import ParameterError, ShapeError
from bncourse.lessons.l06_bn_in_cnns import experiments as cx
from bncourse.reference import fold_batchnorm, spatial_batchnorm_backward, spatial_batchnorm_forward
from tests.lessons.l06_bn_in_cnns import mutants


@pytest.fixture(scope="module")
def digits() -> object:
    return load_digits_split(seed=0, images=True)


def _small(data: object, n_train: int = 200, n_test: int = 100) -> object:
    d = data
    return d._replace(x_train=d.x_train[:n_train], y_train=d.y_train[:n_train],  # type: ignore[attr-defined]
                      x_test=d.x_test[:n_test], y_test=d.y_test[:n_test])


# --------------------------------------------------------------------------- picture, parity


def test_shared_statistics_figure_colours_the_right_cells() -> None:
    fig = cx.plot_shared_statistics(n=2, c=3, h=2, w=2, channel=1, position=(0, 1))
    left, right = fig.axes
    red = np.array(plt_color(cx.COLORS["bn"]))

    def n_red(ax: object) -> int:
        return sum(np.allclose(p.get_facecolor(), red) for p in ax.patches)  # type: ignore[attr-defined]

    assert n_red(left) == 2 * 2 * 2  # N·H·W cells of one channel
    assert n_red(right) == 2  # N cells of one position
    with pytest.raises(ParameterError):
        cx.plot_shared_statistics(c=3, channel=3)


def plt_color(c: str) -> tuple[float, ...]:
    from matplotlib.colors import to_rgba

    return to_rgba(c)


def test_bn2d_parity_is_tiny_for_the_reference_and_large_for_a_wrong_forward() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 5, 5)) * np.array([1.0, 3.0, 0.5])[None, :, None, None] + 2.0
    g, b, dout = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=x.shape)
    errs = cx.bn2d_parity(spatial_batchnorm_forward, spatial_batchnorm_backward, x, g, b, dout)
    assert set(errs) == {"out", "dx", "dgamma", "dbeta"}
    assert max(errs.values()) < 1e-10

    def wrong_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> tuple:
        out, _ = mutants.forward_reshape_only(x, gamma, beta, eps)
        return out, spatial_batchnorm_forward(x, gamma, beta, eps)[1]

    bad = cx.bn2d_parity(wrong_forward, spatial_batchnorm_backward, x, g, b, dout)
    assert bad["out"] > 0.1
    with pytest.raises(ShapeError):
        cx.bn2d_parity(spatial_batchnorm_forward, spatial_batchnorm_backward, x[0], g, b, dout[0])


def test_running_buffer_parity_uses_m_equal_NHW() -> None:
    rng = np.random.default_rng(1)
    batches = [rng.normal(1.0, 2.0, size=(4, 3, 5, 5)) for _ in range(3)]
    res = cx.running_buffer_parity(batches)
    for key in ("numpy_vs_torch_mean", "numpy_vs_torch_var", "ours_vs_torch_mean", "ours_vs_torch_var",
                "ours_vs_torch_eval_out", "ours_vs_torch_eval_dx"):
        assert res[key] < 1e-10, key
    assert res["numpy_var_with_m_equal_N"] > 0.05  # N/(N-1) is a visible error


# --------------------------------------------------------------------------- runs and tables


def test_cnn_run_config_and_deep_model() -> None:
    assert cx.CNNRun("x", lr_multiplier=5).lr == pytest.approx(5 * cx.BASE_LR)
    deep = cx.make_deep_cnn(4, width=3, activation="tanh", norm="bn")
    assert len(cx.conv_layers(deep)) == 4
    assert all(c.bias is None for c in cx.conv_layers(deep))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in deep) == 4
    assert deep(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ParameterError):
        cx.make_deep_cnn(0)
    with pytest.raises(ParameterError):
        cx.make_deep_cnn(2, norm="gn")


def test_layer_gradient_norms_leave_model_untouched_and_show_vanishing() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    plain = cx.make_deep_cnn(8, width=4, activation="sigmoid", norm="none")
    g = cx.layer_gradient_norms(plain, x, y)
    assert g.shape == (8,)
    assert g[0] < 1e-3 * g[-1]  # vanishing towards the input
    bn = cx.make_deep_cnn(8, width=4, activation="sigmoid", norm="bn")
    bn.eval()
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    g_bn = cx.layer_gradient_norms(bn, x, y)
    assert g_bn[0] > 1e-2 * g_bn[-1]
    assert not bn.training
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None or not p.grad.any() for p in bn.parameters())


def test_corrupt_images() -> None:
    x = np.ones((10, 1, 2, 2), dtype=np.float32)
    out, idx = cx.corrupt_images(x, 3, magnitude=100.0, seed=0)
    assert len(idx) == 3 and len(set(idx.tolist())) == 3
    assert np.all(out[idx] == 100.0) and np.all(np.delete(out, idx, axis=0) == 1.0)
    assert np.all(x == 1.0)  # input untouched
    with pytest.raises(ParameterError):
        cx.corrupt_images(x, 11)


def test_train_run_records_gradients_and_classifier_lr(digits: object) -> None:
    small = _small(digits)
    res = cx.train_run(cx.CNNRun("bn"), small, steps=30)
    assert res.history.steps[0] == 0 and res.history.steps[-1] == 30
    assert cx.grad_norms_at(res.history, "init").shape == (2,)
    assert cx.grad_norms_at(res.history, "end").shape == (2,)
    assert "grad_norms" not in res.history.records[1]
    with pytest.raises(ParameterError):
        cx.grad_norms_at(res.history, "middle")
    # The classifier multiplier scales only the last layer's gradient: with multiplier 0
    # the classifier never moves while the convolutions do.
    frozen = cx.train_run(cx.CNNRun("frozen head", classifier_lr_multiplier=0.0), small, steps=5)
    fresh = make_cnn(cx.CHANNELS, norm="bn", seed=0)
    assert torch.equal(frozen.model[-1].weight, fresh[-1].weight)
    assert not torch.equal(frozen.model[0].weight, fresh[0].weight)


def test_bncourse_bn_swap_is_identical_in_float64(digits: object) -> None:
    d64 = _small(load_digits_split(seed=0, images=True, dtype=np.float64))
    h_t, h_o, diff = cx.compare_bn_implementations(d64, steps=20)
    assert diff < 1e-10
    assert h_t.test_acc == h_o.test_acc


def _hist(steps: list[int], acc: list[float]) -> History:
    return History(steps=steps, train_loss=[float("nan")] * len(steps), test_acc=acc,
                   records=[{} for _ in steps])


def _seeds(run: cx.CNNRun, *curves: list[float]) -> cx.SeedRuns:
    steps = [25 * i for i in range(len(curves[0]))]
    return cx.SeedRuns(run, tuple(range(len(curves))),
                       [cx.RunResult(run, _hist(steps[:len(c)], c), nn.Identity()) for c in curves])


def test_inception_table_counts_steps_to_each_seeds_baseline_max() -> None:
    grid = {
        "base": _seeds(cx.CNNRun("base", norm="none"), [0.1, 0.6, 0.5], [0.1, 0.4, 0.7]),
        "fast": _seeds(cx.CNNRun("fast", lr_multiplier=5), [0.1, 0.7, 0.9], [0.1, 0.5, 0.6]),
        "never": _seeds(cx.CNNRun("never", lr_multiplier=30), [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),
    }
    table = cx.inception_table(grid, "base", [("Inception", "base"), ("BN-x5", "fast"), ("BN-x30", "never")])
    # seed 0's target is 0.6 (reached by "fast" at step 25), seed 1's is 0.7 (never reached by "fast")
    assert [r["steps_to_target"] for r in table] == [[25, 50], [25, None], [None, None]]
    assert list(table[0]["targets"]) == pytest.approx([0.6, 0.7])
    assert list(table[1]["max_acc"]) == pytest.approx([0.9, 0.6])
    assert table[1]["lr"] == pytest.approx(5 * cx.BASE_LR)
    text = cx.format_inception_table(table)
    assert "31.0 M" in text and "never reaches it" not in text
    assert "25 (25–25), 1 of 2" in text and "never" in text and "75.0 (60.0–90.0)" in text
    gaps = cx.gap_table({**cx.first_seed(grid), "fast3": grid["fast"]}, [("s", "base", "fast"), ("m", "base", "fast3")])
    assert gaps[0]["gain"] == pytest.approx(0.3) and gaps[0]["n_seeds"] == 1
    assert gaps[1]["bn"] == pytest.approx(0.75) and gaps[1]["n_seeds"] == 1  # min over the pair


def test_seed_runs_pad_a_diverged_run_and_plot_bands() -> None:
    sr = _seeds(cx.CNNRun("bn"), [0.1, 0.5, 0.8], [0.1, 0.3])  # the second run diverged early
    acc = sr.accuracy_matrix()
    assert acc.shape == (2, 3) and acc[1, 2] == pytest.approx(0.3)
    assert list(sr.steps) == [0, 25, 50]
    fig = cx.plot_learning_curves({"bn": sr}, [("t", ["bn"])])
    ax = fig.axes[0]
    assert len(ax.collections) == 1 and "2 seeds" in ax.get_ylabel()
    assert np.allclose(ax.lines[0].get_ydata(), [0.1, 0.4, 0.55])
    assert cx.mean_and_range([None, None]) == "never"
    assert cx.mean_and_range([100, 150, None]) == "125 (100–150), 2 of 3"


def test_train_seeds_trains_each_seed(digits: object) -> None:
    small = _small(digits, n_train=100, n_test=50)
    grid = cx.train_seeds([cx.CNNRun("bn")], small, seeds=(0, 1), steps=5)
    sr = grid["bn"]
    assert sr.seeds == (0, 1) and len(sr.results) == 2
    assert not torch.equal(sr.results[0].model[0].weight, sr.results[1].model[0].weight)
    assert cx.first_seed(grid)["bn"] is sr.results[0]
    with pytest.raises(ParameterError):
        cx.train_seeds([cx.CNNRun("a"), cx.CNNRun("a")], small, steps=1)


def test_paper_table_is_quoted_exactly() -> None:
    rows = {r[0]: r for r in cx.PAPER_INCEPTION}
    assert rows["Inception"][1:] == ("0.0015", "31.0 M", "72.2 %")
    assert rows["BN-x5"][1:] == ("0.0075", "2.1 M", "73.0 %")
    assert rows["BN-x30"][1:] == ("0.045", "2.7 M", "74.8 %")
    assert rows["BN-x5-Sigmoid"][2:] == ("never reaches it", "69.8 %")


# --------------------------------------------------------------------------- channels, folding


def test_bn_channel_activations_are_normalized_per_channel() -> None:
    model = make_cnn(cx.CHANNELS, norm="bn", seed=0)
    x = np.random.default_rng(3).random((64, 1, 8, 8)).astype(np.float32)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    before, after = cx.bn_channel_activations(model, x, which=0)
    assert before.shape == after.shape == (64, cx.CHANNELS[0], 8, 8)
    # γ = 1, β = 0 at initialization: after BN each channel has mean 0 and std 1
    np.testing.assert_allclose(after.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(after.std(axis=(0, 2, 3)), 1.0, atol=1e-3)
    assert np.abs(before.mean(axis=(0, 2, 3))).max() > 1e-3
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k
    with pytest.raises(ParameterError):
        cx.bn_channel_activations(model, x, which=5)


def test_recompute_bn_statistics_matches_population_statistics() -> None:
    model = make_cnn(cx.CHANNELS, norm="bn", seed=0)
    x = np.random.default_rng(4).random((300, 1, 8, 8)).astype(np.float32)
    fixed = cx.recompute_bn_statistics(model, x, batch_size=100)
    assert not fixed.training
    with torch.no_grad():
        z = model[0](torch.as_tensor(x))
    np.testing.assert_allclose(fixed[1].running_mean.numpy(), z.mean(dim=(0, 2, 3)).numpy(), rtol=1e-4, atol=1e-6)
    # the original is untouched
    assert torch.equal(model[1].running_mean, torch.zeros(cx.CHANNELS[0]))


def _trained_bn_model() -> nn.Sequential:
    model = make_cnn(cx.CHANNELS, norm="bn", seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0, generator=gen)
                m.bias.normal_(generator=gen)
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    return model.eval()


@pytest.mark.parametrize("fold", [fold_batchnorm, mutants.fold_loop])
def test_fold_model_equals_the_bn_model(fold: object) -> None:
    model = _trained_bn_model()
    folded = cx.fold_model(model, fold)  # type: ignore[arg-type]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded)
    assert len(folded) == len(model) - 2
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_fold_model_with_a_wrong_fold_differs() -> None:
    model = _trained_bn_model()
    folded = cx.fold_model(model, mutants.fold_no_mean)
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (folded(x) - model(x)).abs().max().item() > 1e-2


def test_forward_seconds_is_positive() -> None:
    assert cx.forward_seconds(nn.Identity(), np.zeros((2, 3), dtype=np.float32), repeats=3) > 0
