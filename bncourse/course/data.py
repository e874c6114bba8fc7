"""Offline data for the course: scikit-learn's bundled digits and synthetic sets.

Nothing here downloads anything.  Splits are seeded and cached, so every notebook that
asks for ``load_digits_split(seed=0)`` gets the same arrays.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from bncourse.errors import DTypeError, ParameterError

__all__ = [
    "DigitsSplit",
    "load_digits_split",
    "make_circles_split",
    "make_two_scale_regression",
    "minibatches",
    "shift_digits",
]


class DigitsSplit(NamedTuple):
    """Train/validation/test split of the 8×8 digits.

    ``x_*`` are (N, 64) (or (N, 1, 8, 8) with ``images=True``) with pixel values scaled
    to [0, 1]; ``y_*`` are int64 labels in 0..9.
    """

    x_train: NDArray[np.floating]
    y_train: NDArray[np.int64]
    x_val: NDArray[np.floating]
    y_val: NDArray[np.int64]
    x_test: NDArray[np.floating]
    y_test: NDArray[np.int64]


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.asarray(d.data, dtype=np.float64) / 16.0, np.asarray(d.target, dtype=np.int64)


def _check_dtype(dtype: type | np.dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise DTypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


@lru_cache(maxsize=16)
def _split(seed: int, val_fraction: float, test_fraction: float) -> tuple[NDArray[np.int64], ...]:
    x, _ = _digits_raw()
    idx = np.random.default_rng(seed).permutation(len(x))
    n_test = round(test_fraction * len(x))
    n_val = round(val_fraction * len(x))
    return idx[n_test + n_val :], idx[n_test : n_test + n_val], idx[:n_test]


def load_digits_split(
    seed: int = 0,
    dtype: type | np.dtype = np.float32,
    val_fraction: float = 0.15,
    test_fraction: float = 0.25,
    images: bool = False,
) -> DigitsSplit:
    """The 1797 digits, split into train/val/test by a seeded permutation.

    Args:
        seed: seed of the permutation (same seed → same split).
        dtype: float32 or float64 for the pixel arrays.
        val_fraction, test_fraction: sizes of the validation and test parts.
        images: return x as (N, 1, 8, 8) instead of (N, 64).

    Returns:
        A :class:`DigitsSplit`; arrays are fresh copies the caller may modify.
    """
    dt = _check_dtype(dtype)
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ParameterError(
            f"need 0 <= val_fraction, 0 < test_fraction and their sum < 1, "
            f"got val_fraction={val_fraction}, test_fraction={test_fraction}"
        )
    x, y = _digits_raw()
    parts = []
    for idx in _split(seed, val_fraction, test_fraction):
        xi = x[idx].astype(dt, copy=True)
        if images:
            xi = xi.reshape(-1, 1, 8, 8)
        parts += [xi, y[idx].copy()]
    return DigitsSplit(*parts)


def shift_digits(
    x: NDArray[np.floating],
    kind: str,
    amount: float,
    seed: int = 0,
) -> NDArray[np.floating]:
    """A shifted copy of digits ``x`` ((N, 64) or (N, 1, 8, 8)) for domain-shift experiments.

    ``kind``: ``"scale"`` (x·amount), ``"offset"`` (x + amount), ``"noise"`` (Gaussian
    noise of std ``amount``), ``"invert"`` (1 − x blended by ``amount`` in [0, 1]).
    """
    rng = np.random.default_rng(seed)
    if kind == "scale":
        out = x * amount
    elif kind == "offset":
        out = x + amount
    elif kind == "noise":
        out = x + amount * rng.standard_normal(x.shape)
    elif kind == "invert":
        out = (1 - amount) * x + amount * (1 - x)
    else:
        raise ParameterError(f"kind must be 'scale', 'offset', 'noise' or 'invert', got {kind!r}")
    return out.astype(x.dtype, copy=False)


def make_two_scale_regression(
    n: int = 200,
    scale_ratio: float = 100.0,
    noise: float = 0.1,
    seed: int = 0,
    dtype: type | np.dtype = np.float64,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Inputs x (n, 2) whose second feature is ``scale_ratio`` times larger, and targets y.

    ``y = 2·x1 + 3·x2/scale_ratio + 1 + noise``: the true weights make both features matter
    equally, so the badly scaled loss surface comes only from the inputs' scales.
    """
    dt = _check_dtype(dtype)
    if n < 2 or scale_ratio <= 0:
        raise ParameterError(f"need n >= 2 and scale_ratio > 0, got n={n}, scale_ratio={scale_ratio}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    x[:, 1] *= scale_ratio
    y = 2.0 * x[:, 0] + 3.0 * x[:, 1] / scale_ratio + 1.0 + noise * rng.standard_normal(n)
    return x.astype(dt), y.astype(dt)


def minibatches(n: int, batch_size: int, seed: int, drop_last: bool = True) -> list[NDArray[np.int64]]:
    """Index arrays of one epoch of shuffled mini-batches of ``range(n)``.

    With ``drop_last`` a final short batch is dropped (a batch of 1 breaks BN in training).
    """
    if batch_size < 1 or n < 1:
        raise ParameterError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    idx = np.random.default_rng(seed).permutation(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    return [idx[i : i + batch_size] for i in range(0, stop, batch_size)]


def make_circles_split(
    n_train: int = 1000,
    n_test: int = 400,
    noise: float = 0.05,
    factor: float = 0.5,
    seed: int = 0,
    dtype: type | np.dtype = np.float32,
) -> DigitsSplit:
    """Two concentric circles (label 1 = inner circle): a task a linear model cannot solve.

    Returns a :class:`DigitsSplit`-shaped tuple (x (N, 2), y (N,)) with an empty
    validation part, so it plugs into the same training code as the digits.
    """
    from sklearn.datasets import make_circles

    dt = _check_dtype(dtype)
    x, y = make_circles(n_samples=n_train + n_test, noise=noise, factor=factor, random_state=seed)
    x = x.astype(dt)
    y = y.astype(np.int64)
    empty_x, empty_y = np.zeros((0, 2), dtype=dt), np.zeros(0, dtype=np.int64)
    return DigitsSplit(x[:n_train], y[:n_train], empty_x, empty_y, x[n_train:], y[n_train:])
