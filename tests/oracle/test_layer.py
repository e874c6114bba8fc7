"""The BatchNorm1d stand-in against the solution's class: same API, same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from bncourse import oracle, reference
from bncourse.errors import BatchSizeError, BNCourseError, DTypeError, ShapeError

TOL64 = 1e-10


def _pair(**kwargs):
    return oracle.BatchNorm1d(3, **kwargs), reference.BatchNorm1d(3, **kwargs)


def _same_state(ours, theirs, tol=TOL64):
    a, b = ours.state_dict(), theirs.state_dict()
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key], dtype=np.float64), np.asarray(b[key], dtype=np.float64),
                                   rtol=0, atol=tol, err_msg=key)
    assert ours.num_batches_tracked == theirs.num_batches_tracked


@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False},
                                    {"track_running_stats": False}, {"dtype": np.float32}])
@pytest.mark.parametrize("layout", ["(N, C)", "(N, C, L)"])
def test_training_eval_and_backward_match_the_solution(kwargs, layout):
    rng = np.random.default_rng(0)
    ours, theirs = _pair(**kwargs)
    tol = 1e-5 if kwargs.get("dtype") == np.float32 else TOL64
    if ours.weight is not None:
        gamma, beta = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
        ours.weight, theirs.weight = gamma.copy(), gamma.copy()
        ours.bias, theirs.bias = beta.copy(), beta.copy()
    for step, n in enumerate([8, 5, 2, 7]):
        shape = (n, 3) if layout == "(N, C)" else (n, 3, 4)
        x = step + rng.standard_normal(shape) * np.array([1.0, 3.0, 0.2]).reshape((1, 3) + (1,) * (len(shape) - 2))
        dout = rng.standard_normal(shape)
        np.testing.assert_allclose(ours.forward(x), theirs.forward(x), rtol=0, atol=tol)
        np.testing.assert_allclose(ours.backward(dout), theirs.backward(dout), rtol=0, atol=tol)
        if ours.weight is not None:
            np.testing.assert_allclose(ours.dweight, theirs.dweight, rtol=0, atol=tol)
            np.testing.assert_allclose(ours.dbias, theirs.dbias, rtol=0, atol=tol)
        _same_state(ours, theirs, tol)
    ours.eval()
    theirs.eval()
    assert ours.training is False
    n_test = 1 if kwargs.get("track_running_stats", True) else 2  # batch statistics need two
    x_test = rng.standard_normal((n_test, *shape[1:]))
    np.testing.assert_allclose(ours(x_test), theirs(x_test), rtol=0, atol=tol)
    dout = rng.standard_normal(x_test.shape)
    np.testing.assert_allclose(ours.backward(dout), theirs.backward(dout), rtol=0, atol=tol)
    _same_state(ours, theirs, tol)


def test_output_dtype_is_the_inputs_and_old_arrays_do_not_change():
    bn = oracle.BatchNorm1d(2)
    rm0 = bn.running_mean
    out = bn.forward(np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32) + 5)
    assert out.dtype == np.float32 and bn.running_mean.dtype == np.float64
    np.testing.assert_array_equal(rm0, np.zeros(2))  # a copy: the update made a new array
    assert not np.array_equal(bn.running_mean, rm0)


def test_state_dict_round_trip_and_errors():
    a, b = oracle.BatchNorm1d(3), oracle.BatchNorm1d(3)
    a.forward(np.random.default_rng(1).standard_normal((5, 3)))
    b.load_state_dict(a.state_dict())
    _same_state(b, a, 0.0)
    assert repr(a) == repr(reference.BatchNorm1d(3))
    with pytest.raises(ShapeError, match="expected keys"):
        b.load_state_dict({"weight": np.ones(3)})
    with pytest.raises(BNCourseError, match="call forward before backward"):
        oracle.BatchNorm1d(3).backward(np.ones((2, 3)))
    with pytest.raises(BatchSizeError, match="needs >1 value per channel"):
        oracle.BatchNorm1d(3).forward(np.ones((1, 3)))
    with pytest.raises(ShapeError, match=r"expects x of shape \(N, 3\) or \(N, 3, L\)"):
        oracle.BatchNorm1d(3).forward(np.ones((4, 2)))
    with pytest.raises(DTypeError, match="dtype must be floating point"):
        oracle.BatchNorm1d(3, dtype=int)
    eval_bn = oracle.BatchNorm1d(3).eval()
    assert eval_bn.forward(np.ones((1, 3))).shape == (1, 3)  # one example is fine in eval mode
