"""Every error path of bncourse.reference: the right BNCourseError subclass and message."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bncourse.errors import BatchSizeError, BNCourseError, DTypeError, ParameterError, ShapeError
from bncourse.reference import (
    BatchNorm1d,
    batch_renorm_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    batchnorm_inference,
    fold_batchnorm,
    groupnorm_backward,
    groupnorm_forward,
    instancenorm_forward,
    largest_singular_value,
    layernorm_backward,
    layernorm_forward,
    normalize,
    normalize_backward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spectral_norm,
    weight_norm,
)

X = np.random.default_rng(0).standard_normal((4, 3))
X4 = np.random.default_rng(1).standard_normal((2, 6, 3, 3))
ONES, ZEROS = np.ones(3), np.zeros(3)
ONES6, ZEROS6 = np.ones(6), np.zeros(6)

CASES = [
    # (call, error class, message regex)
    (lambda: batchnorm_forward(X[0], ONES, ZEROS), ShapeError,
     r"batchnorm_forward expects x of shape \(N, D\), got shape \(3,\)"),
    (lambda: batchnorm_forward(X, np.ones(4), ZEROS), ShapeError,
     r"batchnorm_forward: gamma must have shape \(3,\), got shape \(4,\)"),
    (lambda: batchnorm_forward(X, ONES, np.zeros((1, 3))), ShapeError,
     r"beta must have shape \(3,\), got shape \(1, 3\)"),
    (lambda: batchnorm_forward(X.astype(int), ONES, ZEROS), DTypeError,
     r"x must be a floating-point array .*got dtype int"),
    (lambda: batchnorm_forward(X, np.ones(3, dtype=int), ZEROS), DTypeError,
     r"gamma must be a floating-point array"),
    (lambda: batchnorm_forward(X[:1], ONES, ZEROS), BatchSizeError,
     r"training batchnorm needs >1 value per channel, got x.shape=\(1, 3\)"),
    (lambda: batchnorm_forward(X, ONES, ZEROS, eps=0.0), ParameterError,
     r"eps must be > 0, got eps=0.0"),
    (lambda: batchnorm_forward(X, ONES, ZEROS, eps=-1e-5), ParameterError, r"eps must be > 0"),
    (lambda: batchnorm_forward(X, ONES, ZEROS, eps=float("nan")), ParameterError,
     r"eps must be > 0"),
    (lambda: batchnorm_backward(np.ones((5, 3)), batchnorm_forward(X, ONES, ZEROS)[1]), ShapeError,
     r"batchnorm_backward: dout must have shape \(4, 3\), got shape \(5, 3\)"),
    (lambda: batchnorm_backward_alt(np.ones(3), batchnorm_forward(X, ONES, ZEROS)[1]), ShapeError,
     r"batchnorm_backward_alt: dout must have shape \(4, 3\), got shape \(3,\)"),
    (lambda: batchnorm_backward(np.ones((4, 3)), (X, ONES)), BNCourseError,
     r"batchnorm_backward: cache must be the BatchNormCache from batchnorm_forward, got tuple"),
    (lambda: batchnorm_inference(X, ONES, ZEROS, np.zeros(2), ONES), ShapeError,
     r"running_mean must have shape \(3,\), got shape \(2,\)"),
    (lambda: batchnorm_inference(X, ONES, ZEROS, ZEROS, -ONES), ParameterError,
     r"running_var must be >= 0 everywhere, got min -1.0"),
    (lambda: spatial_batchnorm_forward(X, ONES, ZEROS), ShapeError,
     r"spatial_batchnorm_forward expects x of shape \(N, C, H, W\), got shape \(4, 3\)"),
    (lambda: spatial_batchnorm_forward(np.ones((1, 3, 1, 1)), ONES, ZEROS), BatchSizeError,
     r"training batchnorm needs >1 value per channel, got x.shape=\(1, 3, 1, 1\)"),
    (lambda: spatial_batchnorm_forward(X4, ONES, ZEROS), ShapeError,
     r"spatial_batchnorm_forward on x.shape=\(2, 6, 3, 3\): .*gamma must have shape \(6,\)"),
    (lambda: spatial_batchnorm_backward(X, spatial_batchnorm_forward(X4, ONES6, ZEROS6)[1]),
     ShapeError, r"spatial_batchnorm_backward expects dout of shape \(N, C, H, W\)"),
    (lambda: layernorm_forward(X, ONES, ZEROS[:2]), ShapeError,
     r"layernorm_forward: beta must have shape \(3,\), got shape \(2,\)"),
    (lambda: layernorm_forward(X[0], ONES, ZEROS), ShapeError,
     r"layernorm_forward expects x of shape \(N, D\) or \(N, \*F\), got shape \(3,\)"),
    (lambda: layernorm_backward(X4, layernorm_forward(X, ONES, ZEROS)[1]), ShapeError,
     r"layernorm_backward: dout must have shape \(4, 3\)"),
    (lambda: groupnorm_forward(X4, ONES6, ZEROS6, 4), ParameterError,
     r"groupnorm_forward: C=6 not divisible by G=4"),
    (lambda: groupnorm_forward(X4, ONES6, ZEROS6, 0), ParameterError,
     r"num_groups must be a positive integer, got num_groups=0"),
    (lambda: groupnorm_forward(X4, ONES, ZEROS, 3), ShapeError,
     r"groupnorm_forward: gamma must have shape \(6,\), got shape \(3,\)"),
    (lambda: groupnorm_backward(X, groupnorm_forward(X4, ONES6, ZEROS6, 3)[1]), ShapeError,
     r"groupnorm_backward: dout must have shape \(2, 6, 3, 3\), got shape \(4, 3\)"),
    (lambda: instancenorm_forward(X, ONES, ZEROS), ShapeError,
     r"instancenorm_forward expects x of shape \(N, C, H, W\) or \(N, C, \*S\)"),
    (lambda: instancenorm_forward(X4, ONES, ZEROS), ShapeError,
     r"instancenorm_forward \(groupnorm with G = C\): .*gamma must have shape \(6,\)"),
    (lambda: normalize(X, (2,)), ShapeError, r"axes must be integers in \[-2, 1\]"),
    (lambda: normalize(X, (0, -2)), ShapeError, r"axes must be distinct"),
    (lambda: normalize(X, ()), ShapeError, r"axes must name at least one axis"),
    (lambda: normalize(X.astype(np.int32), (0,)), DTypeError, r"got dtype int32"),
    (lambda: normalize_backward(X4, normalize(X, (0,))[1]), ShapeError,
     r"normalize_backward: dx_hat must have shape \(4, 3\)"),
    (lambda: fold_batchnorm(ONES, None, ONES, ZEROS, ZEROS, ONES), ShapeError,
     r"fold_batchnorm expects weight of shape \(out, in\) or \(out, in, kh, kw\), got shape \(3,\)"),
    (lambda: fold_batchnorm(np.ones((3, 2)), np.ones(2), ONES, ZEROS, ZEROS, ONES), ShapeError,
     r"fold_batchnorm: bias must have shape \(3,\), got shape \(2,\)"),
    (lambda: fold_batchnorm(np.ones((3, 2)), None, ONES, ZEROS, ZEROS, ONES, eps=0), ParameterError,
     r"eps must be > 0"),
    (lambda: batch_renorm_forward(X, ONES, ZEROS, ZEROS, ONES, r_max=0.5, d_max=0.0),
     ParameterError, r"r_max must be >= 1, got r_max=0.5"),
    (lambda: batch_renorm_forward(X, ONES, ZEROS, ZEROS, ONES, r_max=1.0, d_max=-1.0),
     ParameterError, r"d_max must be >= 0, got d_max=-1.0"),
    (lambda: batch_renorm_forward(X, ONES, ZEROS, ZEROS, ONES, 1.0, 0.0, momentum=1.5),
     ParameterError, r"momentum must be in \[0, 1\] or None, got momentum=1.5"),
    (lambda: batch_renorm_forward(X[:1], ONES, ZEROS, ZEROS, ONES, 1.0, 0.0), BatchSizeError,
     r"needs >1 value per channel, got x.shape=\(1, 3\)"),
    (lambda: weight_norm(np.ones((3, 2)), np.ones(2)), ShapeError,
     r"weight_norm: g must have 3 entries \(one per slice along dim=0\), got shape \(2,\)"),
    (lambda: weight_norm(np.ones((3, 2)), np.ones(3), dim=2), ParameterError,
     r"dim must be an integer in \[0, 1\] for a 2-D weight"),
    (lambda: spectral_norm(np.ones((3, 2)), np.ones(2)), ShapeError,
     r"spectral_norm: u must have shape \(3,\), got shape \(2,\)"),
    (lambda: spectral_norm(np.ones((3, 2)), np.ones(3), v=np.ones(3)), ShapeError,
     r"spectral_norm: v must have shape \(2,\), got shape \(3,\)"),
    (lambda: spectral_norm(np.ones((3, 2)), np.ones(3), -1), ParameterError,
     r"n_power_iterations must be an integer >= 0, got -1"),
    (lambda: largest_singular_value(np.ones(3)), ShapeError,
     r"largest_singular_value expects weight of shape \(out, in\)"),
]


@pytest.mark.parametrize(("call", "error", "message"), CASES, ids=[c[2][:50] for c in CASES])
def test_bad_input_raises_with_expected_vs_actual(call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert isinstance(info.value, BNCourseError) and isinstance(info.value, ValueError), (
        f"{type(info.value).__name__} must be a BNCourseError and a ValueError"
    )


MODULE_CASES = [
    (lambda: BatchNorm1d(0), ParameterError,
     r"BatchNorm1d: num_features must be a positive integer, got num_features=0"),
    (lambda: BatchNorm1d(3, eps=0), ParameterError, r"BatchNorm1d: eps must be > 0, got eps=0"),
    (lambda: BatchNorm1d(3, momentum=-0.1), ParameterError,
     r"momentum must be in \[0, 1\] or None, got momentum=-0.1"),
    (lambda: BatchNorm1d(3, momentum=1.1), ParameterError, r"got momentum=1.1"),
    (lambda: BatchNorm1d(3, momentum="0.1"), ParameterError,
     r"momentum must be a number in \[0, 1\] or None, got '0.1'"),
    (lambda: BatchNorm1d(3, dtype=np.int64), DTypeError, r"dtype must be floating point, got int64"),
    (lambda: BatchNorm1d(3).forward(np.ones((4, 2))), ShapeError,
     r"BatchNorm1d.forward expects x of shape \(N, 3\) or \(N, 3, L\), got shape \(4, 2\)"),
    (lambda: BatchNorm1d(3).forward(np.ones((4, 3, 2, 2))), ShapeError,
     r"expects x of shape \(N, 3\) or \(N, 3, L\), got shape \(4, 3, 2, 2\)"),
    (lambda: BatchNorm1d(3).forward(np.ones((4, 3), dtype=int)), DTypeError, r"got dtype int"),
    (lambda: BatchNorm1d(3).forward(np.ones((1, 3))), BatchSizeError,
     r"needs >1 value per channel, got x.shape=\(1, 3\)"),
    (lambda: BatchNorm1d(3).forward(np.ones((1, 3, 1))), BatchSizeError,
     r"got x.shape=\(1, 3, 1\)"),
    (lambda: BatchNorm1d(3, track_running_stats=False).eval().forward(np.ones((1, 3))),
     BatchSizeError, r"needs >1 value per channel"),
    (lambda: BatchNorm1d(3).backward(np.ones((4, 3))), BNCourseError,
     r"call forward before backward"),
    (lambda: BatchNorm1d(3).load_state_dict({"weight": ONES}), ShapeError, r"expected keys"),
]


@pytest.mark.parametrize(("call", "error", "message"), MODULE_CASES,
                         ids=[c[2][:50] for c in MODULE_CASES])
def test_module_bad_input_raises(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_backward_with_wrong_dout_shape():
    bn = BatchNorm1d(3)
    bn.forward(X)
    with pytest.raises(ShapeError, match=r"dout must have shape \(4, 3\), got shape \(4, 2\)"):
        bn.backward(np.ones((4, 2)))


def test_batch_of_one_is_fine_in_eval_mode():
    out = BatchNorm1d(3).eval().forward(X[:1])
    np.testing.assert_allclose(out, X[:1] / np.sqrt(1 + 1e-5), rtol=1e-12,
                               err_msg="eval with fresh buffers: x / sqrt(1 + eps)")


def test_failed_forward_leaves_the_buffers_alone():
    bn = BatchNorm1d(3)
    with pytest.raises(BatchSizeError):
        bn.forward(X[:1])
    assert bn.num_batches_tracked == 0, "num_batches_tracked changed by a failed call"
    np.testing.assert_array_equal(bn.running_var, ONES, err_msg="running_var changed")


def test_reference_imports_neither_torch_nor_matplotlib():
    code = ("import bncourse, bncourse.reference, sys; "
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, f"importing bncourse.reference pulled in torch/mpl:\n{result.stderr}"
