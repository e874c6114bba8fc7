"""Timing helpers: repeat a call, keep the median and the minimum; measure copy bandwidth."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to measure one case: at least ``min_repeats`` calls and ``min_seconds``."""

    min_repeats: int = 5
    min_seconds: float = 0.05
    max_repeats: int = 30
    warmup: int = 1


QUICK = Budget(min_repeats=1, min_seconds=0.0, max_repeats=1, warmup=0)


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``repeats`` timed calls (after the warm-up)."""

    median: float
    min: float
    repeats: int


def measure(fn: Callable[[], object], budget: Budget) -> Timing:
    """Time ``fn()`` with ``time.perf_counter``: warm up, then repeat within ``budget``."""
    for _ in range(budget.warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < budget.max_repeats and (
        len(times) < budget.min_repeats or time.perf_counter() - start < budget.min_seconds
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(median=statistics.median(times), min=min(times), repeats=len(times))


def measure_interleaved(
    calls: list[tuple[Callable[[], object], Callable[[], object]]], budget: Budget
) -> list[Timing]:
    """Time several calls round-robin: one timed call of each per round.

    ``calls`` holds ``(prepare, fn)`` pairs; ``prepare()`` runs untimed before each
    ``fn()`` (e.g. to set torch's thread count).  Interleaving puts every call under
    the same background load, so ratios between them hold even while the machine's
    load drifts.  After ``budget.warmup`` untimed rounds, rounds go on until there are
    ``budget.min_repeats`` of them and ``budget.min_seconds`` per call have passed
    (at most ``budget.max_repeats`` rounds).
    """
    for _ in range(budget.warmup):
        for prepare, fn in calls:
            prepare()
            fn()
    times: list[list[float]] = [[] for _ in calls]
    start = time.perf_counter()
    rounds = 0
    while rounds < budget.max_repeats and (
        rounds < budget.min_repeats or time.perf_counter() - start < budget.min_seconds * len(calls)
    ):
        for (prepare, fn), bucket in zip(calls, times, strict=True):
            prepare()
            t0 = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - t0)
        rounds += 1
    return [Timing(median=statistics.median(t), min=min(t), repeats=len(t)) for t in times]


@dataclass(frozen=True)
class Bandwidth:
    """Copy bandwidth: bytes read + bytes written per second by ``np.copyto``."""

    megabytes: float
    """Size of the source array (MB, 10⁶ bytes); a copy moves twice this."""
    gb_per_s_median: float
    gb_per_s_best: float


def copy_bandwidth(megabytes: float = 256.0, repeats: int = 5) -> Bandwidth:
    """Measure ``np.copyto(dst, src)`` on a float64 array of ``megabytes`` (both pre-faulted).

    A copy reads ``megabytes`` and writes ``megabytes``, so GB/s counts 2 × size / time:
    the same bytes model as the kernels' lower bounds (every pass read or written counts).
    """
    n = max(1, int(megabytes * 1e6) // 8)
    src = np.random.default_rng(0).standard_normal(n)
    dst = np.empty_like(src)
    dst.fill(0.0)  # touch every page before timing
    t = measure(lambda: np.copyto(dst, src), Budget(min_repeats=repeats, min_seconds=0.0,
                                                    max_repeats=repeats, warmup=1))
    moved = 2 * src.nbytes / 1e9
    return Bandwidth(megabytes=src.nbytes / 1e6, gb_per_s_median=moved / t.median,
                     gb_per_s_best=moved / t.min)
