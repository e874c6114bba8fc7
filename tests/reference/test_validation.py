"""Input validation shared by the NumPy functions: NaN and infinity are named, not propagated."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bncourse.errors import NonFiniteError
from bncourse.reference import batchnorm_forward, layernorm_forward
from bncourse.validation import as_float_array


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_input_is_an_error_that_says_how_many(bad: float) -> None:
    x = np.ones((4, 3))
    x[1, 2] = bad
    with pytest.raises(NonFiniteError, match=r"batchnorm_forward: x contains 1 NaN or infinite value\(s\) of 12"):
        batchnorm_forward(x, np.ones(3), np.zeros(3))
    with pytest.raises(NonFiniteError, match="layernorm"):
        layernorm_forward(x, np.ones(3), np.zeros(3))


def test_huge_finite_values_whose_sum_overflows_are_accepted() -> None:
    x = np.full((3, 2), 1.5e308)
    assert as_float_array(x, "x", "f") is x


@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5),
                  elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_accepted_exactly_when_every_value_is_finite(x: np.ndarray) -> None:
    if np.isfinite(x).all():
        assert as_float_array(x, "x", "f") is x
    else:
        with pytest.raises(NonFiniteError):
            as_float_array(x, "x", "f")
