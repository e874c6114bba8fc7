"""Input validation shared by :mod:`bncourse.reference` and :mod:`bncourse.nn`, and the
course's one comparison of arrays, :func:`rel_error`.

Every public function validates its arguments at the top with these helpers, so a bad
call fails with a :class:`~bncourse.errors.BNCourseError` subclass whose message names
the function, what was expected and what was received -- never with an ``IndexError``
or a NumPy broadcast error from deep inside the math.  Helpers that only look at a
shape, a dtype name or a number take plain Python values, so the PyTorch modules can
reuse them without NumPy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse.errors import BatchSizeError, DTypeError, NonFiniteError, ParameterError, ShapeError

Shape = tuple[int, ...]

FloatArray = NDArray[np.floating[Any]]
"""A floating-point NumPy array (float32 or float64): what the course's functions take and return."""

Array = NDArray[Any]
"""Any NumPy array (a student's output may have any dtype)."""


def as_float_array(a: ArrayLike, name: str, fn: str) -> NDArray[np.floating[Any]]:
    """``np.asarray(a)``, rejecting anything that is not a floating-point array.

    The array is not copied, so the caller must not write into it.

    Raises:
        DTypeError: not a floating-point array.
        NonFiniteError: it holds NaN or infinity (batch statistics would silently be NaN).
    """
    __tracebackhide__ = True
    arr = np.asarray(a)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DTypeError(
            f"{fn}: {name} must be a floating-point array (float32 or float64), "
            f"got dtype {arr.dtype}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.add.reduce(arr, axis=None, dtype=np.float64)) if arr.size else 0.0
    if not math.isfinite(total):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:  # (a finite array whose float64 sum overflows is fine)
            raise NonFiniteError(
                f"{fn}: {name} contains {bad} NaN or infinite value(s) of {arr.size}; every batch statistic "
                "would be NaN. Find where they come from (a division by zero, a log of 0, an exploding "
                "training run) before normalizing."
            )
    return arr


def as_param(
    a: ArrayLike, name: str, fn: str, shape: Shape, dtype: np.dtype[Any]
) -> NDArray[np.floating[Any]]:
    """A floating-point parameter of exactly ``shape``, viewed in ``dtype`` (no copy if equal)."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    arr = as_float_array(a, name, fn)
    check_shape(arr.shape, shape, name, fn)
    return arr.astype(dtype, copy=False)


def check_ndim(shape: Shape, ndims: Sequence[int], name: str, fn: str, layout: str) -> None:
    """Raise ``ShapeError`` unless ``len(shape)`` is one of ``ndims``.

    ``layout`` describes the expected shape, e.g. ``"(N, D)"``.
    """
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if len(shape) not in ndims:
        raise ShapeError(f"{fn} expects {name} of shape {layout}, got shape {tuple(shape)}")


def check_min_ndim(shape: Shape, min_ndim: int, name: str, fn: str, layout: str) -> None:
    """Raise ``ShapeError`` if ``shape`` has fewer than ``min_ndim`` axes."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if len(shape) < min_ndim:
        raise ShapeError(f"{fn} expects {name} of shape {layout}, got shape {tuple(shape)}")


def check_shape(shape: Shape, expected: Shape, name: str, fn: str) -> None:
    """Raise ``ShapeError`` unless ``shape == expected``."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if tuple(shape) != tuple(expected):
        raise ShapeError(
            f"{fn}: {name} must have shape {tuple(expected)}, got shape {tuple(shape)}"
        )


def check_eps(eps: float, fn: str) -> float:
    """Return ``float(eps)``; raise ``ParameterError`` unless it is finite and > 0."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise ParameterError(f"{fn}: eps must be a number > 0, got {eps!r}")
    value = float(eps)
    if not (value > 0 and math.isfinite(value)):
        raise ParameterError(f"{fn}: eps must be > 0, got eps={eps!r}")
    return value


def check_momentum(momentum: float | None, fn: str) -> float | None:
    """Return ``momentum`` as a float (or ``None``); raise unless it lies in [0, 1]."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if momentum is None:
        return None
    if isinstance(momentum, bool) or not isinstance(
        momentum, (int, float, np.floating, np.integer)
    ):
        raise ParameterError(f"{fn}: momentum must be a number in [0, 1] or None, got {momentum!r}")
    value = float(momentum)
    if not 0.0 <= value <= 1.0:
        raise ParameterError(f"{fn}: momentum must be in [0, 1] or None, got momentum={momentum!r}")
    return value


def check_positive_int(value: int, name: str, fn: str) -> int:
    """Return ``value``; raise ``ParameterError`` unless it is an int >= 1."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{fn}: {name} must be a positive integer, got {name}={value!r}")
    return int(value)


def check_batchnorm_args(
    num_features: int, eps: float, momentum: float | None, fn: str
) -> tuple[int, float, float | None]:
    """``(num_features, eps, momentum)`` of a BatchNorm module's constructor, validated.

    The NumPy :class:`~bncourse.reference.BatchNorm1d` and the PyTorch modules of
    :mod:`bncourse.nn` take the same arguments and reject the same values:
    :func:`check_positive_int`, :func:`check_eps`, :func:`check_momentum`.
    """
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    return (
        check_positive_int(num_features, "num_features", fn),
        check_eps(eps, fn),
        check_momentum(momentum, fn),
    )


def check_batch_size(shape: Shape, axes: Sequence[int], fn: str) -> None:
    """Raise ``BatchSizeError`` if the statistics would be over a single value.

    The same condition as PyTorch's "Expected more than 1 value per channel when
    training": the product of the sizes of the reduced ``axes`` must exceed 1.
    """
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    m = math.prod(shape[a] for a in axes)
    if m <= 1:
        raise BatchSizeError(
            f"{fn}: training batchnorm needs >1 value per channel, got x.shape={tuple(shape)}"
        )


def check_num_groups(num_channels: int, num_groups: int, fn: str) -> int:
    """Return ``num_groups``; raise ``ParameterError`` unless it divides ``num_channels``."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    groups = check_positive_int(num_groups, "num_groups", fn)
    if num_channels % groups != 0:
        raise ParameterError(f"{fn}: C={num_channels} not divisible by G={groups}")
    return groups


def check_axes(axes: Sequence[int] | int, ndim: int, fn: str) -> tuple[int, ...]:
    """Normalize ``axes`` to a sorted tuple of distinct non-negative axes of an ``ndim`` array."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    raw = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    if not raw:
        raise ShapeError(f"{fn}: axes must name at least one axis, got axes={axes!r}")
    out = []
    for a in raw:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ShapeError(
                f"{fn}: axes must be integers in [-{ndim}, {ndim - 1}] for a {ndim}-D input, "
                f"got axes={axes!r}"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{fn}: axes must be distinct, got axes={axes!r}")
    return tuple(sorted(out))


def check_nonnegative(a: NDArray[np.floating[Any]], name: str, fn: str) -> None:
    """Raise ``ParameterError`` if any entry of ``a`` is negative or NaN (e.g. a variance)."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if a.size and not bool(np.all(a >= 0)):
        raise ParameterError(
            f"{fn}: {name} must be >= 0 everywhere, got min {float(np.nanmin(a))!r}"
            + (" and NaN" if bool(np.isnan(a).any()) else "")
        )


def rel_error(a: ArrayLike, b: ArrayLike) -> float:
    r"""CS231n's relative error: the largest elementwise ``|a − b| / max(1e-8, |a| + |b|)``.

    .. math::
        \max_i \frac{|a_i - b_i|}{\max(10^{-8}, |a_i| + |b_i|)}

    Scale-free, so one threshold fits any magnitude: about 1e-7 or less for a correct
    float64 gradient against :func:`numerical_gradient`.  Entries where both a and b are
    near zero can dominate it; compare such arrays with an absolute tolerance.

    Shapes:
        a, b: the same shape.

    Returns:
        The maximum relative error, a Python float (0.0 for empty arrays; NaN, without a
        warning, when an entry is NaN or infinite, as a student's output often is).

    Raises:
        ShapeError: a and b have different shapes.
    """
    a_ = np.asarray(a, dtype=np.float64)
    b_ = np.asarray(b, dtype=np.float64)
    if a_.shape != b_.shape:
        raise ShapeError(f"rel_error: shapes differ, got {a_.shape} and {b_.shape}")
    if a_.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf entries give NaN, quietly
        denom: NDArray[Any] = np.maximum(1e-8, np.abs(a_) + np.abs(b_))
        return float(np.max(np.abs(a_ - b_) / denom))


def check_dim(dim: Any, ndim: int, fn: str) -> int:
    """``dim`` as an int in ``[0, ndim)`` (the dimension a weight norm keeps), or ParameterError."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= dim < ndim:
        raise ParameterError(
            f"{fn}: dim must be an integer in [0, {ndim - 1}] for a {ndim}-D weight "
            f"(or None for the whole tensor), got dim={dim!r}"
        )
    return int(dim)


def as_regression_data(x: ArrayLike, y: ArrayLike | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """x as float64 ``(n, d)`` and y as float64 ``(n,)`` (zeros when None), with shape errors naming both."""
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 2 or xa.shape[0] < 1 or xa.shape[1] < 1:
        raise ShapeError(f"x must have shape (n, d) with n, d >= 1, got shape {xa.shape}")
    if y is None:
        return xa, np.zeros(xa.shape[0])
    ya = np.asarray(y, dtype=np.float64)
    if ya.shape != (xa.shape[0],):
        raise ShapeError(f"y must have shape (n,) = ({xa.shape[0]},) to match x {xa.shape}, got {ya.shape}")
    return xa, ya


def as_batches(batches: Sequence[ArrayLike], fn: str) -> list[NDArray[Any]]:
    """The ``(N_b, D)`` floating-point batches of a training set (same D), as arrays.

    Raises:
        ShapeError: no batches, a batch that is not 2-D, or mismatched D.
        DTypeError: a batch that is not floating point.
    """
    __tracebackhide__ = True  # IPython and pytest show the error at the public function
    if len(batches) == 0:
        raise ShapeError(f"{fn}: expected at least one (N_b, D) batch, got an empty sequence")
    arrays = [np.asarray(b) for b in batches]
    if arrays[0].ndim != 2:
        raise ShapeError(f"{fn}: every batch must have shape (N_b, D), got shape {arrays[0].shape} for batch 0")
    d = int(arrays[0].shape[1])
    for i, b in enumerate(arrays):
        if b.ndim != 2 or b.shape[1] != d:
            raise ShapeError(f"{fn}: every batch must have shape (N_b, {d}), got shape {b.shape} for batch {i}")
        if not np.issubdtype(b.dtype, np.floating):
            raise DTypeError(f"{fn}: batches must be floating point, got dtype {b.dtype} for batch {i}")
    return arrays
