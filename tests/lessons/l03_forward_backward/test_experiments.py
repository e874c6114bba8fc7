"""bncourse.lessons.l03_forward_backward.experiments: notebook 03's experiments, checked against independent computations."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bncourse import reference
from bncourse.errors import ParameterError, ShapeError
from bncourse.lessons.l03_forward_backward import experiments as backprop
from bncourse.reference.gradcheck import numerical_gradient


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 3)) * 2 + 1, rng.uniform(0.5, 2.0, 3), rng.standard_normal(3)


def test_jacobian_matches_closed_form_and_finite_differences(batch) -> None:
    x, gamma, beta = batch
    J = backprop.bn_jacobian(x, gamma, beta)
    n, d = x.shape
    var = x.var(axis=0)
    x_hat = (x - x.mean(0)) / np.sqrt(var + 1e-5)
    for k in range(d):
        closed = gamma[k] / (n * np.sqrt(var[k] + 1e-5)) * (
            n * np.eye(n) - np.ones((n, n)) - np.outer(x_hat[:, k], x_hat[:, k])
        )
        np.testing.assert_allclose(J[:, k, :, k], closed, rtol=1e-10, atol=1e-12, err_msg=f"feature {k}")
        for e in range(d):
            if e != k:
                assert np.all(J[:, k, :, e] == 0.0)
    # one row by centered differences: d y[i, k] / d x
    i, k = 2, 1
    dout = np.zeros_like(x)
    dout[i, k] = 1.0
    num = numerical_gradient(lambda v: reference.batchnorm_forward(v, gamma, beta)[0], x, dout)
    np.testing.assert_allclose(J[i, k], num, rtol=1e-6, atol=1e-8)
    off = J[:, 0, :, 0][~np.eye(n, dtype=bool)]
    assert np.abs(off).max() > 0.05  # coupled: off-diagonal entries are not negligible


def test_jacobian_rejects_non_2d() -> None:
    with pytest.raises(ShapeError, match=r"\(N, D\)"):
        backprop.bn_jacobian(np.zeros(4), np.ones(4), np.zeros(4))


def test_constant_stats_jacobian_is_diagonal(batch) -> None:
    x, gamma, _ = batch
    J = backprop.bn_jacobian_constant_stats(x, gamma)
    M = backprop.jacobian_matrix(J)
    np.testing.assert_allclose(np.diag(M), np.repeat(gamma / np.sqrt(x.var(0) + 1e-5), x.shape[0]))
    assert np.count_nonzero(M - np.diag(np.diag(M))) == 0


def test_jacobian_matrix_is_feature_major() -> None:
    J = np.zeros((2, 3, 2, 3))
    J[1, 2, 0, 2] = 7.0  # d y[1, feature 2] / d x[0, feature 2]
    M = backprop.jacobian_matrix(J)
    assert M[2 * 2 + 1, 2 * 2 + 0] == 7.0 and np.count_nonzero(M) == 1


def test_constant_stats_backward_only_dx_differs(batch) -> None:
    x, gamma, beta = batch
    dout = np.random.default_rng(1).standard_normal(x.shape)
    from bncourse import oracle

    _, cache = oracle.batchnorm_forward(x, gamma, beta)
    dx_c, dg_c, db_c = backprop.batchnorm_backward_constant_stats(dout, cache)
    dx, dg, db = reference.batchnorm_backward(dout, reference.batchnorm_forward(x, gamma, beta)[1])
    np.testing.assert_allclose(dg_c, dg)
    np.testing.assert_allclose(db_c, db)
    np.testing.assert_allclose(dx_c, dout * gamma / np.sqrt(x.var(0) + 1e-5))
    assert not np.allclose(dx_c, dx)


def test_constant_stats_error_shape_of_the_claims() -> None:
    ms = [2, 8, 128]
    zero_mean = backprop.constant_stats_error(ms, dout_mean=0.0)
    shifted = backprop.constant_stats_error(ms, dout_mean=1.0)
    assert zero_mean[0] > 10 and shifted[0] > 10  # m = 2: the true dx is ~0
    assert zero_mean[2] < zero_mean[1] < 1.0  # shrinks with m for zero-mean dy
    assert shifted[2] > 0.9  # ~100 % for a common component, whatever m
    with pytest.raises(ParameterError):
        backprop.constant_stats_error([1])


def test_bias_drift_true_gradient_keeps_b_fixed_wrong_gradient_does_not() -> None:
    true_run = backprop.bias_drift_experiment(False, steps=60)
    wrong = backprop.bias_drift_experiment(True, steps=60)
    assert np.abs(true_run.bias_norm).max() < 1e-12
    assert np.all(np.diff(wrong.bias_norm) > 0)
    assert wrong.bias_norm[-1] > 3 * wrong.bias_norm[5]
    assert wrong.loss[-1] > true_run.loss[-1]
    assert true_run.loss[-1] < true_run.loss[0]


def test_forward_difference_has_error_h() -> None:
    x = np.array([[0.5, -1.0, 2.0]])
    g = backprop.forward_difference_gradient(lambda v: v**2, x, np.ones_like(x), h=1e-3)
    np.testing.assert_allclose(g, 2 * x + 1e-3, rtol=1e-7)  # ((x+h)^2 - x^2)/h = 2x + h


def test_finite_difference_errors_v_shape() -> None:
    hs = [1e-2, 1e-5, 1e-8]
    e64 = backprop.finite_difference_errors(hs, np.float64)
    e32 = backprop.finite_difference_errors(hs, np.float32)
    assert e64["centered"][1] < 1e-8 < e64["forward"][1]
    assert e64["centered"][1] < e64["centered"][0] and e64["centered"][1] < e64["centered"][2]
    assert min(e32["centered"]) > 1e-6  # float32 cannot resolve a gradient check


def test_torch_grads_match_reference(batch) -> None:
    x, gamma, beta = batch
    dout = np.random.default_rng(2).standard_normal(x.shape)
    out_t, dx_t, dg_t, db_t = backprop.torch_batchnorm_grads(x, gamma, beta, dout)
    out, cache = reference.batchnorm_forward(x, gamma, beta)
    dx, dg, db = reference.batchnorm_backward_alt(dout, cache)
    for name, a, b in (("out", out_t, out), ("dx", dx_t, dx), ("dgamma", dg_t, dg), ("dbeta", db_t, db)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=name)


def test_batch_mean_spread_follows_sigma_over_sqrt_m() -> None:
    v = np.random.default_rng(3).exponential(size=500)  # skewed on purpose
    ms = [1, 2, 8, 64]
    res = backprop.batch_statistics_spread(v, ms, n_batches=3000, seed=1)
    np.testing.assert_allclose(res["mean_spread"], res["predicted"], rtol=0.08)
    assert res["std_ratio_lo"][0] == res["std_ratio_hi"][0] == 0.0  # m = 1: no spread at all
    assert np.all(np.diff(res["std_ratio_hi"][1:] - res["std_ratio_lo"][1:]) < 0)
    with pytest.raises(ParameterError):
        backprop.batch_statistics_spread(v, [501])


def test_normalized_value_of_tiny_batches() -> None:
    v = np.random.default_rng(4).standard_normal(300)
    pop, spreads = backprop.normalized_value_spread(v, 7, [1, 2, 32], n_batches=200)
    assert np.all(spreads[0] == 0.0)  # m = 1: x - mu = 0
    assert np.all(np.abs(spreads[1]) <= 1.0) and np.median(np.abs(spreads[1])) > 0.99  # m = 2: ±1
    assert abs(np.median(spreads[2]) - pop) < 0.3
    assert pop == pytest.approx((v[7] - v.mean()) / np.sqrt(v.var() + 1e-5))


def test_softmax_regression_gradient() -> None:
    rng = np.random.default_rng(5)
    W, b, x, y = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    loss, dW, db = backprop.softmax_regression_step(W, b, x, y)
    num_W = numerical_gradient(lambda w: backprop.softmax_regression_step(w, b, x, y)[0], W)
    num_b = numerical_gradient(lambda c: backprop.softmax_regression_step(W, c, x, y)[0], b)
    np.testing.assert_allclose(dW, num_W, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(db, num_b, rtol=1e-6, atol=1e-9)
    assert loss > 0


def test_learning_regimes_small_run() -> None:
    rng = np.random.default_rng(6)
    centers = rng.standard_normal((3, 5)) * 3
    y = rng.integers(0, 3, 120)
    x = centers[y] + rng.standard_normal((120, 5))
    res = backprop.learning_regimes(x[:90], y[:90], x[90:], y[90:],
                                    {"full": None, "mini": 10, "online": 1},
                                    lrs={"full": (0.5, 2.0), "mini": (0.1, 0.5), "online": (0.01, 0.05)},
                                    epochs=2)
    assert [r.name for r in res] == ["full", "mini", "online"]
    assert [r.updates_per_epoch for r in res] == [1, 9, 90]
    for r in res:
        assert r.train_loss[0] == pytest.approx(np.log(3))  # W = 0: uniform prediction
        assert r.train_loss[-1] < r.train_loss[0]
        assert r.lr in r.all_lrs and r.all_lrs[r.lr] == min(r.all_lrs.values())
        assert r.updates[-1] == 2 * r.updates_per_epoch and len(r.updates) == len(r.update_loss)


def test_time_backwards_reports_three_positive_times() -> None:
    backwards = {"graph": reference.batchnorm_backward, "closed form": reference.batchnorm_backward_alt}
    t = backprop.time_backwards(n=8, d=16, repeats=2, forward=reference.batchnorm_forward, backwards=backwards)
    assert list(t) == ["graph", "closed form", "torch autograd (F.batch_norm)"]
    assert all(np.isfinite(v) and v > 0 for v in t.values())
    assert len(backprop.time_backwards(n=8, d=16, repeats=2)) == 2  # the stand-in and torch


def test_forward_for_pairs_a_backward_with_its_own_forward() -> None:
    def mine(x, g, b, eps=1e-5):  # pragma: no cover - never called
        return x, None

    from bncourse import oracle

    assert backprop.forward_for(oracle.batchnorm_backward, mine) is oracle.batchnorm_forward
    assert backprop.forward_for(oracle.batchnorm_backward_alt, mine) is oracle.batchnorm_forward
    assert backprop.forward_for(lambda d, c: (d, d, d), mine) is mine


def test_figures_have_titles_and_labels(batch) -> None:
    x, gamma, beta = batch
    figs = [
        backprop.draw_batchnorm_graph(),
        backprop.plot_jacobians(backprop.bn_jacobian(x, gamma, beta), backprop.bn_jacobian_constant_stats(x, gamma)),
        backprop.plot_bias_drift(backprop.bias_drift_experiment(False, steps=5),
                                 backprop.bias_drift_experiment(True, steps=5)),
        backprop.plot_finite_differences([1e-3, 1e-5], {"float64": backprop.finite_difference_errors([1e-3, 1e-5])}),
    ]
    graph_texts = [t.get_text() for t in figs[0].axes[0].texts]
    assert sum("$" in t and "=" in t for t in graph_texts) >= 7  # forward nodes and backward rules
    assert any("d\\gamma" in t for t in graph_texts) and any("d\\mu" in t for t in graph_texts)
    for fig in figs[1:]:
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def test_batch_spread_figure_shows_m1_as_a_point_and_the_samuelson_bound() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal(300)
    sizes = [1, 2, 4, 16]
    pop, spreads = backprop.normalized_value_spread(z, 0, sizes, n_batches=50)
    for m, s in zip(sizes, spreads, strict=True):
        assert np.all(np.abs(s) <= np.sqrt(m - 1) + 1e-9)  # Samuelson: |x̂| ≤ √(m−1)
    fig = backprop.plot_batch_spread([1, 4], backprop.batch_statistics_spread(z, [1, 4]), pop, spreads, sizes)
    ax = fig.axes[1]
    assert len(ax.collections) >= 4  # three violins (m ≥ 2) and the bound ticks
    assert any(np.allclose(line.get_ydata(), [0.0]) for line in ax.lines)  # the m = 1 point
    assert "sqrt{m-1}" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    plt.close("all")


def test_time_backwards_reports_the_fastest_run() -> None:
    calls = []

    def backward(dout, cache):
        calls.append(1)
        return reference.batchnorm_backward(dout, cache)

    t = backprop.time_backwards(n=4, d=3, repeats=3, forward=reference.batchnorm_forward, backwards={"stub": backward})
    assert len(calls) == 4 and t["stub"] > 0  # one warm-up, then the repeats
