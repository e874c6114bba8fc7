"""bncourse.nn.BatchNorm1d/2d: gradcheck, parity with torch.nn, drop-in replacement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import bncourse.nn.from_scratch  # noqa: F401 - bnn.from_scratch below
from bncourse import nn as bnn
from bncourse.errors import BatchSizeError, BNCourseError, DTypeError, ParameterError, ShapeError
from bncourse.reference import batchnorm_backward_alt, batchnorm_forward

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
PAIRS = {1: (bnn.BatchNorm1d, torch.nn.BatchNorm1d), 2: (bnn.BatchNorm2d, torch.nn.BatchNorm2d)}


def well_conditioned(shape, dtype):
    """Random x whose channels have a batch std in [0.5, 3]: float32 rounding is not
    amplified by a tiny variance (N = 2 batches can have one by chance)."""
    dims = [0, *range(2, len(shape))]
    cshape = (1, shape[1]) + (1,) * (len(shape) - 2)
    z = torch.randn(shape, dtype=torch.float64)
    z = (z - z.mean(dims, keepdim=True)) / z.std(dims, keepdim=True, correction=0)
    x = z * (torch.rand(cshape, dtype=torch.float64) * 2.5 + 0.5) + torch.randn(cshape)
    return x.to(dtype)


def make_pair(kind, C, dtype, seed, **kwargs):
    ours_cls, theirs_cls = PAIRS[kind]
    ours, theirs = ours_cls(C, dtype=dtype, **kwargs), theirs_cls(C, dtype=dtype, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if ours.weight is not None:
            ours.weight.uniform_(0.5, 2.0, generator=gen)
        if ours.bias is not None:
            ours.bias.normal_(generator=gen)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def assert_close(a, b, dtype, what):
    torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype], msg=lambda m: f"{what}: {m}")


def compare_step(ours, theirs, x, dtype, what):
    """Forward + backward on both; compare output, all gradients and all buffers."""
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ya, yb = ours(xa), theirs(xb)
    dout = torch.randn_like(ya)
    ya.backward(dout)
    yb.backward(dout)
    assert ya.dtype == dtype and ya.is_contiguous(), f"{what}: dtype/contiguity"
    assert_close(ya, yb, dtype, f"{what}: out")
    assert_close(xa.grad, xb.grad, dtype, f"{what}: dx")
    for name in ("weight", "bias"):
        if getattr(ours, name) is not None:
            assert_close(getattr(ours, name).grad, getattr(theirs, name).grad, dtype,
                         f"{what}: d{name}")
    ours.zero_grad()
    theirs.zero_grad()
    assert_same_state(ours, theirs, dtype, what)


def assert_same_state(ours, theirs, dtype, what):
    sa, sb = ours.state_dict(), theirs.state_dict()
    assert list(sa) == list(sb), f"{what}: state_dict keys {list(sa)} vs {list(sb)}"
    for key in sa:
        if key == "num_batches_tracked":
            assert int(sa[key]) == int(sb[key]), f"{what}: {key} {int(sa[key])} vs {int(sb[key])}"
        else:
            assert_close(sa[key], sb[key], dtype, f"{what}: {key}")


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    kind=st.sampled_from([1, 2]),
    N=st.integers(1, 6),
    C=st.integers(1, 4),
    extra=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    momentum=st.sampled_from([0.1, 0.7, None]),
    affine=st.booleans(),
    track=st.booleans(),
    bias=st.booleans(),
    dtype=st.sampled_from([torch.float64, torch.float32]),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_torch_nn_over_batches_train_then_eval(kind, N, C, extra, momentum, affine,
                                                      track, bias, dtype, seed):
    shape = (N, C, *extra[:1]) if kind == 1 else (N, C, *[*extra, 3, 2][:2])
    assume(np.prod([N, *shape[2:]]) > 1)
    torch.manual_seed(seed)
    ours, theirs = make_pair(kind, C, dtype, seed, momentum=momentum, affine=affine,
                             track_running_stats=track, bias=bias)
    what = (f"BatchNorm{kind}d {shape} momentum={momentum} affine={affine} bias={bias} "
            f"track={track} {dtype}")
    for i in range(6):
        if i == 5:
            ours.eval()
            theirs.eval()
        x = well_conditioned(shape, dtype)
        compare_step(ours, theirs, x, dtype, f"{what} batch {i}")


def test_running_stats_match_torch_after_three_steps():
    """The conventions test: EMA on the new batch, unbiased running_var (STYLE point 3)."""
    ours, theirs = make_pair(1, 5, torch.float32, 0)
    torch.manual_seed(1)
    for _ in range(3):
        x = well_conditioned((16, 5), torch.float32) * 2 + 3
        ours(x)
        theirs(x)
    assert_same_state(ours, theirs, torch.float32, "after three steps")
    assert int(ours.num_batches_tracked) == 3, "num_batches_tracked"


@pytest.mark.parametrize("use_batch_stats", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 3, 2), (2, 1)])
def test_autograd_gradcheck(use_batch_stats, affine, shape):
    torch.manual_seed(0)
    C = shape[1]
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(C, dtype=torch.float64, requires_grad=True) if affine else None
    beta = torch.randn(C, dtype=torch.float64, requires_grad=True) if affine else None
    running_mean = torch.randn(C, dtype=torch.float64)
    running_var = torch.rand(C, dtype=torch.float64) + 0.5

    def f(x, gamma, beta):
        # clones: the training-mode call updates the buffers in place
        return bnn.from_scratch.BatchNormFunction.apply(x, gamma, beta, running_mean.clone(), running_var.clone(),
                                      use_batch_stats, 0.1, 1e-5)

    assert torch.autograd.gradcheck(f, (x, gamma, beta), eps=1e-6, atol=1e-7), (
        f"gradcheck failed: shape={shape} affine={affine} batch_stats={use_batch_stats}"
    )


def test_backward_is_the_reference_closed_form():
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    out, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batchnorm_backward_alt(dout, cache)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    yt = bnn.from_scratch.BatchNormFunction.apply(xt, gt, bt, None, None, True, 0.1, 1e-5)
    yt.backward(torch.tensor(dout))
    for name, a, b in (("out", yt.detach(), out), ("dx", xt.grad, dx), ("dgamma", gt.grad, dgamma),
                       ("dbeta", bt.grad, dbeta)):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-12,
                                   err_msg=f"BatchNormFunction vs reference: {name}")


def test_saves_tensors_and_refuses_double_backward():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    bn = bnn.BatchNorm1d(3, dtype=torch.float64)
    y = bn(x)
    assert len(y.grad_fn.saved_tensors) == 3, "x_hat, inv_std, gamma saved with save_for_backward"
    dout = torch.randn_like(y, requires_grad=True)
    (dx,) = torch.autograd.grad(y, x, dout, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        dx.sum().backward()


@pytest.mark.parametrize("kind", [1, 2])
def test_state_dict_round_trips_both_ways(kind):
    ours, theirs = make_pair(kind, 3, torch.float32, 5)
    shape = (8, 3) if kind == 1 else (4, 3, 2, 2)
    for _ in range(3):
        theirs(torch.randn(shape) * 3)
    ours.load_state_dict(theirs.state_dict())  # torch -> ours, strict
    assert_same_state(ours, theirs, torch.float32, "torch -> ours")
    for _ in range(2):
        ours(torch.randn(shape))
    back = PAIRS[kind][1](3)
    back.load_state_dict(ours.state_dict())  # ours -> torch, strict
    assert_same_state(ours, back, torch.float32, "ours -> torch")


def test_swap_into_a_model_and_train():
    torch.manual_seed(0)

    def model(bn_cls):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 6), bn_cls(6), torch.nn.ReLU(),
                                   torch.nn.Linear(6, 2)).double()

    ours, theirs = model(bnn.BatchNorm1d), model(torch.nn.BatchNorm1d)
    theirs.load_state_dict(ours.state_dict())
    opt_a = torch.optim.SGD(ours.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(5):
        x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
        for net, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    assert_same_state(ours, theirs, torch.float64, "after 5 SGD steps")
    ours.eval()
    theirs.eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():
        assert_close(ours(x), theirs(x), torch.float64, "eval outputs of the trained models")


def test_constructor_matches_torch():
    ours, theirs = bnn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1], f"{ours} vs {theirs}"
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"], "parameters"
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()], "buffers"
    assert ours.num_batches_tracked.dtype == torch.long, "num_batches_tracked is a long tensor"
    no_beta = bnn.BatchNorm1d(4, bias=False)
    assert no_beta.weight is not None and no_beta.bias is None, "bias=False keeps only gamma"
    bare = bnn.BatchNorm1d(4, affine=False, track_running_stats=False)
    assert bare.weight is None and bare.running_mean is None, "affine/track off"
    assert list(bare.state_dict()) == [], "nothing to save"
    assert bnn.BatchNorm1d(2, dtype=torch.float64).weight.dtype == torch.float64, "dtype arg"


NN_ERRORS = [
    (lambda: bnn.BatchNorm2d(3)(torch.randn(8, 3)), ShapeError,
     r"BatchNorm2d expects \(N, C, H, W\), got shape \(8, 3\)"),
    (lambda: bnn.BatchNorm1d(3)(torch.randn(2, 3, 4, 4)), ShapeError,
     r"BatchNorm1d expects \(N, C\) or \(N, C, L\), got shape \(2, 3, 4, 4\)"),
    (lambda: bnn.BatchNorm1d(3)(torch.randn(8, 4)), ShapeError,
     r"BatchNorm1d expects 3 channels \(x.shape\[1\]\), got shape \(8, 4\)"),
    (lambda: bnn.BatchNorm1d(3)(torch.ones(8, 3, dtype=torch.long)), DTypeError,
     r"expects a floating-point input, got dtype torch.int64"),
    (lambda: bnn.BatchNorm1d(3)(torch.ones(8, 3, dtype=torch.float64)), DTypeError,
     r"input dtype torch.float64 does not match the module's weight dtype torch.float32"),
    (lambda: bnn.BatchNorm1d(3)(torch.randn(1, 3)), BatchSizeError,
     r"needs >1 value per channel, got x.shape=\(1, 3\)"),
    (lambda: bnn.BatchNorm2d(3)(torch.randn(1, 3, 1, 1)), BatchSizeError,
     r"got x.shape=\(1, 3, 1, 1\)"),
    (lambda: bnn.BatchNorm1d(3, eps=0), ParameterError, r"eps must be > 0"),
    (lambda: bnn.BatchNorm1d(3, momentum=2.0), ParameterError,
     r"momentum must be in \[0, 1\] or None, got momentum=2.0"),
    (lambda: bnn.BatchNorm1d(0), ParameterError, r"num_features must be a positive integer"),
]


@pytest.mark.parametrize(("call", "error", "message"), NN_ERRORS, ids=[c[2][:40] for c in NN_ERRORS])
def test_bad_input_raises(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert isinstance(info.value, BNCourseError), "a BNCourseError"


def test_loads_a_state_dict_without_num_batches_tracked_like_torch():
    state = torch.nn.BatchNorm1d(3).state_dict()
    del state["num_batches_tracked"]
    del state._metadata[""]["version"]  # an old (version 1) state dict
    ours = bnn.BatchNorm1d(3)
    ours.load_state_dict(state)
    assert int(ours.num_batches_tracked) == 0, "missing counter loads as 0"


def test_batch_of_one_fine_in_eval_and_counter_untouched_on_error():
    bn = bnn.BatchNorm1d(3)
    with pytest.raises(BatchSizeError):
        bn(torch.randn(1, 3))
    assert int(bn.num_batches_tracked) == 0, "a failed call must not count a batch"
    bn.eval()
    out = bn(torch.ones(1, 3))
    assert_close(out, torch.ones(1, 3) / (1 + 1e-5) ** 0.5, torch.float32, "eval, N = 1")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 5)])
def test_functional_batch_norm_matches_torch(shape: tuple[int, ...], training: bool) -> None:
    """bncourse.nn.functional.batch_norm and torch.nn.functional.batch_norm agree in float64 to
    1e-10: output, the three gradients and the running buffers they update."""
    import torch.nn.functional as torch_F  # noqa: N812

    gen = torch.Generator().manual_seed(len(shape) + int(training))
    c = shape[1]
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3 + 1).requires_grad_()
    w = torch.rand(c, generator=gen, dtype=torch.float64).add(0.5).requires_grad_()
    b = torch.randn(c, generator=gen, dtype=torch.float64).requires_grad_()
    dout = torch.randn(shape, generator=gen, dtype=torch.float64)
    results = []
    for impl in (bnn.functional.batch_norm, torch_F.batch_norm):
        rm, rv = torch.randn(c, dtype=torch.float64, generator=torch.Generator().manual_seed(9)), torch.ones(c, dtype=torch.float64) * 2
        y = impl(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-5)
        gx, gw, gb = torch.autograd.grad(y, (x, w, b), dout)
        results.append([y, gx, gw, gb, rm, rv])
    for mine, theirs in zip(*results, strict=True):
        assert torch.allclose(mine, theirs, rtol=0, atol=1e-10), (mine - theirs).abs().max()


def test_functional_batch_norm_refuses_eval_without_running_stats() -> None:
    with pytest.raises(ParameterError, match="training=False needs running_mean and running_var"):
        bnn.functional.batch_norm(torch.zeros(4, 3), None, None, training=False)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_the_student_build_runs_torchs_own_batch_norm_with_the_same_bookkeeping(
    momentum: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the student build (no from-scratch backward inside) the modules call
    torch.nn.functional.batch_norm and still match torch.nn.BatchNorm2d step for step."""
    monkeypatch.setattr(bnn.functional, "is_student_edition", lambda: True)
    called: list[int] = []
    real = torch.nn.functional.batch_norm
    monkeypatch.setattr(torch.nn.functional, "batch_norm", lambda *a, **k: called.append(1) or real(*a, **k))
    ours = bnn.BatchNorm2d(3, momentum=momentum).double()
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum).double()
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(4, 3, 5, 5, generator=gen, dtype=torch.float64) * 2 + 1
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = ours(xa), theirs(xb)
        ya.sum().backward()
        yb.sum().backward()
        torch.testing.assert_close(ya, yb, rtol=0, atol=1e-12)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.running_mean, theirs.running_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.running_var, theirs.running_var, rtol=0, atol=1e-12)
    assert len(called) == 6  # three steps each: ours went through torch's function as torch's module does
