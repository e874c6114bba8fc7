"""Notebook 02's experiments: noisy/ℓ1 BN, the Figure-1 recorder (given the exercises'
solutions, as the notebook passes ``best_available(...)``'s), saturation and gradient norms
per layer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from bncourse.course.models import make_mlp
from bncourse.errors import ParameterError, ShapeError
from bncourse.lessons.l02_internal_covariate_shift import experiments as ics
from bncourse.lessons.l02_internal_covariate_shift import solutions
from bncourse.nn.noisy import L1BatchNorm, NoisyShift


def test_noisy_shift_changes_each_step_and_is_identity_in_eval() -> None:
    layer = NoisyShift(4, seed=0)
    y = torch.zeros(100, 4)
    a, b = layer(y), layer(y)
    assert not torch.allclose(a.mean(0), b.mean(0)), "the noise distribution changes every step"
    assert a.mean(0).abs().max() > 0.05, "non-zero mean"
    layer.eval()
    assert torch.equal(layer(y), y)


def test_l1_batchnorm_normalizes_gaussians_like_bn() -> None:
    torch.manual_seed(0)
    x = torch.randn(20000, 3) * 5 + 2
    out = L1BatchNorm(3)(x)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(out.std(0), torch.ones(3), atol=2e-2, rtol=0)


def test_build_variant_and_errors() -> None:
    kinds = [type(m).__name__ for m in ics.build_variant("noisy BN")]
    assert kinds[1] == "Sequential"
    assert any(isinstance(m, L1BatchNorm) for m in ics.build_variant("ℓ1 BN"))
    with pytest.raises(ParameterError, match="variant must be one of"):
        ics.build_variant("GN")


def test_run_figure1_records_everything() -> None:
    torch.set_num_threads(1)
    run = ics.run_figure1("BN", steps=40, eval_every=20, etas=(0.5, 1.0),
                          percentile_fn=solutions.activation_percentiles,
                          predictiveness_fn=solutions.gradient_predictiveness)
    assert run.steps == [0, 20, 40]
    assert run.percentiles.shape == (3, 3)
    assert np.all(run.percentiles[:, 0] <= run.percentiles[:, 1])
    assert run.layer_mean.shape == (3, 3, 100) and run.loss_along.shape == (3, 2)
    assert ics.layer_shift(run).shape == (2, 3)
    quick = ics.run_figure1("no BN", steps=20, eval_every=20, probe_landscape=False,
                            percentile_fn=solutions.activation_percentiles)
    assert quick.loss_along.size == 0 and quick.grad_change.size == 0
    with pytest.raises(ParameterError, match="needs predictiveness_fn"):
        ics.run_figure1("no BN", steps=20, percentile_fn=solutions.activation_percentiles)


def test_run_figure1_probes_on_its_own_schedule_and_measures_gradient_ics() -> None:
    torch.set_num_threads(1)
    run = ics.run_figure1("noisy BN", steps=30, eval_every=30, etas=(0.5,), probe_ics=True, probe_steps=(0, 5, 30),
                          percentile_fn=solutions.activation_percentiles,
                          predictiveness_fn=solutions.gradient_predictiveness)
    assert run.steps == [0, 30] and run.probe_steps == [0, 5, 30]
    assert run.ics.shape == (3, 3, 3) and run.loss_along.shape == (3, 1) and run.probe_loss.shape == (3,)
    assert run.linear_mean.shape == (2, 3, 100)
    assert np.all(run.ics[:, :, 0] >= 0) and np.all(np.abs(run.ics[:, :, 2]) <= 1 + 1e-9)
    assert run.probe_loss[0] == pytest.approx(np.log(10), abs=0.3)


def test_gradient_ics_is_zero_when_the_earlier_layers_do_not_move() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    model = ics.build_variant("noisy BN")
    still = ics.gradient_ics(model, x, y, lr=0.0)
    np.testing.assert_allclose(still[:, 0], 0.0, atol=1e-12)  # same noise for G and G′, nothing moved
    np.testing.assert_allclose(still[:, 2], 1.0, atol=1e-6)
    moved = ics.gradient_ics(model, x, y, lr=1.0)
    assert moved.shape == (3, 3) and np.all(moved[:, 0] > 0)
    again = ics.gradient_ics(model, x, y, lr=1.0)
    np.testing.assert_allclose(moved, again)  # a copy is probed: the model is unchanged


def test_step0_percentiles_do_not_depend_on_bn_running_averages() -> None:
    """Step 0 with BN: the percentiles come from batch statistics, so the last layer's sigmoid input is
    standardized (median near β = 0), not distorted by running_mean = 0, running_var = 1."""
    run = ics.run_figure1("BN", steps=0, percentile_fn=solutions.activation_percentiles, probe_landscape=False)
    lo, med, hi = run.percentiles[0]
    assert abs(med) < 0.3 and 0.5 < hi - lo < 3.0


def test_gradient_norms_and_saturation() -> None:
    x = torch.randn(64, 64)
    y = torch.randint(0, 10, (64,))
    plain = ics.gradient_norms_per_layer(make_mlp(norm="none", init_scale=5.0), x, y)
    assert plain.shape == (4,)
    assert plain[0] < plain[-1], "without BN, large init saturates sigmoids and the first layer's gradient vanishes"
    fraction = solutions.saturated_fraction
    sat = ics.saturation_per_layer(make_mlp(norm="none", init_scale=5.0), x.numpy(), fraction)
    assert sat.shape == (3,) and sat.max() > 0.3
    assert ics.saturation_per_layer(make_mlp(norm="bn"), x.numpy(), fraction).max() < 0.1


def test_saturation_per_layer_uses_the_function_it_is_given() -> None:
    """The experiment takes the exercise's function (the student's, once it passes): every
    layer's sigmoid inputs reach it as float64 (N, D) arrays, with the threshold."""
    seen: list[tuple[tuple[int, ...], str, float]] = []

    def spy(z: np.ndarray, threshold: float) -> float:
        seen.append((z.shape, z.dtype.name, threshold))
        return 0.25

    x = torch.randn(16, 64)
    out = ics.saturation_per_layer(make_mlp(norm="bn"), x.numpy(), spy, threshold=0.1)
    np.testing.assert_array_equal(out, [0.25, 0.25, 0.25])
    assert seen == [((16, 100), "float64", 0.1)] * 3


def _fake_run(variant: str, t: int = 5, seed: int = 0) -> ics.Figure1Run:
    rng = np.random.default_rng(seed)
    steps = [50 * i for i in range(t)]
    return ics.Figure1Run(variant, steps, list(rng.uniform(0.1, 1.0, t)), np.sort(rng.normal(size=(t, 3)), axis=1),
                          rng.normal(size=(t, 3, 4)), rng.uniform(0.1, 1.0, (t, 3, 4)),
                          rng.uniform(0.1, 2.0, (t, 2)), rng.uniform(0.01, 1.0, (t, 2)), np.array([0.5, 1.0]),
                          seed=seed, linear_mean=rng.normal(size=(t, 3, 4)), linear_std=rng.uniform(0.1, 1.0, (t, 3, 4)),
                          probe_steps=steps, probe_loss=np.geomspace(2.3, 0.02, t) * rng.uniform(0.8, 1.2, t),
                          grad_norm=rng.uniform(0.5, 2.0, t), ics=rng.uniform(0.01, 1.0, (t, 3, 3)))


def _legends_cover_no_axes(fig: Any) -> bool:
    """True when every legend of ``fig`` is a figure legend lying outside all axes."""
    fig.canvas.draw()
    if any(ax.get_legend() is not None for ax in fig.axes):
        return False
    boxes = [ax.get_window_extent() for ax in fig.axes]
    return bool(fig.legends) and all(not leg.get_window_extent().overlaps(b) for leg in fig.legends for b in boxes)


def test_layer_stats_panels_have_their_own_std_axis() -> None:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    stds = np.stack([rng.uniform(0.1, 0.24, 20), rng.uniform(0.014, 0.033, 20), rng.uniform(0.002, 0.006, 20)])
    means = rng.uniform(-0.8, 0.9, (3, 20))
    fig = ics.plot_layer_stats(means, stds)
    axes = fig.axes
    assert len(axes) == 3
    assert not axes[0].get_shared_y_axes().joined(axes[0], axes[2])
    for ax, s in zip(axes, stds, strict=True):
        lo, hi = ax.get_ylim()
        assert lo == 0.0 and s.max() <= hi <= 1.2 * s.max(), "each layer's stds fill its own panel"
        assert ax.get_ylabel() and ax.get_xlabel() and ax.get_title()
    with pytest.raises(ShapeError, match="means and stds"):
        ics.plot_layer_stats(means, stds[:2])
    plt.close("all")


def test_notebook_02_figures_keep_their_legends_off_the_data() -> None:
    import matplotlib.pyplot as plt

    runs = {name: _fake_run(name, seed=k) for k, name in enumerate(("no BN", "BN", "noisy BN", "ℓ1 BN"))}
    fig1 = ics.plot_figure1([runs["no BN"], runs["BN"]])
    assert fig1.axes[0].get_legend() is not None  # (a) keeps its own legend: the variants
    assert all(ax.get_legend() is None for ax in fig1.axes[1:])
    leg = fig1.legends[0]
    assert [t.get_text().split("th")[0] for t in leg.get_texts()] == ["15", "50", "85"]

    grads = {name: np.array([1e-3, 1e-2, 1e-1, 0.5]) * (k + 1) for k, name in enumerate(("no BN", "BN", "BN after sigmoid"))}
    sat = {name: np.array([0.3, 0.2, 0.4]) for name in grads}
    fig2 = ics.plot_gradients_and_saturation(grads, sat)
    assert _legends_cover_no_axes(fig2)
    assert [t.get_text() for t in fig2.axes[0].get_xticklabels()] == ["W1", "W2", "W3", "W4 (output)"]
    assert fig2.axes[0].get_yscale() == "log"
    with pytest.raises(ParameterError, match="saturation has no entry"):
        ics.plot_gradients_and_saturation(grads, {"no BN": sat["no BN"]})

    groups = {name: [_fake_run(name, seed=10 * k + s) for s in range(3)] for k, name in enumerate(runs)}
    fig3 = ics.plot_accuracy_and_shift(groups, list(groups), max_step=200)
    assert _legends_cover_no_axes(fig3) and fig3.axes[0].get_xlim() == (0.0, 200.0)
    assert len(fig3.axes) == 3 and "BN's input" in fig3.axes[2].get_title()
    fig4 = ics.plot_landscape({name: groups[name] for name in ("no BN", "BN")})
    assert _legends_cover_no_axes(fig4)
    assert fig4.axes[0].get_xlim()[0] > fig4.axes[0].get_xlim()[1], "loss decreases left to right"
    fig5 = ics.plot_gradient_ics(groups)
    assert _legends_cover_no_axes(fig5) and all(ax.get_xlabel() and ax.get_title() for ax in fig5.axes)
    plt.close("all")


def test_figure1_percentile_panels_share_their_y_range_and_bands_cover_the_seeds() -> None:
    import matplotlib.pyplot as plt

    a, b = _fake_run("no BN", seed=0), _fake_run("BN", seed=1)
    b.percentiles = b.percentiles * 10
    fig = ics.plot_figure1([a, b], seeds={"no BN": [a, _fake_run("no BN", seed=2)], "BN": [b, b]})
    assert fig.axes[1].get_ylim() == fig.axes[2].get_ylim()
    lo, hi = fig.axes[1].get_ylim()
    assert lo <= min(a.percentiles.min(), b.percentiles.min()) and hi >= max(a.percentiles.max(), b.percentiles.max())
    assert "3 seeds" not in fig.axes[0].get_legend().get_texts()[0].get_text()
    assert "2 seeds" in fig.axes[0].get_legend().get_texts()[0].get_text()
    plt.close("all")


def test_binned_by_loss_and_derived_measures() -> None:
    run = _fake_run("BN")
    run.probe_loss = np.array([2.0, 1.0, 0.5, 0.25, 0.1])
    run.loss_along = np.array([[1.0, 3.0]] * 5)
    run.grad_change = np.array([[0.5, 4.0]] * 5)
    run.grad_norm = np.full(5, 2.0)
    np.testing.assert_allclose(run.loss_variation(), 2.0)
    np.testing.assert_allclose(run.effective_smoothness(), 2.0)  # max(0.5 / (0.5·2), 4 / (1·2))
    bins = ics.binned_by_loss([run, run], lambda r: r.probe_loss, [0.05, 0.3, 3.0])
    assert [n for _, _, n in bins] == [4, 6]
    assert bins[0][1] == pytest.approx(0.175) and bins[1][1] == pytest.approx(1.0)


def test_layer_shift_where() -> None:
    run = _fake_run("BN")
    assert ics.layer_shift(run, "linear output").shape == (4, 3)
    assert not np.allclose(ics.layer_shift(run, "linear output"), ics.layer_shift(run))
    with pytest.raises(ParameterError, match="where must be"):
        ics.layer_shift(run, "output")
