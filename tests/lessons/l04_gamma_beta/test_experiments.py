"""Notebook 04's experiments: sigmoid linearity, saturation, BN as a diagonal layer and the γ/β
widget (the solutions are tested in test_solutions.py, the exercises in test_exercises.py)."""

from __future__ import annotations

import numpy as np

from bncourse.lessons.l04_gamma_beta import experiments as ss
from bncourse.reference import batchnorm_inference


def test_sigmoid_is_nearly_linear_on_normalized_inputs() -> None:
    r2 = ss.sigmoid_linearity([0.5, 1.0, 4.0])
    assert r2[0] > r2[1] > r2[2]
    assert r2[1] > 0.97 and r2[2] < 0.9


def test_saturated_fraction() -> None:
    assert ss.saturated_fraction(np.array([0.0, 0.5])) == 0.0
    assert ss.saturated_fraction(np.array([-5.0, 5.0, 0.0, 0.0])) == 0.5


def test_bn_as_linear_is_diagonal_and_equals_inference() -> None:
    rng = np.random.default_rng(1)
    d = 5
    gamma, beta = rng.uniform(0.5, 2, d), rng.normal(size=d)
    mean, var = rng.normal(size=d), rng.uniform(0.5, 2, d)
    W, b = ss.bn_as_linear(gamma, beta, mean, var)
    assert np.count_nonzero(W - np.diag(np.diag(W))) == 0
    x = rng.normal(size=(7, d))
    np.testing.assert_allclose(x @ W.T + b, batchnorm_inference(x, gamma, beta, mean, var), rtol=0, atol=1e-12)


def test_gamma_beta_widget_redraws() -> None:
    import matplotlib

    matplotlib.use("Agg")
    z = np.random.default_rng(4).normal(size=500) * 3 + 1
    w = ss.gamma_beta_widget(z)
    f1, f2 = w.draw(1.0, 0.0), w.draw(4.0, 2.0)
    h1 = [p.get_height() for p in f1.axes[0].patches]
    h2 = [p.get_height() for p in f2.axes[0].patches]
    assert h1 != h2
    import re

    pct = [int(re.search(r"(\d+) % saturated", f.axes[0].get_title()).group(1)) for f in (f1, f2)]
    assert pct[0] <= 2 and pct[1] >= 30, pct


def test_widget_counts_values_beyond_the_axis_and_keeps_the_legend_off_the_bars() -> None:
    import matplotlib

    matplotlib.use("Agg")
    z = np.random.default_rng(4).normal(size=500)
    w = ss.gamma_beta_widget(z)
    inside, outside = w.draw(1.0, 0.0), w.draw(6.0, 5.0)
    assert "beyond" not in inside.axes[0].get_title()
    expected = 100 * np.mean(np.abs(6.0 * (z - z.mean()) / np.sqrt(z.var() + 1e-5) + 5.0) > ss.HIST_RANGE)
    assert f"{expected:.0f} % of values beyond ±8" in outside.axes[0].get_title()
    for fig in (inside, outside):
        assert fig.axes[0].get_legend() is None and len(fig.legends) == 1  # a figure legend, outside the axes
    static = ss.plot_saturation_examples(z, [(1.0, 0.0), (6.0, 5.0)])
    assert "beyond" in static.axes[1].get_title() and len(static.legends) == 1


def test_scale_shift_bn_parameters() -> None:
    import pytest
    import torch

    from bncourse.errors import ParameterError

    learn, frozen, none = ss.ScaleShiftBN(3, "learn", True), ss.ScaleShiftBN(3, 8.0, False), ss.ScaleShiftBN(3, None, False)
    assert learn.weight is not None and learn.bias is not None
    assert frozen.weight is None and frozen.bias is None and frozen.fixed_gamma == 8.0
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(frozen(x), 8.0 * none(x))
    with pytest.raises(ParameterError):
        ss.ScaleShiftBN(3, "sometimes", True)
    model = ss.variant_model(ss.VARIANTS["BN after the sigmoid, no γ, β"], width=4)
    assert [type(m).__name__ for m in model] == ["Linear", "Sigmoid", "ScaleShiftBN", "Linear"]
    assert [type(m).__name__ for m in ss.variant_model(ss.VARIANTS["no BN"], width=4)] == ["Linear", "Sigmoid", "Linear"]


def test_without_beta_the_circles_network_is_odd_up_to_a_constant() -> None:
    from bncourse.course.data import make_circles_split

    data = make_circles_split(n_train=300, n_test=100, seed=0)
    res = ss.train_variants(data, ["BN, γ only", "BN, β only"], seeds=(0,), steps=100)
    assert ss.symmetry_ratio(res.models["BN, γ only"], data.x_test) < 0.1  # d(x) + d(−x) ≈ const
    assert ss.symmetry_ratio(res.models["BN, β only"], data.x_test) > 0.5
    assert np.isnan(res.gamma_abs_mean["BN, β only"][0]) and res.gamma_abs_mean["BN, γ only"][0] > 0


def test_stripes_alternate() -> None:
    data = ss.make_stripes(n_train=400, n_test=10, stripes=4, seed=1)
    x, y = data.x_train[:, 0], data.y_train
    assert data.x_train.shape == (400, 1) and set(np.unique(y)) == {0, 1}
    order = np.argsort(x)
    assert np.count_nonzero(np.diff(y[order])) == 3  # four stripes, three boundaries
    assert np.all(y[x < -0.5] == 0) and np.all(y[(x > -0.5) & (x < 0)] == 1)


def test_saturation_stats_at_initialization() -> None:
    from bncourse.course.data import load_digits_split
    from bncourse.course.models import make_mlp

    model = make_mlp(norm="bn", seed=0)
    stats = ss.saturation_stats(model, load_digits_split(seed=0).x_test)
    assert len(stats.gamma_abs_max) == 3 and all(g == 1.0 for g in stats.gamma_abs_max)
    # γ = 1, β = 0: the trained and the initial fractions are the same number
    np.testing.assert_allclose(stats.saturated, stats.saturated_at_init)
    assert stats.units_mostly_saturated == [0, 0, 0] or max(stats.saturated) > 0.1
