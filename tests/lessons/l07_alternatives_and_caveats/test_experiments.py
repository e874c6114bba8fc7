"""Tests of bncourse.lessons.l07_alternatives_and_caveats.experiments (notebook 07's helpers).

(The exercises: ``test_exercises.py``.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bncourse import reference as ref
from bncourse.errors import BNCourseError, ParameterError, ShapeError
from bncourse.lessons.l07_alternatives_and_caveats import experiments as alt


@pytest.fixture
def x4() -> np.ndarray:
    return np.random.default_rng(0).normal(3.0, 2.0, size=(5, 6, 3, 4))


def test_torch_normalizations_match_the_kernel(x4: np.ndarray) -> None:
    N, C, H, W = x4.shape
    got = alt.torch_normalizations(x4, groups=3)
    derived = {
        "BatchNorm": ref.normalize(x4, axes=(0, 2, 3))[0],
        "LayerNorm": ref.normalize(x4, axes=(1, 2, 3))[0],
        "InstanceNorm": ref.normalize(x4, axes=(2, 3))[0],
        "GroupNorm": ref.normalize(x4.reshape(N, 3, C // 3, H, W), axes=(2, 3, 4))[0].reshape(x4.shape),
    }
    for name, out in derived.items():
        np.testing.assert_allclose(got[name], out, rtol=0, atol=1e-10, err_msg=name)
    # and they really are four different things
    assert np.abs(got["BatchNorm"] - got["LayerNorm"]).max() > 0.1
    assert np.abs(got["GroupNorm"] - got["InstanceNorm"]).max() > 0.1


def test_torch_normalizations_rejects_2d() -> None:
    with pytest.raises(ShapeError, match="expects"):
        alt.torch_normalizations(np.zeros((3, 4)), groups=2)


def test_cube_masks_cover_the_right_cells() -> None:
    N, C, S = 4, 6, 4
    assert alt._cube_mask("BatchNorm", (N, C, S), 3).sum() == N * S
    assert alt._cube_mask("LayerNorm", (N, C, S), 3).sum() == C * S
    assert alt._cube_mask("InstanceNorm", (N, C, S), 3).sum() == S
    assert alt._cube_mask("GroupNorm", (N, C, S), 3).sum() == (C // 3) * S
    with pytest.raises(ParameterError):
        alt._cube_mask("WeightNorm", (N, C, S), 3)


def test_plot_norm_cube_has_four_titled_panels() -> None:
    import matplotlib.pyplot as plt

    fig = alt.plot_norm_cube()
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 4 and all(t for t in titles)
    assert [t.split("\n")[0] for t in titles] == list(alt.NORM_AXES)
    plt.close(fig)
    with pytest.raises(ParameterError, match="divisible"):
        alt.plot_norm_cube(shape=(4, 6, 4), groups=4)


# --------------------------------------------------------------------------- renorm


def _renorm_pair(r_max: float, d_max: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, size=(6, 4, 3, 3))
    layer = alt.BatchRenorm2d(4, r_max=r_max, d_max=d_max, momentum=0.1).double()
    with torch.no_grad():
        layer.running_mean.copy_(torch.from_numpy(rng.normal(0, 1, 4)))
        layer.running_var.copy_(torch.from_numpy(rng.uniform(0.2, 6.0, 4)))
        layer.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, 4)))
        layer.bias.copy_(torch.from_numpy(rng.normal(0, 1, 4)))
    return x, layer


@pytest.mark.parametrize(("r_max", "d_max"), [(1.0, 0.0), (1.5, 0.5), (100.0, 100.0)])
def test_batch_renorm2d_matches_reference(r_max: float, d_max: float) -> None:
    x, layer = _renorm_pair(r_max, d_max)
    rm, rv = layer.running_mean.numpy().copy(), layer.running_var.numpy().copy()
    gamma, beta = layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()
    xt = torch.from_numpy(x).requires_grad_(True)
    out = layer.train()(xt)
    # the reference is 1-D: channels last, (N*H*W, C)
    x2 = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    res = ref.batch_renorm_forward(x2, gamma, beta, rm, rv, r_max, d_max, momentum=0.1)
    out_ref = res.out.reshape(6, 3, 3, 4).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out.detach().numpy(), out_ref, atol=1e-10, err_msg="out")
    np.testing.assert_allclose(layer.running_mean.numpy(), res.running_mean, atol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), res.running_var, atol=1e-12)
    np.testing.assert_allclose(layer.last_r.numpy(), res.r, atol=1e-12)
    np.testing.assert_allclose(layer.last_d.numpy(), res.d, atol=1e-12)
    # gradient: r, d constants, as in the reference backward
    dout = np.random.default_rng(5).standard_normal(out.shape)
    out.backward(torch.from_numpy(dout))
    dx_ref, dgamma_ref, dbeta_ref = ref.batch_renorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, 4), res.cache)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref.reshape(6, 3, 3, 4).transpose(0, 3, 1, 2), atol=1e-10)
    np.testing.assert_allclose(layer.weight.grad.numpy(), dgamma_ref, atol=1e-10)
    np.testing.assert_allclose(layer.bias.grad.numpy(), dbeta_ref, atol=1e-10)


def test_batch_renorm_with_unit_limits_is_batchnorm() -> None:
    x, layer = _renorm_pair(1.0, 0.0)
    bn = nn.BatchNorm2d(4).double()
    bn.load_state_dict(layer.state_dict())
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(layer.train()(xt).detach().numpy(), bn.train()(xt).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.running_var.numpy(), bn.running_var.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.eval()(xt).detach().numpy(), bn.eval()(xt).detach().numpy(), atol=1e-12)


def test_batch_renorm_unclipped_equals_running_stat_normalization() -> None:
    x, layer = _renorm_pair(1e6, 1e6)
    xt = torch.from_numpy(x)
    layer_eval = alt.BatchRenorm2d(4).double()
    layer_eval.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(layer.train()(xt).detach().numpy(), layer_eval.eval()(xt).detach().numpy(),
                               atol=1e-9)


def test_batch_renorm_input_errors() -> None:
    with pytest.raises(ShapeError, match=r"expects \(N, C, H, W\)"):
        alt.BatchRenorm2d(3)(torch.zeros(4, 3))
    with pytest.raises(ShapeError, match=">1 value"):
        alt.BatchRenorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ParameterError):
        alt.BatchRenorm1d(3, r_max=0.5)


def test_renorm_limits_schedule() -> None:
    assert alt.renorm_limits(0, 5000) == (1.0, 0.0)
    assert alt.renorm_limits(5000, 5000) == (1.0, 0.0)
    assert alt.renorm_limits(25_000, 5000)[1] == pytest.approx(5.0)
    assert alt.renorm_limits(40_000, 5000)[0] == pytest.approx(3.0)
    r, d = alt.renorm_limits(22_500, 5000)
    assert r == pytest.approx(2.0) and d == pytest.approx(5.0 * 17.5 / 20)
    assert alt.renorm_limits(10**6, 5000) == (3.0, 5.0)
    with pytest.raises(ParameterError):
        alt.renorm_limits(0, 50_000)


# ------------------------------------------------------------------------- experiments


def test_batch_size_sweep_is_deterministic_and_bounded() -> None:
    kw = {"norms": ("bn", "gn"), "batch_sizes": (2, 8), "steps": 15}
    a, b = alt.batch_size_sweep(**kw), alt.batch_size_sweep(**kw)
    assert a.accuracy == b.accuracy
    assert set(a.accuracy) == {"bn", "gn"} and all(len(v) == 2 for v in a.accuracy.values())
    assert all(0.0 <= acc <= 1.0 for v in a.accuracy.values() for acc in v)
    assert a.error_percent("bn")[0] == pytest.approx(100 * (1 - a.accuracy["bn"][0]))


def _tiny_split():
    from bncourse.course.data import load_digits_split

    d = load_digits_split(seed=0, images=True)
    return d._replace(x_train=d.x_train[:64], y_train=d.y_train[:64])


def test_small_batch_experiment_gn_has_no_train_eval_gap() -> None:
    kw = {"norms": ("bn", "gn"), "batch_sizes": (2, 8), "epochs": 1, "seeds": (0, 1), "split": _tiny_split()}
    a, b = alt.small_batch_experiment(**kw), alt.small_batch_experiment(**kw)
    assert a.eval_acc == b.eval_acc and a.batch_acc == b.batch_acc
    for bs in (2, 8):
        assert len(a.eval_acc["gn"][bs]) == 2
        # GN does not look at the batch: train mode differs only by the images left out of whole batches
        assert np.allclose(a.eval_acc["gn"][bs], a.batch_acc["gn"][bs], atol=2 / 449)
    rows = a.rows()
    assert [(r["norm"], r["batch"]) for r in rows] == [("BN", 2), ("BN", 8), ("GN", 2), ("GN", 8)]
    fig = alt.plot_small_batch(a)
    assert len(fig.axes) == 2 and all(ax.get_title() and ax.get_ylabel() for ax in fig.axes)


def test_class_sorted_batches_hold_few_classes() -> None:
    y = np.repeat(np.arange(10), 20)
    batches = alt._class_sorted_batches(y, batch_size=8, classes_per_batch=2, steps=30, seed=0)
    assert len(batches) == 30
    for idx in batches:
        labels = y[idx.numpy()]
        assert len(idx) == 8 and len(set(labels.tolist())) == 2
        assert all((labels == c).sum() == 4 for c in set(labels.tolist()))


def test_noniid_renorm_experiment_runs_every_method_and_seed() -> None:
    res = alt.noniid_renorm_experiment(batch_size=8, classes_per_batch=2, steps=20, seeds=(0, 1),
                                       split=_tiny_split())
    assert set(res.accuracy) == {"BN", "Batch Renorm", "GN"}
    assert all(len(v) == 2 and all(0.0 <= a <= 1.0 for a in v) for v in res.accuracy.values())
    assert [r["method"] for r in res.rows()] == ["BN", "Batch Renorm", "GN"]


def test_regularization_difference_is_a_paired_t_interval() -> None:
    res = alt.RegularizationResult([], 10, {"a": {"test acc": [0.9, 0.8, 0.85]},
                                            "b": {"test acc": [0.8, 0.75, 0.8]}})
    d = res.difference("a", "b")
    diffs = np.array([0.1, 0.05, 0.05])
    assert d["mean"] == pytest.approx(diffs.mean())
    half = 4.302652729911275 * diffs.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert d["high"] - d["mean"] == pytest.approx(half) and d["mean"] - d["low"] == pytest.approx(half)


def test_batch_stat_noise_leaves_model_alone_and_depends_on_batch() -> None:
    from bncourse.course.models import make_cnn

    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    model = make_cnn(channels=(4, 8), norm="bn").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = alt.batch_stat_noise(model, x, y, (2, 64))
    assert set(res) == {2, 64}
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training


def test_adabn_reestimates_statistics_on_target() -> None:
    from bncourse.course.models import make_cnn

    model = make_cnn(channels=(4, 8), norm="bn").eval()
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(50, 1, 8, 8)).astype(np.float32)
    adapted = alt.adabn(model, x)
    bn0 = next(m for m in adapted.modules() if isinstance(m, nn.BatchNorm2d))
    conv0 = adapted[0]
    with torch.no_grad():
        z = conv0(torch.from_numpy(x))
    np.testing.assert_allclose(bn0.running_mean.numpy(), z.mean((0, 2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn0.running_var.numpy(), z.var((0, 2, 3), unbiased=True).numpy(), rtol=1e-4)
    assert bn0.momentum == 0.1 and not adapted.training
    orig_bn0 = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert torch.equal(orig_bn0.running_mean, torch.zeros(4))  # the original is untouched


def test_adabn_makes_bn_net_scale_invariant() -> None:
    from bncourse.course.models import make_cnn

    model = make_cnn(channels=(4, 8), norm="bn", seed=3)
    x = np.random.default_rng(2).random((80, 1, 8, 8)).astype(np.float32)
    alt.adabn(model, x)  # warm statistics on the source
    src = alt.adabn(model, x)
    tgt = alt.adabn(model, 0.3 * x)  # conv without bias: BN undoes the scale exactly
    with torch.no_grad():
        a = src(torch.from_numpy(x))
        b = tgt(torch.from_numpy(0.3 * x))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3)


def test_sequence_demo_layernorm_is_batch_independent() -> None:
    rows = {r["method"]: r["max change"] for r in alt.sequence_norm_demo()}
    assert rows["LN per token"] < 1e-12
    assert all(v > 0.1 for k, v in rows.items() if k != "LN per token")


def test_weight_and_spectral_norm_parity() -> None:
    wn = alt.weight_norm_parity()
    assert all(v < 1e-12 for v in wn.values())
    sn = alt.spectral_norm_parity()
    assert sn["max |W_torch - W_ref|"] < 1e-12
    assert sn["sigma (power iteration)"] <= sn["sigma_max(W) (SVD)"] + 1e-12
    assert sn["sigma_max(W / sigma)"] == pytest.approx(1.0, abs=1e-4)


def test_power_iteration_increases_to_sigma_max() -> None:
    w = np.random.default_rng(0).standard_normal((8, 5))
    tr = alt.power_iteration_trace(w, 25)
    assert np.all(np.diff(tr) >= -1e-12)
    assert tr[-1] == pytest.approx(ref.largest_singular_value(w), rel=1e-5)


def test_lipschitz_demo_bound_holds() -> None:
    plain, sn = alt.lipschitz_demo()
    for row in (plain, sn):
        assert row["max ||df/dx|| on inputs"] <= row["product of sigma_max"] * (1 + 1e-6)
    assert sn["product of sigma_max"] == pytest.approx(1.0, abs=1e-3)
    assert plain["product of sigma_max"] > 5


def test_errors_are_bncourse_errors() -> None:
    assert issubclass(ShapeError, BNCourseError)
