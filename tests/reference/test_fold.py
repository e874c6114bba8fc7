"""fold_batchnorm: the folded layer equals the layer followed by inference-mode batch norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse.reference import batchnorm_inference, fold_batchnorm


def bn_params(C, seed):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.5, 2.0, C) * rng.choice([-1.0, 1.0], C), rng.standard_normal(C),
            rng.standard_normal(C), rng.uniform(0.1, 3.0, C))


@pytest.mark.parametrize("with_bias", [True, False])
def test_folded_linear_equals_linear_then_batchnorm_inference(with_bias):
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((7, 5)), rng.standard_normal((4, 5))
    b = rng.standard_normal(4) if with_bias else None
    gamma, beta, mean, var = bn_params(4, 1)
    z = x @ W.T + (b if b is not None else 0.0)
    expected = batchnorm_inference(z, gamma, beta, mean, var)
    W_f, b_f = fold_batchnorm(W, b, gamma, beta, mean, var)
    assert W_f.shape == W.shape and b_f.shape == (4,), f"shapes {W_f.shape}, {b_f.shape}"
    np.testing.assert_allclose(x @ W_f.T + b_f, expected, rtol=0, atol=1e-10,
                               err_msg=f"folded linear (bias={with_bias}) vs linear + BN")


@pytest.mark.parametrize("with_bias", [True, False])
def test_folded_conv_equals_torch_conv_then_batchnorm2d_eval(with_bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=with_bias, dtype=torch.float64)
    bn = torch.nn.BatchNorm2d(4, dtype=torch.float64)
    gamma, beta, mean, var = bn_params(4, 2)
    with torch.no_grad():
        for tensor, value in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var),
                                 (gamma, beta, mean, var), strict=True):
            tensor.copy_(torch.from_numpy(value))
    bn.eval()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        expected = bn(conv(x)).numpy()
        bias = conv.bias.numpy() if with_bias else None
        W_f, b_f = fold_batchnorm(conv.weight.numpy(), bias, gamma, beta, mean, var)
        folded = torch.nn.functional.conv2d(x, torch.from_numpy(W_f), torch.from_numpy(b_f),
                                            padding=1).numpy()
    np.testing.assert_allclose(folded, expected, rtol=0, atol=1e-10,
                               err_msg=f"folded conv (bias={with_bias}) vs conv + BatchNorm2d eval")


def test_fold_keeps_dtype_and_does_not_mutate():
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((3, 2, 3, 3)).astype(np.float32), np.zeros(3, np.float32)
    params = [p.astype(np.float32) for p in bn_params(3, 4)]
    copies = [a.copy() for a in (W, b, *params)]
    W_f, b_f = fold_batchnorm(W, b, *params)
    assert W_f.dtype == np.float32 and b_f.dtype == np.float32, f"{W_f.dtype}, {b_f.dtype}"
    for a, c in zip((W, b, *params), copies, strict=True):
        np.testing.assert_array_equal(a, c, err_msg="fold_batchnorm mutated an input")
    gamma, _, _, var = params
    np.testing.assert_allclose(W_f, W * (gamma / np.sqrt(var + 1e-5)).reshape(-1, 1, 1, 1),
                               rtol=1e-6, err_msg="W' = W·γ/√(var+ε) per output channel")
