"""bncourse.reference.BatchNorm1d against torch.nn.BatchNorm1d, batch after batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bncourse.reference import BatchNorm1d

TOL = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def make_pair(C, dtype, seed, **kwargs):
    """Our module and torch's, with the same random weight and bias."""
    ours = BatchNorm1d(C, dtype=dtype, **kwargs)
    theirs = torch.nn.BatchNorm1d(C, dtype=TORCH_DTYPE[dtype], **kwargs)
    if ours.weight is not None:
        rng = np.random.default_rng(seed)
        ours.weight = rng.uniform(0.5, 2.0, C).astype(dtype)
        ours.bias = rng.standard_normal(C).astype(dtype)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.weight))
            theirs.bias.copy_(torch.from_numpy(ours.bias))
    return ours, theirs


def step(ours, theirs, x, dout, dtype, what):
    """One forward+backward on both; compare out, dx, dweight, dbias and the buffers."""
    tol = TOL[dtype]
    out = ours.forward(x)
    dx = ours.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    out_t = theirs(xt)
    out_t.backward(torch.tensor(dout))
    assert out.dtype == dtype and dx.dtype == dtype, f"{what}: dtypes {out.dtype}, {dx.dtype}"
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=0, atol=tol, err_msg=f"{what}: out")
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=tol, err_msg=f"{what}: dx")
    if ours.weight is not None:
        np.testing.assert_allclose(ours.dweight, theirs.weight.grad.numpy(), rtol=0, atol=tol,
                                   err_msg=f"{what}: dweight")
        np.testing.assert_allclose(ours.dbias, theirs.bias.grad.numpy(), rtol=0, atol=tol,
                                   err_msg=f"{what}: dbias")
        theirs.weight.grad = None
        theirs.bias.grad = None
    assert_same_buffers(ours, theirs, dtype, what)


def assert_same_buffers(ours, theirs, dtype, what):
    if theirs.running_mean is None:
        assert ours.running_mean is None and ours.running_var is None, f"{what}: buffers None"
        assert ours.num_batches_tracked is None, f"{what}: num_batches_tracked None"
        return
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(), rtol=0,
                                   atol=TOL[dtype], err_msg=f"{what}: {name}")
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked), (
        f"{what}: num_batches_tracked {ours.num_batches_tracked} vs "
        f"{int(theirs.num_batches_tracked)}"
    )


def batches(shape, n, seed, dtype):
    """n pairs (x, dout); each channel of x has a batch std in [0.5, 3] (well conditioned:
    a tiny batch variance, likely with N = 2, would amplify float32 rounding)."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    axes = (0, *range(2, len(shape)))
    bshape = (1, C) + (1,) * (len(shape) - 2)
    for _ in range(n):
        z = rng.standard_normal(shape)
        z = (z - z.mean(axis=axes, keepdims=True)) / z.std(axis=axes, keepdims=True)
        x = z * rng.uniform(0.5, 3.0, bshape) + rng.uniform(-2, 2, bshape)
        yield x.astype(dtype), rng.standard_normal(shape).astype(dtype)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    N=st.integers(2, 12),
    C=st.integers(1, 5),
    L=st.one_of(st.none(), st.integers(1, 4)),
    momentum=st.sampled_from([0.1, 0.5, 1.0, 0.0, None]),
    affine=st.booleans(),
    track=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_torch_over_train_then_eval_batches(N, C, L, momentum, affine, track, dtype, seed):
    shape = (N, C) if L is None else (N, C, L)
    ours, theirs = make_pair(C, dtype, seed, momentum=momentum, affine=affine,
                             track_running_stats=track)
    what = f"{shape} momentum={momentum} affine={affine} track={track} {dtype.__name__}"
    for i, (x, dout) in enumerate(batches(shape, 6, seed, dtype)):
        if i == 5:  # the last batch in evaluation mode
            ours.eval()
            theirs.eval()
            assert ours.training is False, "eval() sets training=False"
        step(ours, theirs, x, dout, dtype, f"{what} batch {i} {'eval' if i == 5 else 'train'}")


@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_stats_follow_the_documented_rule(momentum):
    """After three batches: EMA weighting the new batch, unbiased var, counter at 3."""
    bn = BatchNorm1d(2, momentum=momentum)
    mean, var = np.zeros(2), np.ones(2)
    for k, (x, _) in enumerate(batches((5, 2), 3, 0, np.float64), start=1):
        bn.forward(x)
        factor = 1.0 / k if momentum is None else momentum
        mean = (1 - factor) * mean + factor * x.mean(axis=0)
        var = (1 - factor) * var + factor * x.var(axis=0, ddof=1)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12, err_msg="running_mean rule")
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12, err_msg="running_var (unbiased)")
    assert bn.num_batches_tracked == 3, f"num_batches_tracked {bn.num_batches_tracked}"


def test_defaults_and_constructor_variants():
    bn = BatchNorm1d(3)
    assert bn.training is True, "starts in training mode"
    assert bn.eps == 1e-5 and bn.momentum == 0.1, "torch defaults"
    np.testing.assert_array_equal(bn.weight, np.ones(3), err_msg="weight starts at 1")
    np.testing.assert_array_equal(bn.bias, np.zeros(3), err_msg="bias starts at 0")
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3), err_msg="running_mean at 0")
    np.testing.assert_array_equal(bn.running_var, np.ones(3), err_msg="running_var at 1")
    assert bn.num_batches_tracked == 0, "num_batches_tracked at 0"
    bare = BatchNorm1d(3, affine=False, track_running_stats=False)
    assert bare.weight is None and bare.bias is None, "affine=False: no weight/bias"
    assert bare.running_mean is None and bare.running_var is None, "untracked: no buffers"
    assert bare.state_dict() == {}, "nothing to save"


def test_state_dict_round_trips_with_torch():
    _, theirs = make_pair(4, np.float64, 0)
    for x, _ in batches((6, 4), 3, 1, np.float64):
        theirs(torch.tensor(x))
    fresh = BatchNorm1d(4)
    fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(np.asarray(fresh.state_dict()[key]), value.numpy(),
                                      err_msg=f"torch -> ours: {key}")
    back = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    back.load_state_dict({k: torch.as_tensor(v) for k, v in fresh.state_dict().items()})
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(back.state_dict()[key], value, rtol=0, atol=0,
                                   msg=f"ours -> torch: {key}")


def test_eval_output_of_one_example_is_independent_of_the_batch():
    bn = BatchNorm1d(3)
    for x, _ in batches((8, 3), 5, 2, np.float64):
        bn.forward(x)
    bn.eval()
    x, _ = next(batches((8, 3), 1, 3, np.float64))
    np.testing.assert_allclose(bn(x[:1]), bn(x)[:1], rtol=0, atol=1e-14,
                               err_msg="eval mode: example 0 alone vs in its batch")
    before = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked)
    bn(x)
    np.testing.assert_array_equal(bn.running_mean, before[0], err_msg="eval: running_mean fixed")
    np.testing.assert_array_equal(bn.running_var, before[1], err_msg="eval: running_var fixed")
    assert bn.num_batches_tracked == before[2], "eval: counter fixed"


def test_forward_does_not_mutate_input_and_returns_contiguous():
    bn = BatchNorm1d(3, dtype=np.float32)
    x, dout = next(batches((5, 3, 4), 1, 4, np.float32))
    x_f = np.asfortranarray(x)
    x_copy = x_f.copy()
    out = bn(x_f)
    dx = bn.backward(dout)
    np.testing.assert_array_equal(x_f, x_copy, err_msg="forward mutated x")
    assert out.flags.c_contiguous and dx.flags.c_contiguous, "results C-contiguous"
    assert out.dtype == np.float32 and dx.dtype == np.float32, "dtype preserved"
