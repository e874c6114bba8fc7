"""bncourse.oracle.network: notebook 08's stand-ins, against plain NumPy and torch's modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bncourse import oracle


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cross_entropy_is_p_minus_onehot_over_n(dtype: type) -> None:
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(6, 4)).astype(dtype), rng.integers(0, 4, size=6)
    loss, d = oracle.softmax_cross_entropy(logits, y)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert d.dtype == dtype and isinstance(loss, float)
    assert loss == pytest.approx(-np.log(p[np.arange(6), y]).mean(), rel=1e-6)
    np.testing.assert_allclose(d, (p - np.eye(4)[y]) / 6, rtol=1e-5, atol=1e-7)


def test_linear_backward_shapes_and_bias_sum() -> None:
    rng = np.random.default_rng(1)
    dout, x, W = rng.normal(size=(5, 3)), rng.normal(size=(5, 4)), rng.normal(size=(4, 3))
    dx, dW, db = oracle.linear_backward(dout, x, W)
    assert (dx.shape, dW.shape, db.shape) == ((5, 4), (4, 3), (3,))
    np.testing.assert_allclose(db, dout.sum(0), rtol=1e-12)


def test_network_backward_calls_the_given_bn_backward() -> None:
    """With a BN backward that returns zeros, nothing reaches the first layers."""
    rng = np.random.default_rng(2)
    params = {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "gamma1": np.ones(4), "beta1": np.zeros(4),
              "W2": rng.normal(size=(4, 4)), "b2": rng.normal(size=4), "gamma2": np.ones(4), "beta2": np.zeros(4),
              "W3": rng.normal(size=(4, 2)), "b3": rng.normal(size=2)}
    tape = {"x": rng.normal(size=(5, 3)), "bn1": None, "bn2": None}
    for k in (1, 2):
        tape[f"z{k}"] = rng.normal(size=(5, 4))
        tape[f"h{k}"] = np.tanh(tape[f"z{k}"])

    def zero_bn(dout, cache):  # type: ignore[no-untyped-def]
        return np.zeros_like(dout), np.zeros(dout.shape[1]), np.zeros(dout.shape[1])

    g = oracle.network_backward(rng.normal(size=(5, 2)), tape, params, oracle.linear_backward, zero_bn)
    assert np.abs(g["h2"]).max() > 0 and np.abs(g["W1"]).max() == 0 and np.abs(g["h1"]).max() == 0
    np.testing.assert_allclose(g["z2"], g["h2"] * (1 - tape["h2"] ** 2), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_layer_forward_follows_torch_and_leaves_inputs_alone(training: bool) -> None:
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.normal(size=(6, 3)) + 2, rng.uniform(0.5, 2, 3), rng.normal(size=3)
    rm, rv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    rm0, rv0 = rm.copy(), rv.copy()
    out, rm1, rv1 = oracle.batchnorm_layer_forward(x, gamma, beta, rm, rv, training)
    bn = torch.nn.BatchNorm1d(3, dtype=torch.float64)
    with torch.no_grad():
        for t, a in ((bn.weight, gamma), (bn.bias, beta), (bn.running_mean, rm), (bn.running_var, rv)):
            t.copy_(torch.from_numpy(a))
    bn.train(training)
    np.testing.assert_allclose(out, bn(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rv1, bn.running_var.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(rm, rm0)
    np.testing.assert_array_equal(rv, rv0)
    if not training:
        np.testing.assert_array_equal(rm1, rm0)
