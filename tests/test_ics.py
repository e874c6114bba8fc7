"""Notebook 02's package code: percentiles, gradient predictiveness, noisy/ℓ1 BN, the
Figure-1 recorder, saturation and gradient norms per layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse import ics
from bncourse.errors import ParameterError, ShapeError
from bncourse.ics_layers import L1BatchNorm, NoisyShift
from bncourse.models import make_mlp


def test_activation_percentiles_matches_numpy_per_unit() -> None:
    z = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    p = ics.activation_percentiles(z)
    assert p.shape == (3, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p[:, 2], np.percentile(z[:, 2], [15, 50, 85]), rtol=1e-6)
    with pytest.raises(ShapeError, match=r"shape \(N, D\), got shape \(40,\)"):
        ics.activation_percentiles(z[:, 0])


def test_gradient_predictiveness_of_a_quadratic_is_linear_in_eta() -> None:
    A = np.diag([1.0, 4.0])
    w = np.array([1.0, -2.0])
    etas = np.array([0.1, 0.2, 0.4])
    d = ics.gradient_predictiveness(lambda v: A @ v, w, etas)
    np.testing.assert_allclose(d, etas * np.linalg.norm(A @ (A @ w)), rtol=1e-12)


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
    run = ics.run_figure1("BN", steps=40, eval_every=20, etas=(0.5, 1.0))
    assert run.steps == [0, 20, 40]
    assert run.percentiles.shape == (3, 3)
    assert np.all(run.percentiles[:, 0] <= run.percentiles[:, 1])
    assert run.layer_mean.shape == (3, 3, 100) and run.loss_along.shape == (3, 2)
    assert ics.layer_shift(run).shape == (2, 3)
    quick = ics.run_figure1("no BN", steps=20, eval_every=20, probe_landscape=False)
    assert quick.loss_along.size == 0 and quick.grad_change.size == 0


def test_gradient_norms_and_saturation() -> None:
    x = torch.randn(64, 64)
    y = torch.randint(0, 10, (64,))
    plain = ics.gradient_norms_per_layer(make_mlp(norm="none", init_scale=5.0), x, y)
    assert plain.shape == (4,)
    assert plain[0] < plain[-1], "without BN, large init saturates sigmoids and the first layer's gradient vanishes"
    sat = ics.saturation_per_layer(make_mlp(norm="none", init_scale=5.0), x.numpy())
    assert sat.shape == (3,) and sat.max() > 0.3
    assert ics.saturation_per_layer(make_mlp(norm="bn"), x.numpy()).max() < 0.1
