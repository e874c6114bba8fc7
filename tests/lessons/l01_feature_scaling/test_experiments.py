"""bncourse.lessons.l01_feature_scaling.experiments: the quadratic loss, its Hessian and condition number, GD and Adam
paths, the step counts (the closed form agrees with the exercise's loop), figures and widget.  The experiments
that need an exercise's function get its solution from
:mod:`bncourse.lessons.l01_feature_scaling.solutions`, as the notebook passes ``best_available(...)``'s."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from bncourse.course.data import make_two_scale_regression
from bncourse.errors import BNCourseError, ParameterError, ShapeError
from bncourse.lessons.l01_feature_scaling import experiments as landscape
from bncourse.lessons.l01_feature_scaling import solutions


def _problem(seed: int = 0, n: int = 40, d: int = 2, scales: tuple[float, ...] = (1.0, 7.0)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.asarray(scales[:d]) + rng.standard_normal(d)
    y = x @ rng.standard_normal(d) + 0.3 + 0.1 * rng.standard_normal(n)
    return x, y


def test_gradient_matches_centered_differences() -> None:
    x, y = _problem()
    theta = np.array([0.3, -0.2, 0.7])
    h = 1e-6
    numeric = np.array([
        (landscape.mse_loss(theta + h * e, x, y) - landscape.mse_loss(theta - h * e, x, y)) / (2 * h) for e in np.eye(3)
    ])
    np.testing.assert_allclose(landscape.mse_gradient(theta, x, y), numeric, rtol=1e-6, atol=1e-8)


def test_hessian_matches_differences_of_the_gradient_and_is_independent_of_y() -> None:
    x, y = _problem(1)
    theta = np.array([0.1, 0.2, -0.3])
    h = 1e-5
    numeric = np.stack([
        (landscape.mse_gradient(theta + h * e, x, y) - landscape.mse_gradient(theta - h * e, x, y)) / (2 * h) for e in np.eye(3)
    ])
    np.testing.assert_allclose(landscape.hessian(x), numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(landscape.hessian(x), landscape.hessian(x).T)


def test_condition_number_is_the_square_of_the_design_matrix_condition() -> None:
    x, _ = _problem(2)
    xt = np.hstack([x, np.ones((len(x), 1))])
    assert landscape.condition_number(x) == pytest.approx(np.linalg.cond(xt) ** 2, rel=1e-8)
    assert landscape.condition_number(np.ones((5, 1))) == float("inf")  # constant feature = the bias column


def test_condition_number_grows_like_the_square_of_the_scale_ratio() -> None:
    k10 = landscape.condition_number(make_two_scale_regression(n=2000, scale_ratio=10.0)[0])
    k100 = landscape.condition_number(make_two_scale_regression(n=2000, scale_ratio=100.0)[0])
    assert 80 < k100 / k10 < 120


def test_least_squares_has_zero_gradient_and_matches_numpy() -> None:
    x, y = _problem(3)
    theta = landscape.least_squares(x, y)
    np.testing.assert_allclose(landscape.mse_gradient(theta, x, y), 0.0, atol=1e-10)
    xt = np.hstack([x, np.ones((len(x), 1))])
    np.testing.assert_allclose(theta, np.linalg.solve(xt.T @ xt, xt.T @ y), rtol=1e-8)


def test_largest_stable_learning_rate_is_two_over_lambda_max() -> None:
    x, y = _problem(4)
    lr_max = landscape.max_stable_lr(x)
    assert lr_max == pytest.approx(2.0 / np.linalg.eigvalsh(landscape.hessian(x)).max())
    start = landscape.mse_loss(np.zeros(3), x, y)
    below = landscape.gd_path(x, y, 0.98 * lr_max, 3000)[-1]
    above = landscape.gd_path(x, y, 1.02 * lr_max, 3000)[-1]
    assert landscape.mse_loss(below, x, y) < start
    assert not np.all(np.isfinite(above)) or landscape.mse_loss(above, x, y) > 1e6 * start


def test_gd_path_steps_along_the_negative_gradient() -> None:
    x, y = _problem(5)
    theta0 = np.array([1.0, -1.0, 0.5])
    path = landscape.gd_path(x, y, 0.01, 3, theta0)
    assert path.shape == (4, 3)
    np.testing.assert_allclose(path[0], theta0)
    for t in range(3):
        np.testing.assert_allclose(path[t + 1], path[t] - 0.01 * landscape.mse_gradient(path[t], x, y), rtol=1e-12)


def test_adam_first_step_moves_every_parameter_by_lr() -> None:
    x, y = make_two_scale_regression(n=100, scale_ratio=100.0)
    path = landscape.adam_path(x, y, 0.01, 1)
    np.testing.assert_allclose(np.abs(path[1] - path[0]), 0.01, rtol=1e-5)  # whatever the gradient scale


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("lr_fraction", [0.2, 0.5, 0.95, 1.1])
def test_closed_form_step_count_equals_the_loop(seed: int, lr_fraction: float) -> None:
    x, y = _problem(seed, scales=(1.0, 1.0 + 3 * seed))
    lr = lr_fraction * landscape.max_stable_lr(x)
    for tol, max_steps in ((1e-6, 20_000), (1e-3, 50)):
        loop = solutions.gd_steps_to_converge(x, y, lr, tol, max_steps)
        assert landscape.gd_steps_closed_form(x, y, lr, tol, max_steps) == loop
        if lr_fraction > 1:
            assert loop == -1


def test_step_count_edge_cases() -> None:
    x, _ = _problem(6)
    assert solutions.gd_steps_to_converge(x, np.zeros(len(x)), 0.1) == 0  # gradient 0 at the start
    assert landscape.gd_steps_closed_form(x, np.zeros(len(x)), 0.1) == 0
    x1, y1 = np.array([[1.0], [-1.0]]), np.array([1.0, 2.0])  # H = I: lr = 1 solves it in one step
    assert solutions.gd_steps_to_converge(x1, y1, 1.0) == 1 == landscape.gd_steps_closed_form(x1, y1, 1.0)
    with pytest.raises(ParameterError):
        solutions.gd_steps_to_converge(x1, y1, -0.1)
    with pytest.raises(ShapeError):
        solutions.gd_steps_to_converge(x1, np.zeros(3), 0.1)


def test_steps_grow_linearly_with_kappa() -> None:
    recs = landscape.steps_vs_condition([8.0, 32.0], steps_fn=landscape.gd_steps_closed_form,
                                         standardize_fn=solutions.standardize)
    raw = [r for r in recs if not r.standardized]
    std = [r for r in recs if r.standardized]
    slope = np.log(raw[1].steps / raw[0].steps) / np.log(raw[1].kappa / raw[0].kappa)
    assert 0.9 < slope < 1.2
    assert all(r.kappa < 2 and r.steps < 20 for r in std)
    assert all(r.lr == pytest.approx(0.5 * 2 / np.linalg.eigvalsh(landscape.hessian(
        make_two_scale_regression(scale_ratio=r.scale_ratio)[0])).max()) for r in raw)


def test_loss_on_grid_matches_pointwise_loss() -> None:
    x, y = _problem(8)
    w1, w2 = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-2, 2, 3))
    grid = landscape.loss_on_grid(x, y, w1, w2, 0.25)
    assert grid.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert grid[i, j] == pytest.approx(landscape.mse_loss([w1[i, j], w2[i, j], 0.25], x, y), rel=1e-10)
    with pytest.raises(ShapeError):
        landscape.loss_on_grid(np.ones((3, 3)), np.ones(3), w1, w2, 0.0)


def test_lr_sweep_shows_that_the_flat_weight_lags_and_large_lr_diverges() -> None:
    x, y = make_two_scale_regression(n=200, scale_ratio=100.0)
    errs = landscape.lr_sweep(x, y, [0.1, 0.5, 0.99, 1.05], steps=500)
    assert np.all(errs[:3] < 1.0) and np.all(errs[3] > 1e6)
    assert np.all(errs[:3, 0] > 0.8)  # w1 is still far away at every stable lr
    assert np.all(np.diff(errs[:3, 0]) < 0)  # ... and a larger lr helps it


def test_relative_weight_errors_shape_checks() -> None:
    with pytest.raises(BNCourseError):
        landscape.relative_weight_errors(np.zeros((3, 3)), np.zeros(2))
    np.testing.assert_allclose(landscape.relative_weight_errors([[2.0, 0.0]], [1.0, 0.0]), [[1.0, 0.0]])


def test_input_validation_messages_name_the_shapes() -> None:
    with pytest.raises(ShapeError, match=r"shape \(3,\)"):
        landscape.mse_loss(np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(ShapeError, match="theta"):
        landscape.mse_gradient(np.zeros(2), np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ParameterError):
        landscape.steps_vs_condition([1.0], steps_fn=landscape.gd_steps_closed_form,
                                     standardize_fn=solutions.standardize, lr_fraction=1.5)


def test_contour_plot_draws_paths_and_the_minimum() -> None:
    import matplotlib.pyplot as plt

    x, y = make_two_scale_regression(n=100, scale_ratio=10.0)
    fig, ax = plt.subplots()
    path = landscape.gd_path(x, y, 0.5 * landscape.max_stable_lr(x), 20)
    landscape.plot_contours_with_paths(ax, x, y, {"GD": path}, title="t")
    labels = [line.get_label() for line in ax.get_lines()]
    assert "GD" in labels and "minimum" in labels
    np.testing.assert_allclose(np.asarray(ax.get_lines()[0].get_xdata(), dtype=float), path[:, 0])
    plt.close(fig)


def test_widget_redraws_with_the_scale_ratio() -> None:
    import matplotlib.pyplot as plt

    box = landscape.scale_ratio_widget(steps=10, standardize_fn=solutions.standardize)
    slider_names = [w.description for w in box.children[0].children]
    assert slider_names == ["scale ratio", "lr · λmax/2"]
    f1 = box.draw(1.0, 0.5)
    f10 = box.draw(10.0, 0.5)
    t1, t10 = f1.axes[0].get_title(), f10.axes[0].get_title()
    assert t1 != t10 and "κ" in t1
    y1 = f1.axes[0].get_lines()[0].get_ydata()
    y10 = f10.axes[0].get_lines()[0].get_ydata()
    assert not np.allclose(y1[-1], y10[-1])  # the path ends elsewhere
    f_div = box.draw(10.0, 1.05)  # a diverging run draws without raising
    assert "w1 still" in f_div.axes[1].get_title() and "% away" in f_div.axes[1].get_title()
    plt.close("all")
    assert f_div.axes


def test_widget_titles_round_the_log_slider_values() -> None:
    import matplotlib.pyplot as plt

    box = landscape.scale_ratio_widget(steps=5, standardize_fn=solutions.standardize)
    fig = box.draw(10**1.1, 0.15000000000000002)  # values the log slider and the float slider produce
    title = fig.get_suptitle()
    assert "12.6×" in title and "12.5893" not in title and "lr = 0.15 ·" in title
    assert box.draw(10**0.5, 0.5).get_suptitle().startswith("x2 is 3.16× larger")
    plt.close("all")


@pytest.mark.parametrize(("rel_err", "text"), [(0.8, "80 % away"), (0.004, "0.4 % away"), (1e-9, "< 0.1 % away"),
                                                (12.0, "> 999 % away (diverging)"),
                                                (float("nan"), "> 999 % away (diverging)")])
def test_widget_distance_text(rel_err: float, text: str) -> None:
    assert landscape._fmt_distance(rel_err) == text


def test_contour_legend_sits_in_the_corner_away_from_the_paths() -> None:
    import matplotlib.pyplot as plt

    x, y = make_two_scale_regression(n=100, scale_ratio=100.0)
    fig, ax = plt.subplots()
    path = landscape.gd_path(x, y, 0.95 * landscape.max_stable_lr(x), 50)  # zig-zags along w1 = 0
    landscape.plot_contours_with_paths(ax, x, y, {"GD": path}, half_width=2.6, half_height=0.05,
                                       equal_aspect=False)
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent().transformed(ax.transData.inverted())
    assert box.x0 > float(np.max(path[:, 0])), "the legend must not cover the path"
    plt.close(fig)


def test_steps_until_within_requires_staying_close() -> None:
    theta_star = np.array([1.0, 1.0])
    path = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 1.0], [1.001, 1.0], [1.0, 1.0]])
    assert landscape.steps_until_within(path, theta_star, 0.01) == 3
    assert landscape.steps_until_within(path[:3], theta_star, 0.01) == -1
    assert landscape.steps_until_within(path[1:2], theta_star, 0.01) == 0


def test_steps_vs_kappa_plot_reports_the_fitted_slope() -> None:
    import matplotlib.pyplot as plt

    recs = [landscape.ConvergenceRecord(r, False, 10.0 * r**2, 0.1, int(50 * r**2)) for r in (1.0, 2.0, 4.0)]
    recs.append(landscape.ConvergenceRecord(1.0, True, 1.1, 1.0, 6))
    fig, ax = plt.subplots()
    slope = landscape.plot_steps_vs_kappa(ax, recs, tol=1e-6)
    assert slope == pytest.approx(1.0, abs=0.02)
    assert [t.get_text() for t in ax.texts] == ["×1", "×2", "×4"]
    recs_odd = [landscape.ConvergenceRecord(10**0.5, False, 100.0, 0.1, 500),
                landscape.ConvergenceRecord(10.0, False, 1e4, 0.1, 50000)]
    fig2, ax2 = plt.subplots()
    landscape.plot_steps_vs_kappa(ax2, recs_odd, tol=1e-6)
    assert [t.get_text() for t in ax2.texts] == ["×3.16", "×10"]
    plt.close(fig2)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    plt.close(fig)


def test_figures_show_what_they_claim() -> None:
    import matplotlib.pyplot as plt

    x, y = make_two_scale_regression(n=100, scale_ratio=100.0)
    x_std = solutions.standardize(x, x)[0]
    fig, paths = landscape.elongated_bowl_figure(x, y, x_std, steps=30)
    assert len(fig.axes) == 3 and set(paths) == {"raw", "raw_edge", "std"}
    assert fig.axes[2].get_aspect() == 1.0 and fig.axes[1].get_aspect() == "auto"
    along_w1, along_w2 = fig.axes[0].get_lines()  # the loss along each weight: w2's rises ~1e4 times faster
    assert float(np.max(along_w2.get_ydata())) > 1e3 * float(np.max(along_w1.get_ydata()))
    shown = [ln for ln in fig.axes[1].get_lines() if ln.get_label().startswith("GD")]
    assert [len(ln.get_xdata()) for ln in shown] == [31, 31]  # the first zigzag_steps = 30 steps (steps=30)
    xlim = fig.axes[1].get_xlim()  # zoomed on the paths: the minimum (w1 ≈ 2) lies outside
    assert xlim[1] < 1.0 and any("off the panel" in str(t.get_text()) for t in fig.axes[1].get_legend().get_texts())
    err = landscape.relative_weight_errors(paths["std"][-1:], landscape.least_squares(x_std, y))
    assert err.max() < 1e-6  # standardized GD is done within 30 steps, raw is not
    assert landscape.relative_weight_errors(paths["raw"][-1:], landscape.least_squares(x, y))[0, 0] > 0.9
    fr = [0.1, 0.5, 1.1]
    f2 = landscape.lr_sweep_figure(fr, landscape.lr_sweep(x, y, fr, 50), landscape.lr_sweep(x_std, y, fr, 50), 50)
    assert max(max(np.asarray(ln.get_ydata(), dtype=float)) for ln in f2.axes[0].get_lines()[:3]) <= 1e6
    f3 = landscape.optimizer_comparison_figure(x, y, {"GD": paths["raw"], "Adam": landscape.adam_path(x, y, 0.01, 30)})
    assert len(f3.axes) == 2 and f3.axes[1].get_xscale() == "log"
    plt.close("all")
