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
                          rng.uniform(0.1, 2.0, (t, 2)), rng.uniform(0.01, 1.0, (t, 2)), np.array([0.5, 1.0]))


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

    grads = {name: np.array([1e-3, 1e-2, 1e-1, 0.5]) * (k + 1) for k, name in enumerate(("no BN", "BN", "BN after σ"))}
    sat = {name: np.array([0.3, 0.2, 0.4]) for name in grads}
    fig2 = ics.plot_gradients_and_saturation(grads, sat)
    assert _legends_cover_no_axes(fig2)
    assert [t.get_text() for t in fig2.axes[0].get_xticklabels()] == ["W1", "W2", "W3", "W4 (output)"]
    assert fig2.axes[0].get_yscale() == "log"
    with pytest.raises(ParameterError, match="saturation has no entry"):
        ics.plot_gradients_and_saturation(grads, {"no BN": sat["no BN"]})

    shift = {name: np.abs(np.diff(run.layer_mean.mean(axis=2), axis=0)) for name, run in runs.items()}
    fig3 = ics.plot_accuracy_and_shift(runs, shift, list(runs), max_step=200)
    assert _legends_cover_no_axes(fig3) and fig3.axes[0].get_xlim() == (0.0, 200.0)
    fig4 = ics.plot_landscape([runs["no BN"], runs["BN"]])
    assert _legends_cover_no_axes(fig4)
    plt.close("all")
