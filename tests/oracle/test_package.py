"""The package itself: importing it imports no torch, every name resolves, caches do not mix."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bncourse import oracle, reference


def test_importing_the_package_imports_no_torch_and_every_name_resolves() -> None:
    code = ("import sys, json, bncourse.oracle as o; before = 'torch' in sys.modules; "
            "missing = [n for n in o.__all__ if getattr(o, n, None) is None]; "
            "print(json.dumps({'before': before, 'after': 'torch' in sys.modules, 'missing': missing, "
            "'reference': sorted(m for m in sys.modules if m.startswith(('bncourse.reference', "
            "'bncourse.lessons', 'bncourse.grading')))}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"before": False, "after": True, "missing": [], "reference": []}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'batchnorm_forwad'"):
        oracle.batchnorm_forwad  # noqa: B018


def test_import_path_strings_resolve() -> None:
    import importlib

    module, _, name = "bncourse.oracle:batchnorm_forward".partition(":")
    assert getattr(importlib.import_module(module), name) is oracle.batchnorm_forward


@pytest.mark.parametrize(("forward", "backward"), [
    ("batchnorm_forward", "batchnorm_backward"),
    ("batchnorm_forward", "batchnorm_backward_alt"),
    ("spatial_batchnorm_forward", "spatial_batchnorm_backward"),
    ("layernorm_forward", "layernorm_backward"),
])
def test_a_stand_in_backward_refuses_any_other_cache(forward: str, backward: str) -> None:
    rng = np.random.default_rng(0)
    shape = (4, 3, 2, 2) if forward.startswith("spatial") else (4, 3)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    _, ref_cache = getattr(reference, forward)(x, np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match=rf"{backward} \(bncourse.oracle\): the stand-in backward needs the "
                                        rf"stand-in forward's cache.*bncourse.oracle.{forward}; got a "):
        getattr(oracle, backward)(dout, ref_cache)
    with pytest.raises(TypeError, match="got a dict"):
        getattr(oracle, backward)(dout, {"x_hat": x})


def test_a_backward_names_the_forward_whose_cache_it_got() -> None:
    x = np.random.default_rng(1).standard_normal((4, 3))
    _, ln_cache = oracle.layernorm_forward(x, np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match=r"got the cache of bncourse\.oracle\.layernorm_forward"):
        oracle.batchnorm_backward(x, ln_cache)


def test_a_cache_can_be_differentiated_twice_and_holds_copies() -> None:
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    _, cache = oracle.batchnorm_forward(x, np.ones(2), np.zeros(2))
    first = oracle.batchnorm_backward(dout, cache)
    x[:] = 0.0  # the caller's array changes; the graph kept its own copy
    second = oracle.batchnorm_backward_alt(dout, cache)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "batchnorm_forward cache" in repr(cache)
