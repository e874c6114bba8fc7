"""Alternatives to batch normalization and its caveats: the helpers of notebook 07.

* :data:`NORM_AXES`, :func:`plot_norm_cube`, :func:`torch_normalizations` -- BN, LN, IN
  and GN as one kernel over different axes, and PyTorch's modules to compare with.
* :func:`batch_size_sweep`, :func:`small_batch_experiment`, :func:`batch_stat_noise`,
  :func:`noniid_renorm_experiment` -- small and non-i.i.d. batches on the digits CNN.
* :func:`adabn`, :func:`domain_shift_experiment` -- test-time shift and AdaBN.
* :func:`regularization_experiment` -- the regularization effect of batch noise.
* :func:`sequence_norm_demo` -- why sequences use LayerNorm.
* :func:`weight_norm_parity`, :func:`spectral_norm_parity`, :func:`power_iteration_trace`,
  :func:`lipschitz_demo` -- normalizing weights instead of activations.

Importing this module imports torch and matplotlib.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import nn

from bncourse import oracle
from bncourse.conventions import EPS, SGD_MOMENTUM
from bncourse.course import plots
from bncourse.course.data import DigitsSplit, load_digits_split, shift_digits
from bncourse.course.models import make_cnn
from bncourse.course.training import accuracy, as_tensor, train
from bncourse.errors import ParameterError, ShapeError
from bncourse.nn.renorm import BatchRenorm1d, BatchRenorm2d, renorm_limits
from bncourse.validation import FloatArray

__all__ = [
    "GN_PAPER",
    "NORM_AXES",
    "NonIIDResult",
    "RegularizationResult",
    "ShiftResult",
    "SmallBatchResult",
    "SweepResult",
    "adabn",
    "batch_size_sweep",
    "batch_stat_noise",
    "domain_shift_experiment",
    "lipschitz_demo",
    "noniid_renorm_experiment",
    "plot_norm_cube",
    "plot_power_iteration",
    "plot_small_batch",
    "power_iteration_trace",
    "regularization_experiment",
    "sequence_norm_demo",
    "small_batch_experiment",
    "spectral_norm_parity",
    "torch_normalizations",
    "weight_norm_parity",
]


NORM_AXES: dict[str, str] = {
    "BatchNorm": "(N, H, W) per channel",
    "LayerNorm": "(C, H, W) per example",
    "InstanceNorm": "(H, W) per example and channel",
    "GroupNorm": "(C/G, H, W) per example and group",
}
"""What each normalization averages over, for an ``(N, C, H, W)`` input."""

GN_PAPER: dict[str, dict[int, float]] = {
    "BN": {32: 23.6, 16: 23.7, 8: 24.8, 4: 27.3, 2: 34.7},
    "GN": {32: 24.1, 16: 24.2, 8: 24.0, 4: 24.2, 2: 24.1},
}
"""Wu & He 2018, ResNet-50 on ImageNet, validation error (%) by images per worker
(columns 16 and 8 only from notes quoting the paper; see PAPERS.md)."""


# ----------------------------------------------------------------------------- the cube


def _shaded_box(kind: str, shape: tuple[int, int, int], groups: int) -> tuple[tuple[int, int], ...]:
    """The box ``((n0, n1), (c0, c1), (s0, s1))`` of cells sharing the statistics of cell (0, 0, 0)."""
    N, C, S = shape
    boxes = {
        "BatchNorm": ((0, N), (0, 1), (0, S)),
        "LayerNorm": ((0, 1), (0, C), (0, S)),
        "InstanceNorm": ((0, 1), (0, 1), (0, S)),
        "GroupNorm": ((0, 1), (0, C // groups), (0, S)),
    }
    if kind not in boxes:
        raise ParameterError(f"kind must be one of {list(NORM_AXES)}, got {kind!r}")
    return boxes[kind]


def _cube_mask(kind: str, shape: tuple[int, int, int], groups: int) -> NDArray[np.bool_]:
    """Cells ``(n, c, hw)`` that share the statistics of the cell (0, 0, 0)."""
    (n0, n1), (c0, c1), (s0, s1) = _shaded_box(kind, shape, groups)
    m = np.zeros(shape, dtype=bool)
    m[n0:n1, c0:c1, s0:s1] = True
    return m


def plot_norm_cube(shape: tuple[int, int, int] = (4, 6, 4), groups: int = 3) -> Figure:
    """The ``(N, C, H·W)`` block four times, the values one mean/variance covers shaded.

    The layout of Figure 2 of Wu & He (2018): C to the right, H·W (the spatial axes
    flattened) up, N into the page, drawn in oblique projection so that each block shows
    its front (example 0), top and right faces.  BN shades one channel of every example,
    LN every channel of one example, IN one channel of one example, GN one example's
    group of ``C/groups`` consecutive channels.  Returns the figure.
    """
    N, C, S = shape
    if groups < 1 or C % groups:
        raise ParameterError(f"plot_norm_cube: C={C} not divisible by groups={groups}")
    plots.use_style()
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    k = 0.45  # depth: one example moves (k·cos, k·sin) in the page
    ddx, ddy = k * np.cos(np.pi / 5), k * np.sin(np.pi / 5)

    def p(c: float, s: float, n: float) -> tuple[float, float]:
        return (c + n * ddx, s + n * ddy)

    def faces(box: tuple[tuple[int, int], ...]) -> list[list[tuple[float, float]]]:
        """The visible parts of a box lying on the block's front, top and right faces."""
        (n0, n1), (c0, c1), (s0, s1) = box
        out = []
        if n0 == 0:
            out.append([p(c0, s0, 0), p(c1, s0, 0), p(c1, s1, 0), p(c0, s1, 0)])
        if s1 == S:
            out.append([p(c0, S, n0), p(c1, S, n0), p(c1, S, n1), p(c0, S, n1)])
        if c1 == C:
            out.append([p(C, s0, n0), p(C, s0, n1), p(C, s1, n1), p(C, s1, n0)])
        return out

    # 2 × 2 panels: at slide font sizes four in a row leave each title ~300 px.
    fig, axes = plt.subplots(2, 2, figsize=(plots.MAX_WIDTH_IN, 7.0), layout="constrained")
    shaded = plots.COLORS["gn"]
    for ax, kind in zip(axes.flat, NORM_AXES, strict=True):
        for face in faces(((0, N), (0, C), (0, S))):
            ax.add_patch(Polygon(face, closed=True, facecolor="#eeeeee", edgecolor="#333333", lw=1.0))
        for face in faces(_shaded_box(kind, shape, groups)):
            ax.add_patch(Polygon(face, closed=True, facecolor=shaded, edgecolor="#333333", lw=1.0, alpha=0.85))
        grid = dict(color="#777777", lw=0.4)
        for c in range(1, C):  # cell lines on the three faces
            ax.plot(*zip(p(c, 0, 0), p(c, S, 0), p(c, S, N), strict=True), **grid)
        for s in range(1, S):
            ax.plot(*zip(p(0, s, 0), p(C, s, 0), p(C, s, N), strict=True), **grid)
        for n in range(1, N):
            ax.plot(*zip(p(0, S, n), p(C, S, n), p(C, 0, n), strict=True), **grid)
        ax.annotate("", xy=p(C, -0.7, 0), xytext=p(0, -0.7, 0), arrowprops=dict(arrowstyle="->"))
        ax.text(*p(C / 2, -1.4, 0), "C (channels)", ha="center", va="center")
        ax.annotate("", xy=p(-0.6, S, 0), xytext=p(-0.6, 0, 0), arrowprops=dict(arrowstyle="->"))
        ax.text(*p(-1.1, S / 2, 0), "H, W", ha="center", va="center", rotation=90)
        ax.annotate("", xy=p(C + 0.4, -0.3, N), xytext=p(C + 0.4, -0.3, 0), arrowprops=dict(arrowstyle="->"))
        ax.text(*p(C + 0.9, -0.3, N / 2), "N (batch)", ha="left", va="center")
        ax.set_xlim(-1.6, C + N * ddx + 2.8)
        ax.set_ylim(-1.9, S + N * ddy + 0.4)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{kind}\n{NORM_AXES[kind]}")
    fig.suptitle("Shaded: the values that share one mean and variance, x of shape (N, C, H, W)")
    return fig


def torch_normalizations(x: FloatArray, groups: int, eps: float = EPS) -> dict[str, FloatArray]:
    """BN, LN, IN and GN of ``x`` computed by PyTorch's modules (no affine part).

    ``BatchNorm2d`` in training mode (batch statistics), ``LayerNorm(x.shape[1:])``,
    ``InstanceNorm2d`` and ``GroupNorm(groups, C)``, all with ``eps``.

    Shapes:
        x: ``(N, C, H, W)``. Returns arrays of the same shape and dtype, keyed by name.
    """
    if x.ndim != 4:
        raise ShapeError(f"torch_normalizations expects (N, C, H, W), got shape {x.shape}")
    C = x.shape[1]
    t = torch.from_numpy(np.ascontiguousarray(x))
    modules: dict[str, nn.Module] = {
        "BatchNorm": nn.BatchNorm2d(C, eps=eps, affine=False).train(),
        "LayerNorm": nn.LayerNorm(list(x.shape[1:]), eps=eps, elementwise_affine=False),
        "InstanceNorm": nn.InstanceNorm2d(C, eps=eps),
        "GroupNorm": nn.GroupNorm(groups, C, eps=eps, affine=False),
    }
    out = {}
    with torch.no_grad():
        for name, m in modules.items():
            out[name] = m.to(t.dtype)(t).numpy()
    return out


# ------------------------------------------------------------------- small batches


@dataclass
class SweepResult:
    """Test accuracy (eval mode) of each normalization at each training batch size."""

    batch_sizes: list[int]
    accuracy: dict[str, list[float]]
    steps: int

    def error_percent(self, norm: str) -> list[float]:
        return [100.0 * (1.0 - a) for a in self.accuracy[norm]]


def _digits(split: DigitsSplit | None) -> DigitsSplit:
    return split if split is not None else load_digits_split(seed=0, images=True)


def batch_size_sweep(
    norms: Sequence[str] = ("bn", "gn", "ln"),
    batch_sizes: Sequence[int] = (2, 4, 8, 16, 32),
    steps: int = 150,
    lr: float = 0.02,
    sgd_momentum: float = SGD_MOMENTUM,
    channels: Sequence[int] = (8, 16),
    groups: int = 4,
    seed: int = 0,
    split: DigitsSplit | None = None,
) -> SweepResult:
    """Train the digits CNN once per (normalization, batch size); record test accuracy.

    Every run has the same number of SGD steps and the same learning rate, so a larger
    batch also means more examples seen: compare normalizations *at each batch size*.
    Models are evaluated in eval mode (BN with its running statistics).
    """
    d = _digits(split)
    acc: dict[str, list[float]] = {}
    for norm in norms:
        acc[norm] = []
        for bs in batch_sizes:
            model = make_cnn(channels=channels, norm=norm, groups=groups, seed=seed)
            h = train(model, d.x_train, d.y_train, d.x_test, d.y_test, steps=steps,
                      batch_size=bs, lr=lr, sgd_momentum=sgd_momentum, eval_every=10**9, seed=seed)
            acc[norm].append(h.final_acc)
    return SweepResult(list(batch_sizes), acc, steps)


@torch.no_grad()
def batch_stat_noise(
    model: nn.Module, x: FloatArray, y: NDArray[np.int64], batch_sizes: Sequence[int], seed: int = 0
) -> dict[int, float]:
    """Test accuracy when BN normalizes each test batch of size B with *its own* statistics.

    The model is put in training mode on a deep copy (so the original's running
    statistics are untouched), the test set is cut into shuffled batches of B and the
    predictions are scored.  Shows how much a BN network's output depends on the
    batch it sits in.  Returns ``{B: accuracy}``.
    """
    m = copy.deepcopy(model).train()
    xt, yt = as_tensor(x), as_tensor(y)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(xt)))
    out = {}
    for bs in batch_sizes:
        n = len(xt) - len(xt) % bs
        idx = perm[:n]
        pred = torch.cat([m(xt[idx[i:i + bs]]).argmax(1) for i in range(0, n, bs)])
        out[int(bs)] = float((pred == yt[idx]).float().mean())
    return out


@dataclass
class SmallBatchResult:
    """Per seed: test accuracy in eval mode and in training mode (batch statistics), per (norm, B)."""

    batch_sizes: list[int]
    epochs: int
    seeds: list[int]
    eval_acc: dict[str, dict[int, list[float]]]
    """``eval_acc[norm][B]``: one test accuracy per seed, eval mode (BN: running statistics)."""
    batch_acc: dict[str, dict[int, list[float]]]
    """The same networks in training mode on shuffled test batches of B (BN: the batch's statistics)."""

    def rows(self) -> list[dict[str, Any]]:
        """One row per (norm, B): mean and spread (min–max over seeds) of both accuracies and their gap."""
        out = []
        for norm, per_b in self.eval_acc.items():
            for bs in self.batch_sizes:
                ev, ba = np.array(per_b[bs]), np.array(self.batch_acc[norm][bs])
                gap = ev - ba
                out.append({
                    "norm": norm.upper(), "batch": bs,
                    "eval mode": f"{ev.mean():.3f} ({ev.min():.3f}-{ev.max():.3f})",
                    "train mode": f"{ba.mean():.3f} ({ba.min():.3f}-{ba.max():.3f})",
                    "gap": f"{gap.mean():+.3f} ({gap.min():+.3f}..{gap.max():+.3f})",
                })
        return out


def small_batch_experiment(
    norms: Sequence[str] = ("bn", "gn"),
    batch_sizes: Sequence[int] = (2, 16),
    epochs: int = 2,
    lr: float = 0.02,
    sgd_momentum: float = SGD_MOMENTUM,
    channels: Sequence[int] = (8, 16),
    groups: int = 4,
    seeds: Sequence[int] = (0, 1, 2),
    split: DigitsSplit | None = None,
) -> SmallBatchResult:
    """BN vs GN trained with small and larger batches for the same number of **epochs**.

    Each run sees every training image ``epochs`` times (``epochs · n_train // B`` steps), so
    the batch size changes the number and the noise of the updates, not the data seen.
    After training, each network is scored on the test set twice: in eval mode (what it
    is deployed as; BN uses its running statistics) and in training mode on shuffled test
    batches of the same B (BN normalizes with each batch's own statistics, as in
    training).  GN has no batch axis, so its two numbers are equal by construction; BN's
    differ, and the difference is the train/test mismatch the GN paper blames.
    """
    d = _digits(split)
    n = len(d.x_train)
    eval_acc: dict[str, dict[int, list[float]]] = {}
    batch_acc: dict[str, dict[int, list[float]]] = {}
    for norm in norms:
        eval_acc[norm], batch_acc[norm] = {}, {}
        for bs in batch_sizes:
            eval_acc[norm][bs], batch_acc[norm][bs] = [], []
            for seed in seeds:
                model = make_cnn(channels=channels, norm=norm, groups=groups, seed=seed)
                h = train(model, d.x_train, d.y_train, d.x_test, d.y_test, steps=epochs * n // bs,
                          batch_size=bs, lr=lr, sgd_momentum=sgd_momentum, eval_every=10**9, seed=seed)
                eval_acc[norm][bs].append(h.final_acc)
                batch_acc[norm][bs].append(batch_stat_noise(model, d.x_test, d.y_test, (bs,), seed=seed)[bs])
    return SmallBatchResult(list(batch_sizes), epochs, list(seeds), eval_acc, batch_acc)


def plot_small_batch(result: SmallBatchResult) -> Figure:
    """Test accuracy of BN and GN per batch size, eval mode vs training mode; one dot per seed."""
    fig, axes = plots.new_figure(len(result.batch_sizes), width=plots.MAX_WIDTH_IN, height=5.0)
    axes = np.atleast_1d(axes)
    names = {"bn": "BatchNorm", "gn": "GroupNorm", "ln": "LayerNorm"}
    every = [a for t in (result.eval_acc, result.batch_acc) for per_b in t.values() for v in per_b.values() for a in v]
    low, high = min(every), max(every)
    for ax, bs in zip(axes, result.batch_sizes, strict=True):
        for i, norm in enumerate(result.eval_acc):
            color = plots.COLORS.get(norm)
            for j, (label, table, marker) in enumerate((("eval mode", result.eval_acc, "o"),
                                                        ("train mode", result.batch_acc, "s"))):
                vals = np.array(table[norm][bs])
                xpos = i * 2.5 + j
                ax.scatter(np.full(len(vals), xpos), vals, color=color, marker=marker, alpha=0.6,
                           label=f"{names.get(norm, norm)}, {label}")
                ax.plot([xpos - 0.3, xpos + 0.3], [vals.mean()] * 2, color=color, lw=2.5)
        ticks = [i * 2.5 + j for i in range(len(result.eval_acc)) for j in (0, 1)]
        ax.set_xticks(ticks, [f"{n.upper()}\n{m}" for n in result.eval_acc for m in ("eval", "train")])
        ax.set_xlabel("mode at test time")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"batch size {bs}")
        ax.set_ylim(low - 0.05, high + 0.05)  # one scale for every panel
    fig.suptitle(f"{result.epochs} epochs; one dot per seed ({len(result.seeds)}), bar = mean")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")
    return fig


@dataclass
class NonIIDResult:
    """Test accuracy (eval mode), one per seed, per method, after training on class-sorted batches."""

    accuracy: dict[str, list[float]]
    steps: int
    batch_size: int
    classes_per_batch: int

    def rows(self) -> list[dict[str, Any]]:
        return [{"method": k, "mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)),
                 "per seed": " ".join(f"{a:.3f}" for a in v)} for k, v in self.accuracy.items()]


def _class_sorted_batches(y: NDArray[np.int64], batch_size: int, classes_per_batch: int, steps: int,
                          seed: int) -> list[torch.Tensor]:
    """Index batches in which all examples come from ``classes_per_batch`` random classes."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]
    per = batch_size // classes_per_batch
    batches = []
    for _ in range(steps):
        classes = rng.choice(len(by_class), size=classes_per_batch, replace=False)
        idx = np.concatenate([rng.choice(by_class[c], size=per, replace=False) for c in classes])
        batches.append(torch.from_numpy(idx))
    return batches


def noniid_renorm_experiment(
    methods: Sequence[str] = ("BN", "Batch Renorm", "GN"),
    batch_size: int = 8,
    classes_per_batch: int = 1,
    steps: int = 400,
    lr: float = 0.02,
    sgd_momentum: float = SGD_MOMENTUM,
    r_max: float = 3.0,
    d_max: float = 5.0,
    bn_momentum: float = 0.01,
    channels: Sequence[int] = (8, 16),
    seeds: Sequence[int] = (0, 1, 2),
    split: DigitsSplit | None = None,
) -> NonIIDResult:
    """BN, Batch Renorm and GN trained on **non-i.i.d.** mini-batches, tested in eval mode.

    Every mini-batch holds ``batch_size`` examples of ``classes_per_batch`` random classes
    (with 1, a batch is a single digit), so the batch statistics describe one class
    while the running statistics, used at test time, describe all of them.  Batch Renorm
    follows the paper's schedule *shape* (plain BN, then r_max and d_max ramped up; the
    paper's 5k : 25k : 40k steps become ``w : 5w : 8w`` with ``w = steps // 10``), with
    moving-average rate ``bn_momentum`` (0.01 as in the paper) for BN and Batch Renorm.
    """
    d = _digits(split)
    xt, yt = as_tensor(d.x_train), as_tensor(d.y_train)
    warmup = max(1, steps // 10)
    loss_fn = nn.CrossEntropyLoss()
    acc: dict[str, list[float]] = {m: [] for m in methods}
    for method in methods:
        for seed in seeds:
            if method == "GN":
                model = make_cnn(channels=channels, norm="gn", seed=seed)
            else:
                cls = BatchRenorm2d if method == "Batch Renorm" else nn.BatchNorm2d

                def factory(c: int, cls: Any = cls) -> nn.Module:
                    return cls(c, momentum=bn_momentum)

                model = make_cnn(channels=channels, norm="bn", norm_factory=factory, seed=seed)
            renorms = [m for m in model.modules() if isinstance(m, (BatchRenorm1d, BatchRenorm2d))]
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=sgd_momentum)
            model.train()
            for step, idx in enumerate(_class_sorted_batches(d.y_train, batch_size, classes_per_batch,
                                                             steps, seed), start=1):
                limits = renorm_limits(step, warmup, r_max, 8 * warmup, d_max, 5 * warmup)
                for layer in renorms:
                    layer.r_max, layer.d_max = limits
                loss = loss_fn(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            acc[method].append(accuracy(model, d.x_test, d.y_test))
    return NonIIDResult(acc, steps, batch_size, classes_per_batch)


# ------------------------------------------------------------------ domain shift, AdaBN


@torch.no_grad()
def adabn(model: nn.Module, x_target: FloatArray) -> nn.Module:
    """AdaBN (Li et al. 2016): a copy of ``model`` whose BN statistics come from ``x_target``.

    Every BatchNorm layer's running statistics are reset and re-estimated from one pass
    over the unlabeled target data in training mode (one batch: the population mean
    and unbiased variance of the target activations).  Weights are unchanged; the
    original model is not modified.  Returns the adapted copy in eval mode.
    """
    m = copy.deepcopy(model)
    bns = [layer for layer in m.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)]
    for layer in bns:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average: after one batch, exactly its statistics
    m.train()
    m(as_tensor(x_target))
    for layer, orig in zip(bns, [b for b in model.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)],
                           strict=True):
        layer.momentum = orig.momentum
    return m.eval()


@dataclass
class ShiftResult:
    """Test accuracies on the source and on each shifted target domain."""

    source_acc: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)


def domain_shift_experiment(
    shifts: Sequence[tuple[str, float]] = (("scale", 0.4), ("offset", 0.5), ("noise", 0.3)),
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 0.05,
    sgd_momentum: float = SGD_MOMENTUM,
    channels: Sequence[int] = (8, 16),
    seed: int = 0,
    split: DigitsSplit | None = None,
    models: dict[str, nn.Module] | None = None,
) -> ShiftResult:
    """Train a BN CNN and a GN CNN on digits, test them on shifted digits, then AdaBN.

    For each ``(kind, amount)`` of :func:`bncourse.course.data.shift_digits`, the unlabeled
    target data for AdaBN is the *validation* split shifted (seed 1); accuracy is
    measured on the *test* split shifted (seed 2), so adaptation never sees test images.
    Rows hold ``shift``, ``BN``, ``BN + AdaBN`` and ``GN`` accuracies.  ``source_acc`` also
    has ``BN + AdaBN`` on the *unshifted* validation images: re-estimating the statistics
    also replaces the moving averages, so that is the fair baseline for the AdaBN column.

    ``models`` may supply already trained ``"bn"``/``"gn"`` CNNs (e.g. trained with these
    same settings elsewhere in the notebook); missing ones are trained here.
    """
    d = _digits(split)
    models = dict(models or {})
    for norm in ("bn", "gn"):
        if norm in models:
            continue
        models[norm] = make_cnn(channels=channels, norm=norm, seed=seed)
        train(models[norm], d.x_train, d.y_train, d.x_test, d.y_test, steps=steps,
              batch_size=batch_size, lr=lr, sgd_momentum=sgd_momentum, eval_every=10**9, seed=seed)
    res = ShiftResult({
        "BN": accuracy(models["bn"], d.x_test, d.y_test),
        "BN + AdaBN": accuracy(adabn(models["bn"], d.x_val), d.x_test, d.y_test),
        "GN": accuracy(models["gn"], d.x_test, d.y_test),
    })
    for kind, amount in shifts:
        x_target = shift_digits(d.x_val, kind, amount, seed=1)
        x_test = shift_digits(d.x_test, kind, amount, seed=2)
        res.rows.append({
            "shift": f"{kind} {amount:g}",
            "BN": accuracy(models["bn"], x_test, d.y_test),
            "BN + AdaBN": accuracy(adabn(models["bn"], x_target), x_test, d.y_test),
            "GN": accuracy(models["gn"], x_test, d.y_test),
        })
    return res


# --------------------------------------------------------------- regularization effect


def _regularization_mlp(norm: bool, dropout: float, hidden: Sequence[int], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width_in = 64
    for width in hidden:
        layers.append(nn.Linear(width_in, width, bias=not norm))
        if norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, 10))
    return nn.Sequential(*layers)


@dataclass
class RegularizationResult:
    """Final train/test accuracy (eval mode) and their gap, per variant (means over seeds)."""

    rows: list[dict[str, Any]]
    n_train: int
    per_seed: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """``per_seed[variant]["train acc" | "test acc" | "gap"]``: one value per seed, seeds in order."""

    def difference(self, a: str, b: str, what: str = "test acc", level: float = 0.95) -> dict[str, float]:
        """Paired difference ``a − b`` of ``what`` over the seeds: mean and a t confidence interval.

        The seeds are paired (same initialization and batch order for both variants), so
        the interval is the one-sample t interval of the per-seed differences.
        """
        from scipy import stats

        diff = np.array(self.per_seed[a][what]) - np.array(self.per_seed[b][what])
        n = len(diff)
        mean = float(diff.mean())
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        return {"mean": mean, "low": mean - half, "high": mean + half, "n": float(n)}


def regularization_experiment(
    n_train: int = 150,
    steps: int = 400,
    batch_size: int = 16,
    lr: float = 0.05,
    sgd_momentum: float = SGD_MOMENTUM,
    hidden: Sequence[int] = (128, 128),
    dropout: float = 0.3,
    seeds: Sequence[int] = (0, 1),
) -> RegularizationResult:
    """Train/test gap of an MLP on a small digits subset, with and without batch noise.

    Variants (same architecture, optimizer, steps and mini-batches):

    * ``no norm``;
    * ``BN`` -- statistics of each mini-batch of ``batch_size`` (noisy);
    * ``BN, population stats`` -- BN whose statistics come from the whole training
      subset at every step (each batch is forwarded together with the full subset and
      only the batch's loss is used), so the same example always gets the same
      normalization: BN without the batch noise;
    * ``no norm + dropout``, ``BN + dropout``.

    Accuracies are averaged over ``seeds`` (model init and batch order).
    """
    d = load_digits_split(seed=0)
    x_tr, y_tr = as_tensor(d.x_train[:n_train]), as_tensor(d.y_train[:n_train])
    variants = {
        "no norm": (False, 0.0, False),
        "BN": (True, 0.0, False),
        "BN, population stats": (True, 0.0, True),
        "no norm + dropout": (False, dropout, False),
        "BN + dropout": (True, dropout, False),
    }
    loss_fn = nn.CrossEntropyLoss()
    rows = []
    per_seed: dict[str, dict[str, list[float]]] = {}
    for name, (norm, p, population) in variants.items():
        tr_accs, te_accs = [], []
        for seed in seeds:
            model = _regularization_mlp(norm, p, hidden, seed)
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=sgd_momentum)
            gen = torch.Generator().manual_seed(seed)
            model.train()
            for _ in range(steps):
                idx = torch.randint(0, n_train, (batch_size,), generator=gen)
                xb = torch.cat([x_tr[idx], x_tr]) if population else x_tr[idx]
                loss = loss_fn(model(xb)[:batch_size], y_tr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            tr_accs.append(accuracy(model, x_tr, y_tr))
            te_accs.append(accuracy(model, d.x_test, d.y_test))
        tr, te = float(np.mean(tr_accs)), float(np.mean(te_accs))
        rows.append({"variant": name, "train acc": tr, "test acc": te, "gap": tr - te})
        per_seed[name] = {"train acc": tr_accs, "test acc": te_accs,
                          "gap": [a - b for a, b in zip(tr_accs, te_accs, strict=True)]}
    return RegularizationResult(rows, n_train, per_seed)


# --------------------------------------------------------------------------- sequences


def sequence_norm_demo(
    lengths: Sequence[int] = (5, 3, 8), features: int = 4, seed: int = 0
) -> list[dict[str, Any]]:
    """Why sequence models use LayerNorm: a padded batch of variable-length sequences.

    Sequences of ``lengths`` tokens (``features`` each) are zero-padded to the longest
    and normalized three ways: BN over (batch, time) including the padding, BN over the
    real tokens only (masked), and LN per token over its features.  For sequence 0
    (tokens that are *not* padding) the function reports how much its normalized values
    change between being in this batch and being alone in a batch of one sequence.
    Returns one row per method: ``method``, ``max change`` and ``needs other sequences``.
    """
    rng = np.random.default_rng(seed)
    T = max(lengths)
    x = np.zeros((len(lengths), T, features))
    mask = np.zeros((len(lengths), T), dtype=bool)
    for i, L in enumerate(lengths):
        x[i, :L] = rng.normal(loc=i, scale=1 + i, size=(L, features))  # sequences differ
        mask[i, :L] = True

    def bn_padded(xb: FloatArray) -> FloatArray:
        flat = xb.reshape(-1, features)
        return oracle.normalize(flat, axes=(0,))[0].reshape(xb.shape)

    def bn_masked(xb: FloatArray, mb: NDArray[np.bool_]) -> FloatArray:
        tokens = xb[mb]
        mu, var = tokens.mean(0), tokens.var(0)
        return (xb - mu) / np.sqrt(var + EPS)

    def ln(xb: FloatArray) -> FloatArray:
        return oracle.normalize(xb, axes=(2,))[0]

    L0 = lengths[0]
    alone_x, alone_m = x[:1, :L0], mask[:1, :L0]
    rows = []
    for method, in_batch, alone in (
        ("BN over (batch, time), padding included", bn_padded(x), bn_padded(alone_x)),
        ("BN over real tokens only (masked)", bn_masked(x, mask), bn_masked(alone_x, alone_m)),
        ("LN per token", ln(x), ln(alone_x)),
    ):
        change = float(np.max(np.abs(in_batch[0, :L0] - alone[0, :L0])))
        rows.append({"method": method, "max change": change})
    return rows


# ------------------------------------------------------------- weight and spectral norm


def weight_norm_parity(out_features: int = 5, in_features: int = 7, seed: int = 0) -> dict[str, float]:
    """:func:`bncourse.reference.weight_norm` vs ``torch.nn.utils.parametrizations.weight_norm``.

    A float64 ``nn.Linear`` gets torch's weight-norm parametrization; its ``original0``
    (g) and ``original1`` (v) are set to random values and the weight torch computes is
    compared with ``g·v/‖v‖`` from the reference.  Also reports ``max | ‖w_i‖ − |g_i| |``
    (each row's norm is g's magnitude).
    """
    from torch.nn.utils import parametrizations

    rng = np.random.default_rng(seed)
    v = rng.standard_normal((out_features, in_features))
    g = rng.uniform(0.5, 2.0, size=(out_features, 1))
    lin = parametrizations.weight_norm(nn.Linear(in_features, out_features).double(), dim=0)
    with torch.no_grad():
        lin.parametrizations.weight.original0.copy_(torch.from_numpy(g))
        lin.parametrizations.weight.original1.copy_(torch.from_numpy(v))
    w_torch = lin.weight.detach().numpy()
    w_ref = oracle.weight_norm(v, g.ravel(), dim=0)
    return {
        "max |w_torch - w_ref|": float(np.max(np.abs(w_torch - w_ref))),
        "max | ||w_i|| - g_i |": float(np.max(np.abs(np.linalg.norm(w_ref, axis=1) - g.ravel()))),
    }


def spectral_norm_parity(
    out_features: int = 6, in_features: int = 9, n_power_iterations: int = 1, seed: int = 0
) -> dict[str, float]:
    """:func:`bncourse.reference.spectral_norm` vs ``torch.nn.utils.parametrizations.spectral_norm``.

    A float64 ``nn.Linear`` with torch's spectral-norm parametrization (training mode)
    is called once; the reference is given the same weight and the same u, v buffers
    torch held before the call.  Reports the max difference of the normalized weights,
    σ from the reference, the exact largest singular value of W, and that of ``W/σ``.
    """
    from torch.nn.utils import parametrizations

    torch.manual_seed(seed)
    lin = nn.Linear(in_features, out_features).double()
    w = lin.weight.detach().numpy().copy()
    sn = parametrizations.spectral_norm(lin, n_power_iterations=n_power_iterations)
    param: Any = sn.parametrizations.weight[0]  # type: ignore[index,union-attr]
    u0, v0 = param._u.detach().numpy().copy(), param._v.detach().numpy().copy()
    sn.train()
    w_torch = torch.as_tensor(sn.weight).detach().numpy()
    w_ref, _, sigma = oracle.spectral_norm(w, u0, n_power_iterations, v=v0)
    return {
        "max |W_torch - W_ref|": float(np.max(np.abs(w_torch - w_ref))),
        "sigma (power iteration)": float(sigma),
        "sigma_max(W) (SVD)": oracle.largest_singular_value(w),
        "sigma_max(W / sigma)": oracle.largest_singular_value(w_ref),
    }


def power_iteration_trace(weight: FloatArray, n_iterations: int = 15, seed: int = 0) -> FloatArray:
    """σ estimates ``uᵀWv`` after 1..n power iterations from a random u (reference code).

    Returns an array of length ``n_iterations``; it increases towards σ_max(W).
    """
    u: FloatArray = np.random.default_rng(seed).standard_normal((int(weight.shape[0]),))
    sigmas = []
    for _ in range(n_iterations):
        _, u, sigma = oracle.spectral_norm(weight, u, 1)
        sigmas.append(float(sigma))
    return np.array(sigmas)


def plot_power_iteration(traces: dict[str, FloatArray], exact: dict[str, float]) -> Figure:
    """Power-iteration estimates of σ_max over iterations, with the exact values dashed."""
    fig, ax = plots.new_figure(1, width=7.0, height=4.0)
    for i, (name, tr) in enumerate(traces.items()):
        color = f"C{i}"
        ax.plot(np.arange(1, len(tr) + 1), tr, "o-", color=color, label=f"{name}: power iteration")
        ax.axhline(exact[name], color=color, ls="--", lw=1.2, label=f"{name}: exact σ_max (SVD)")
    ax.set_xlabel("power iterations")
    ax.set_ylabel("estimate of σ_max(W)")
    ax.set_title("Power iteration converges to the largest singular value")
    ax.legend()
    return fig


def lipschitz_demo(
    widths: Sequence[int] = (16, 64, 64, 1), n_inputs: int = 512, seed: int = 0
) -> list[dict[str, Any]]:
    """A random discriminator-like MLP, before and after spectral normalization.

    For ``Linear → LeakyReLU(0.2) → ... → Linear`` the Lipschitz constant is at most the
    product of the layers' σ_max.  Reports that product and the largest input-gradient
    norm ``‖∂f/∂x‖`` found on ``n_inputs`` random inputs (a lower bound on the
    Lipschitz constant), for the plain network and with
    ``torch.nn.utils.parametrizations.spectral_norm`` on every layer (eval mode after
    50 training-mode calls so u, v have converged).
    """
    from torch.nn.utils import parametrizations

    def build(sn: bool) -> nn.Sequential:
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            lin = nn.Linear(a, b).double()
            with torch.no_grad():
                lin.weight.mul_(3.0)  # a discriminator whose weights have grown
            layers.append(parametrizations.spectral_norm(lin) if sn else lin)
            if i < len(widths) - 2:
                layers.append(nn.LeakyReLU(0.2))
        return nn.Sequential(*layers)

    x = torch.randn(n_inputs, widths[0], dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    rows = []
    for sn in (False, True):
        net = build(sn)
        if sn:
            net.train()
            with torch.no_grad():
                for _ in range(50):
                    net(x[:1])
        net.eval()
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(xg).sum(), xg)
        bound = 1.0
        for layer in net:
            if isinstance(layer, nn.Linear):
                bound *= oracle.largest_singular_value(layer.weight.detach().numpy())
        rows.append({
            "network": "spectral norm" if sn else "plain",
            "product of sigma_max": bound,
            "max ||df/dx|| on inputs": float(grad.norm(dim=1).max()),
        })
    return rows
