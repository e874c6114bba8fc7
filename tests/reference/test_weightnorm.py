"""weight_norm and spectral_norm against torch.nn.utils.parametrizations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrizations

from bncourse.reference import largest_singular_value, spectral_norm, weight_norm


def make_layer(kind):
    torch.manual_seed(0)
    if kind == "linear":
        return torch.nn.Linear(5, 4, dtype=torch.float64)
    return torch.nn.Conv2d(3, 4, kernel_size=3, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(kind, dim):
    layer = parametrizations.weight_norm(make_layer(kind), dim=dim)
    with torch.no_grad():  # give g and v independent random values
        g = layer.parametrizations.weight.original0
        g.copy_(torch.rand_like(g) + 0.5)
        v = layer.parametrizations.weight.original1
        v.copy_(torch.randn_like(v))
        expected = layer.weight.numpy()
    ours = weight_norm(v.detach().numpy(), g.detach().numpy(), dim=dim)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12,
                               err_msg=f"weight_norm {kind} dim={dim}")
    # g with shape (v.shape[dim],) means the same as torch's keepdims shape
    if dim is not None:
        flat = weight_norm(v.detach().numpy(), g.detach().numpy().reshape(-1), dim=dim)
        np.testing.assert_array_equal(flat, ours, err_msg="g as a flat vector")


def test_weight_norm_norms_are_g():
    rng = np.random.default_rng(0)
    v, g = rng.standard_normal((4, 6)), rng.uniform(0.5, 2.0, 4)
    w = weight_norm(v, g)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), g, rtol=1e-12, err_msg="‖w_o‖ = g_o")


@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("n_power_iterations", [1, 3])
def test_spectral_norm_matches_torch_over_training_steps(kind, n_power_iterations):
    layer = parametrizations.spectral_norm(make_layer(kind), n_power_iterations=n_power_iterations)
    sn = layer.parametrizations.weight[0]
    original = layer.parametrizations.weight.original
    for step in range(4):
        u0, v0 = sn._u.clone().numpy(), sn._v.clone().numpy()
        weight = original.detach().clone().numpy()
        with torch.no_grad():
            expected = layer.weight.numpy()  # training mode: power iteration, u and v updated
        w_sn, u, sigma = spectral_norm(weight, u0, n_power_iterations, v=v0)
        what = f"spectral_norm {kind} n={n_power_iterations} step {step}"
        np.testing.assert_allclose(w_sn, expected, rtol=0, atol=1e-12, err_msg=f"{what}: w_sn")
        np.testing.assert_allclose(u, sn._u.numpy(), rtol=0, atol=1e-12, err_msg=f"{what}: u")
        np.testing.assert_allclose(sigma, weight.reshape(-1)[0] / expected.reshape(-1)[0],
                                   rtol=1e-12, err_msg=f"{what}: sigma")
        if step == 0:  # v omitted: normalize(Wᵀu), what torch holds for an unchanged weight
            w_sn_no_v, _, _ = spectral_norm(weight, u0, n_power_iterations)
            np.testing.assert_allclose(w_sn_no_v, expected, rtol=0, atol=1e-12,
                                       err_msg=f"{what}: w_sn with v omitted")
        with torch.no_grad():  # an optimizer step changes the weight
            original.add_(0.1 * torch.randn_like(original))


def test_spectral_norm_eval_mode_is_zero_iterations():
    layer = parametrizations.spectral_norm(make_layer("linear")).eval()
    sn = layer.parametrizations.weight[0]
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(1.5)
        expected = layer.weight.numpy()
    weight = layer.parametrizations.weight.original.detach().numpy()
    w_sn, _, _ = spectral_norm(weight, sn._u.numpy(), 0, v=sn._v.numpy())
    np.testing.assert_allclose(w_sn, expected, rtol=0, atol=1e-12, err_msg="eval: no iteration")


def test_sigma_converges_to_largest_singular_value():
    rng = np.random.default_rng(1)
    weight, u = rng.standard_normal((6, 4, 2)), rng.standard_normal(6)
    exact = largest_singular_value(weight)
    np.testing.assert_allclose(exact, np.linalg.norm(weight.reshape(6, -1), ord=2), rtol=1e-12,
                               err_msg="largest_singular_value = matrix 2-norm")
    _, _, sigma_1 = spectral_norm(weight, u, 1)
    w_sn, _, sigma = spectral_norm(weight, u, 200)
    assert float(sigma_1) <= exact * (1 + 1e-12), f"power iteration overshoots: {sigma_1} > {exact}"
    np.testing.assert_allclose(sigma, exact, rtol=1e-9, err_msg="sigma after 200 iterations")
    np.testing.assert_allclose(largest_singular_value(w_sn), 1.0, rtol=1e-9,
                               err_msg="σ_max(W_SN) = 1")


def test_spectral_norm_of_a_vector_divides_by_its_norm():
    w = np.array([3.0, 4.0])
    w_sn, _, sigma = spectral_norm(w, np.ones(1))
    np.testing.assert_allclose(w_sn, [0.6, 0.8], rtol=1e-15, err_msg="1-D: w / ‖w‖")
    np.testing.assert_allclose(sigma, 5.0, rtol=1e-15, err_msg="1-D: sigma = ‖w‖")
