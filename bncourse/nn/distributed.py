"""Synchronized batch normalization, shown with real processes and ``torch.distributed``.

With data parallelism each process (each GPU, usually) sees only its own shard of the
batch.  Plain BN then normalizes with the shard's statistics -- a batch of 2 per GPU is
a batch of 2 for BN, however many GPUs there are.  *Synchronized* BN
(``torch.nn.SyncBatchNorm``) all-reduces the statistics so that every process
normalizes with the mean and variance of the whole global batch:

.. math::
    n = \\sum_k n_k, \\quad \\mu = \\frac{1}{n} \\sum_k \\sum_{i \\in k} x_i, \\quad
    \\sigma^2 = \\frac{1}{n} \\sum_k \\sum_{i \\in k} (x_i - \\mu)^2

:func:`run_sync_batchnorm` starts ``len(shards)`` processes on this machine (start
method ``spawn``, backend ``gloo``, rendezvous on ``127.0.0.1`` and a free port), lets
each compute these sums on its shard, combines them with ``all_reduce`` and returns
the global statistics and every process's normalized shard.  The worker is a
module-level function so that spawned processes (also from a Jupyter kernel) can
import it.  Importing this module imports torch.
"""

from __future__ import annotations

import os
import queue as queue_module
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bncourse.conventions import EPS
from bncourse.errors import DTypeError, ParameterError, ShapeError
from bncourse.validation import FloatArray

__all__ = ["SyncBatchNormResult", "free_port", "run_sync_batchnorm", "sync_batch_stats"]



class SyncBatchNormResult(NamedTuple):
    """What :func:`run_sync_batchnorm` returns (computed inside the worker processes)."""

    mean: FloatArray
    """Global per-channel mean ``(C,)``, as every rank computed it."""
    var: FloatArray
    """Global per-channel biased variance ``(C,)``."""
    n_values: int
    """Values per channel in the global batch (``n = Σ_k N_k·H·W``)."""
    outputs: list[FloatArray]
    """Each rank's shard normalized with the global statistics, in rank order."""
    max_rank_disagreement: float
    """Largest difference between the statistics the ranks computed (0: all agree)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for the rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reduce_dims(ndim: int) -> list[int]:
    """Every dimension except the channel dimension 1: ``[0, 2, 3, ...]``."""
    return [0, *range(2, ndim)]


def _worker(
    rank: int,
    world_size: int,
    port: int,
    shards: list[FloatArray],
    eps: float,
    results: Any,
    quiet: bool,
) -> None:
    """One process: global BN statistics of ``shards[rank]`` by two all-reduces."""
    if quiet:  # keep gloo's log lines out of the notebook (errors still propagate)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=60),
    )
    try:
        x = torch.from_numpy(shards[rank])
        dims = _reduce_dims(x.dim())
        n_local = x.numel() // x.shape[1]
        # all-reduce 1: Σ x and n  ->  μ = Σ x / n
        packed = torch.cat([x.sum(dims), torch.tensor([float(n_local)], dtype=x.dtype)])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        n = packed[-1]
        mean = packed[:-1] / n
        # all-reduce 2: Σ (x − μ)²  ->  σ² = Σ (x − μ)² / n   (two passes: no cancellation)
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        centered = x - mean.reshape(shape)
        sq = (centered * centered).sum(dims)
        dist.all_reduce(sq, op=dist.ReduceOp.SUM)
        var = sq / n
        out = centered / torch.sqrt(var.reshape(shape) + eps)
        results.put((rank, mean.numpy().copy(), var.numpy().copy(), int(n.item()), out.numpy().copy()))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _check_shards(shards: Sequence[Any]) -> list[FloatArray]:
    fn = "run_sync_batchnorm"
    if len(shards) < 1:
        raise ShapeError(f"{fn}: need at least one shard, got {len(shards)}")
    arrays = []
    for k, s in enumerate(shards):
        a = np.asarray(s)
        if a.dtype not in (np.float32, np.float64):
            raise DTypeError(f"{fn}: shard {k} must be float32 or float64, got dtype {a.dtype}")
        if a.ndim < 2:
            raise ShapeError(f"{fn}: shard {k} must be (N, C) or (N, C, H, W), got shape {a.shape}")
        arrays.append(np.ascontiguousarray(a))
    first = arrays[0]
    for k, a in enumerate(arrays[1:], start=1):
        if a.shape[1:] != first.shape[1:] or a.dtype != first.dtype:
            raise ShapeError(
                f"{fn}: every shard must have shape (N_k, *{first.shape[1:]}) and dtype "
                f"{first.dtype} like shard 0, got shard {k} with shape {a.shape}, dtype {a.dtype}"
            )
    return arrays


def run_sync_batchnorm(
    shards: Sequence[FloatArray],
    eps: float = EPS,
    *,
    timeout: float = 120.0,
    quiet: bool = True,
) -> SyncBatchNormResult:
    r"""Global BN statistics of ``shards``, one process per shard, via ``all_reduce``.

    Each rank k holds ``x_k`` of shape ``(N_k, C, *S)`` and computes, with gloo:

    .. math::
        (\textstyle\sum_{i} x_i,\ n_k) \xrightarrow{\text{all-reduce}} \mu, \qquad
        \textstyle\sum_{i} (x_i - \mu)^2 \xrightarrow{\text{all-reduce}} n \sigma^2, \qquad
        \hat x_k = (x_k - \mu) / \sqrt{\sigma^2 + \epsilon}

    which is exactly what full-batch BN computes on the concatenation of the shards.
    Shards may have different batch sizes.

    Shapes:
        shards: a list of ``(N_k, C)`` or ``(N_k, C, H, W)`` arrays (same C, H, W, dtype).

    Returns:
        A :class:`SyncBatchNormResult` (mean, var, count, outputs, max_rank_disagreement).

    Raises:
        ShapeError, DTypeError: bad shards (checked before any process starts);
        ParameterError: ``eps <= 0``; RuntimeError: a worker failed or timed out.

    The workers are started with ``spawn``, which re-imports the caller's main module in
    each of them: in a notebook that is harmless, but a plain script must call this under
    ``if __name__ == "__main__":`` (as for any ``multiprocessing`` code), or every worker
    would run the script again.
    """
    arrays = _check_shards(shards)
    if not eps > 0:
        raise ParameterError(f"run_sync_batchnorm: eps must be > 0, got eps={eps!r}")
    world_size = len(arrays)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = mp.start_processes(
        _worker,
        args=(world_size, free_port(), arrays, float(eps), results, quiet),
        nprocs=world_size,
        join=False,
        start_method="spawn",
    )
    got: dict[int, tuple[Any, ...]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(got) < world_size:
            try:
                item = results.get(timeout=0.2)
                got[item[0]] = item[1:]
            except queue_module.Empty:
                procs.join(timeout=0)  # raises if a worker died
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"run_sync_batchnorm: no result from ranks "
                        f"{sorted(set(range(world_size)) - set(got))} after {timeout:g} s"
                    ) from None
        while not procs.join(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                raise RuntimeError(f"run_sync_batchnorm: workers did not exit within {timeout:g} s")
    except BaseException:
        for p in procs.processes:
            if p.is_alive():
                p.terminate()
        raise
    mean, var, count, _ = got[0]
    disagreement = max(
        max(float(np.max(np.abs(got[k][0] - mean))), float(np.max(np.abs(got[k][1] - var))))
        for k in range(world_size)
    )
    outputs = [got[k][3] for k in range(world_size)]
    return SyncBatchNormResult(mean, var, int(count), outputs, disagreement)


def sync_batch_stats(shards: Sequence[FloatArray], eps: float = EPS) -> tuple[FloatArray, FloatArray]:
    """``(mean, var)``: the global per-channel BN statistics of ``shards``, one process each.

    The statistics part of :func:`run_sync_batchnorm`; see there for the formula.

    Shapes:
        shards: ``(N_k, C)`` or ``(N_k, C, H, W)`` arrays. Returns ``(C,)`` and ``(C,)``.
    """
    res = run_sync_batchnorm(shards, eps)
    return res.mean, res.var
