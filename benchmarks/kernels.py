"""Normalization kernels: bncourse.reference (NumPy) against torch's native CPU kernels.

Every case is timed in this process, one after the other, so the report's numbers are
ratios measured on the same machine in the same minute, not absolute claims.

Implementations (column ``impl``):

* ``numpy`` -- :mod:`bncourse.reference`, the answer key: the formulas as written, one
  NumPy expression per line of math (spatial batch norm: the 1-D functions on the
  ``(N·H·W, C)`` rows); ``numpy-graph`` is its node-by-node teaching backward;
* ``numpy-fast`` -- the fast path, :mod:`bncourse.reference._fast`: the same signatures
  and results from cache-blocked kernels (used by nothing but these benchmarks);
* ``torch`` -- ``torch.ops.aten.native_batch_norm`` / ``native_batch_norm_backward`` for
  the separate passes, ``functional.batch_norm`` / ``functional.layer_norm`` / ``functional.group_norm`` + autograd
  for forward+backward, with ``torch.set_num_threads(1)`` and ``(2)``.

Bytes model (``passes``: whole-array reads + writes a kernel cannot avoid): forward 2
(read x, write y); backward 3 (read dy and x̂ or x, write dx); forward+backward 5;
inference 2.  The lower bound is ``passes × N·D·itemsize / best copy bandwidth``; a real
kernel also reads x once more for the statistics, so 1.5× the bound is already good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from benchmarks.timing import Budget, measure_interleaved
from bncourse import reference
from bncourse.reference import _fast

SHAPES: tuple[tuple[int, ...], ...] = ((256, 1024), (4096, 1024), (32, 64, 32, 32), (128, 64, 16, 16))
QUICK_SHAPES: tuple[tuple[int, ...], ...] = ((64, 32), (4, 8, 4, 4))
DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.float32), np.dtype(np.float64))
THREADS = (1, 2)
GROUPS = 8
FOLD_OUT = 256
"""Output width of the linear layer in the folded-BN inference case."""

PASSES = {
    "BN forward": 2,
    "BN backward": 3,
    "BN forward+backward": 5,
    "LN forward+backward": 5,
    "GN forward+backward": 5,
    "BN inference": 2,
}
TORCH = "torch"


@dataclass
class Row:
    """One timed case."""

    kernel: str
    shape: str
    dtype: str
    impl: str
    threads: int | None
    median_ms: float
    min_ms: float
    repeats: int
    passes: int | None
    megabytes: float
    bound_ms: float | None
    vs_torch: float | None = None
    """median / median of torch with 1 thread, same kernel, shape and dtype."""
    vs_bound: float | None = None
    """median / the memory-bandwidth lower bound."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _data(shape: tuple[int, ...], dtype: np.dtype[Any]) -> tuple[np.ndarray, ...]:
    """x (mean 1, std 2 per channel), gamma, beta, dout, all C-contiguous in ``dtype``."""
    rng = np.random.default_rng(0)
    C = shape[1]
    x = (2.0 * rng.standard_normal(shape) + 1.0).astype(dtype)
    gamma = rng.uniform(0.5, 2.0, C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, dout


def _rows(a: np.ndarray) -> np.ndarray:
    """``(N, C, H, W) -> (N·H·W, C)`` (a copy), ``(N, D)`` unchanged."""
    return a if a.ndim == 2 else np.ascontiguousarray(a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1]))


Case = tuple[str, str, int | None, Callable[[], object]]
"""(kernel, impl, torch threads or None, the call to time)."""


def _numpy_cases(shape: tuple[int, ...], dtype: np.dtype[Any]) -> list[Case]:
    x, gamma, beta, dout = _data(shape, dtype)
    spatial = len(shape) == 4
    fwd = reference.spatial_batchnorm_forward if spatial else reference.batchnorm_forward
    bwd = reference.spatial_batchnorm_backward if spatial else reference.batchnorm_backward_alt
    ffwd = _fast.spatial_batchnorm_forward if spatial else _fast.batchnorm_forward
    fbwd = _fast.spatial_batchnorm_backward if spatial else _fast.batchnorm_backward_alt
    _, cache = fwd(x, gamma, beta)
    _, fcache = ffwd(x, gamma, beta)
    # The graph backward is (N, D) only: for images it runs on the (N·H·W, C) rows.
    x_rows, dout_rows = _rows(x), _rows(dout)
    _, rows_cache = reference.batchnorm_forward(x_rows, gamma, beta)

    def fwd_bwd() -> object:
        return bwd(dout, fwd(x, gamma, beta)[1])

    def fwd_bwd_fast() -> object:
        return fbwd(dout, ffwd(x, gamma, beta)[1])

    def fwd_bwd_graph() -> object:
        return reference.batchnorm_backward(dout_rows, reference.batchnorm_forward(x_rows, gamma, beta)[1])

    ln_gamma = np.ones(shape[1:], dtype)
    ln_beta = np.zeros(shape[1:], dtype)

    def ln() -> object:
        return reference.layernorm_backward(dout, reference.layernorm_forward(x, ln_gamma, ln_beta)[1])

    def gn() -> object:
        return reference.groupnorm_backward(dout, reference.groupnorm_forward(x, gamma, beta, GROUPS)[1])

    cases: list[Case] = [
        ("BN forward", "numpy-fast", None, lambda: ffwd(x, gamma, beta)),
        ("BN forward", "numpy", None, lambda: fwd(x, gamma, beta)),
        ("BN backward", "numpy-fast", None, lambda: fbwd(dout, fcache)),
        ("BN backward", "numpy", None, lambda: bwd(dout, cache)),
        ("BN backward", "numpy-graph", None, lambda: reference.batchnorm_backward(dout_rows, rows_cache)),
        ("BN forward+backward", "numpy-fast", None, fwd_bwd_fast),
        ("BN forward+backward", "numpy", None, fwd_bwd),
        ("BN forward+backward", "numpy-graph", None, fwd_bwd_graph),
        ("LN forward+backward", "numpy", None, ln),
        ("GN forward+backward", "numpy", None, gn),
    ]
    if not spatial:
        mean, var = x.mean(axis=0), x.var(axis=0, ddof=1)
        cases.append(("BN inference", "numpy", None,
                      lambda: reference.batchnorm_inference(x, gamma, beta, mean, var)))
    return cases


def _torch_cases(shape: tuple[int, ...], dtype: np.dtype[Any], threads: int) -> list[Case]:
    x, gamma, beta, dout = (torch.from_numpy(a) for a in _data(shape, dtype))
    eps = 1e-5
    native_bn = torch.ops.aten.native_batch_norm
    native_bn_backward = torch.ops.aten.native_batch_norm_backward
    _, save_mean, save_invstd = native_bn(x, gamma, beta, None, None, True, 0.1, eps)
    xg, gg, bg = (t.clone().requires_grad_() for t in (x, gamma, beta))
    ln_shape = list(shape[1:])

    def autograd(forward: Callable[[], torch.Tensor]) -> Callable[[], object]:
        def run() -> object:
            xg.grad = gg.grad = bg.grad = None
            forward().backward(dout)
            return xg.grad
        return run

    cases: list[Case] = [
        ("BN forward", TORCH, threads, lambda: native_bn(x, gamma, beta, None, None, True, 0.1, eps)),
        ("BN backward", TORCH, threads,
         lambda: native_bn_backward(dout, x, gamma, None, None, save_mean, save_invstd, True, eps,
                                    [True, True, True])),
        ("BN forward+backward", TORCH, threads,
         autograd(lambda: functional.batch_norm(xg, None, None, gg, bg, training=True, eps=eps))),
        ("LN forward+backward", TORCH, threads,
         autograd(lambda: functional.layer_norm(xg, ln_shape, eps=eps))),
        ("GN forward+backward", TORCH, threads,
         autograd(lambda: functional.group_norm(xg, GROUPS, gg, bg, eps=eps))),
    ]
    if len(shape) == 2:
        mean, var = x.mean(dim=0), x.var(dim=0)

        def inference() -> object:
            with torch.no_grad():
                return functional.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps)

        cases.append(("BN inference", TORCH, threads, inference))
    return cases


def _fold_cases(shape: tuple[int, ...], dtype: np.dtype[Any], threads_list: tuple[int, ...]) -> list[Case]:
    """Linear (D → FOLD_OUT) followed by BN at test time, and the same with BN folded in."""
    rng = np.random.default_rng(1)
    D = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    W = (rng.standard_normal((FOLD_OUT, D)) / np.sqrt(D)).astype(dtype)
    b, gamma, beta, mean = (rng.standard_normal(FOLD_OUT).astype(dtype) for _ in range(4))
    var = rng.uniform(0.5, 2.0, FOLD_OUT).astype(dtype)
    W_f, b_f = reference.fold_batchnorm(W, b, gamma, beta, mean, var)
    cases: list[Case] = [
        ("Linear+BN inference", "numpy", None,
         lambda: reference.batchnorm_inference(x @ W.T + b, gamma, beta, mean, var)),
        ("Linear+BN inference", "numpy-folded", None, lambda: x @ W_f.T + b_f),
    ]
    xt, Wt, bt, gt, betat, mt, vt, Wft, bft = (
        torch.from_numpy(a) for a in (x, W, b, gamma, beta, mean, var, W_f, b_f))

    def unfolded() -> object:
        with torch.no_grad():
            return functional.batch_norm(functional.linear(xt, Wt, bt), mt, vt, gt, betat, training=False)

    def folded() -> object:
        with torch.no_grad():
            return functional.linear(xt, Wft, bft)

    for n in threads_list:
        cases += [("Linear+BN inference", TORCH, n, unfolded),
                  ("Linear+BN inference", "torch-folded", n, folded)]
    return cases


def run_kernels(shapes: tuple[tuple[int, ...], ...], budget: Budget, bandwidth_gb_s: float,
                threads: tuple[int, ...] = THREADS, progress: Callable[[str], None] = print) -> list[Row]:
    """Time every case for every shape and dtype; ratios filled in by :func:`add_ratios`.

    The cases of one shape and dtype are timed round-robin (:func:`measure_interleaved`),
    so the NumPy and torch numbers that are divided by each other share the same load.
    """
    before = torch.get_num_threads()
    rows: list[Row] = []
    for shape in shapes:
        for dtype in DTYPES:
            cases = _numpy_cases(shape, dtype)
            for n in threads:
                cases += _torch_cases(shape, dtype, n)
            if len(shape) == 2:
                cases += _fold_cases(shape, dtype, threads)
            itemsize = np.dtype(dtype).itemsize
            megabytes = float(np.prod(shape)) * itemsize / 1e6
            timings = measure_interleaved(
                [(_threads_setter(n_threads or 1), fn) for _, _, n_threads, fn in cases], budget)
            for (kernel, impl, n_threads, _), t in zip(cases, timings, strict=True):
                passes = PASSES.get(kernel)
                bound = None if passes is None else passes * megabytes / 1e3 / bandwidth_gb_s * 1e3
                rows.append(Row(kernel=kernel, shape=str(tuple(shape)), dtype=np.dtype(dtype).name,
                                impl=impl, threads=n_threads, median_ms=t.median * 1e3,
                                min_ms=t.min * 1e3, repeats=t.repeats, passes=passes,
                                megabytes=megabytes, bound_ms=bound))
            progress(f"kernels {tuple(shape)} {np.dtype(dtype).name}: {len(cases)} cases")
    torch.set_num_threads(before)
    add_ratios(rows)
    return rows


def _threads_setter(n: int) -> Callable[[], None]:
    """A call that sets torch's intra-op thread count to ``n`` (if it is not already)."""
    def prepare() -> None:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return prepare


def add_ratios(rows: list[Row]) -> None:
    """Fill ``vs_torch`` (against torch with 1 thread) and ``vs_bound`` in place."""
    torch1 = {(r.kernel, r.shape, r.dtype): r.median_ms for r in rows
              if r.impl == TORCH and r.threads == 1}
    for r in rows:
        ref = torch1.get((r.kernel, r.shape, r.dtype))
        r.vs_torch = None if ref is None else r.median_ms / ref
        r.vs_bound = None if r.bound_ms is None else r.median_ms / r.bound_ms
