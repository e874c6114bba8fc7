"""Notebook 06's experiments: batch norm in convolutional networks, on the 8×8 digits.

* :func:`plot_shared_statistics` — which elements of an ``(N, C, H, W)`` tensor share
  one mean under spatial BN, and under 1-D BN applied to the flattened image;
* :func:`bn2d_parity`, :func:`running_buffer_parity` — a NumPy spatial BN and
  :class:`bncourse.nn.BatchNorm2d` against ``torch.nn.BatchNorm2d``;
* :class:`CNNRun` / :func:`train_runs` — small CNNs, one seeded run per configuration;
  :func:`train_seeds` / :class:`SeedRuns` — the learning-rate / activation grid over
  :data:`SEEDS`, plotted as mean and min–max band (:func:`plot_learning_curves`);
* :func:`inception_table` — the BN paper's Inception table next to the steps-to-accuracy
  measured on the runs, per seed (mean and range);
* :func:`make_deep_cnn`, :func:`layer_gradient_norms` — very deep stacks, gradients per layer;
* :func:`corrupt_images` — a few training images with huge pixel values (outliers);
* :func:`bn_channel_activations`, :func:`plot_channel_histograms` — per-channel
  distributions before and after a BN layer;
* :func:`fold_model`, :func:`forward_seconds` — BN folded into the preceding conv.

Importing this module imports torch and matplotlib.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import NDArray
from torch import nn

from bncourse.conventions import SGD_MOMENTUM
from bncourse.course.diagnostics import batchnorm_buffers, weight_gradient_norms
from bncourse.course.models import activation_layer, make_cnn
from bncourse.course.plots import COLORS, MAX_WIDTH_IN, legend_below, new_figure
from bncourse.course.training import History, accuracy, steps_to_reach, train
from bncourse.errors import ParameterError, ShapeError
from bncourse.validation import FloatArray

__all__ = [
    "BASE_LR",
    "CHANNELS",
    "PAPER_INCEPTION",
    "SEEDS",
    "CNNRun",
    "RunResult",
    "SeedRuns",
    "bn2d_parity",
    "bn_channel_activations",
    "compare_bn_implementations",
    "conv_layers",
    "corrupt_images",
    "eval_accuracy",
    "first_seed",
    "fold_model",
    "format_inception_table",
    "forward_seconds",
    "gap_table",
    "grad_norms_at",
    "inception_table",
    "layer_gradient_norms",
    "make_deep_cnn",
    "mean_and_range",
    "plot_channel_histograms",
    "plot_gradient_bars",
    "plot_learning_curves",
    "plot_shared_statistics",
    "recompute_bn_statistics",
    "running_buffer_parity",
    "train_run",
    "train_runs",
    "train_seeds",
]


BASE_LR = 0.2
"""The baseline learning rate (SGD, momentum 0.9): the best of {0.03, 0.1, 0.2, 0.5} for the
CNN *without* BN, as the paper's Inception rate was tuned for Inception."""
STEPS = 300
BATCH_SIZE = 32
EVAL_EVERY = 25
CHANNELS = (8, 16)
SEEDS = (0, 1, 2)
"""The seeds of the learning-rate / activation grid (initialization and mini-batch order)."""

PAPER_INCEPTION: tuple[tuple[str, str, str, str], ...] = (
    ("Inception", "0.0015", "31.0 M", "72.2 %"),
    ("BN-Baseline", "0.0015", "13.3 M", "72.7 %"),
    ("BN-x5", "0.0075", "2.1 M", "73.0 %"),
    ("BN-x30", "0.045", "2.7 M", "74.8 %"),
    ("BN-x5-Sigmoid", "0.0075 (sigmoid)", "never reaches it", "69.8 %"),
)
"""Ioffe & Szegedy (2015), Figure 3: model, initial learning rate, steps to reach 72.2 %
(Inception's best), max accuracy — quoted from ``PAPERS.md``."""


# --------------------------------------------------------------------------- the picture


def plot_shared_statistics(
    n: int = 3, c: int = 4, h: int = 3, w: int = 3, channel: int = 1, position: tuple[int, int] = (1, 2)
) -> Figure:
    """Two panels of an ``(N, C, H, W)`` tensor drawn as N rows of C little H×W grids.

    Left: spatial BN — the N·H·W cells of ``channel`` (coloured) share one μ and σ².
    Right: 1-D BN on the flattened ``(N, C·H·W)`` — only the N cells at one (c, h, w)
    share a mean.  Every other cell is grey.
    """
    if not (0 <= channel < c and 0 <= position[0] < h and 0 <= position[1] < w):
        raise ParameterError(f"channel {channel} / position {position} outside C={c}, H={h}, W={w}")
    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=4.8)
    gap = 1.0
    panels = (
        (f"spatial BN: one μ per channel\n{n}·{h}·{w} = {n * h * w} values share it",
         lambda ci, hi, wi: ci == channel),
        (f"1-D BN on (N, C·H·W): one μ per (c, h, w)\nonly N = {n} values share it",
         lambda ci, hi, wi: ci == channel and (hi, wi) == position),
    )
    for ax, (title, shared) in zip(axes, panels, strict=True):
        for ni in range(n):
            for ci in range(c):
                x0 = ci * (w + gap)
                y0 = (n - 1 - ni) * (h + gap)
                for hi in range(h):
                    for wi in range(w):
                        color = COLORS["bn"] if shared(ci, hi, wi) else "#d9d9d9"
                        ax.add_patch(Rectangle((x0 + wi, y0 + h - 1 - hi), 1, 1, facecolor=color,
                                               edgecolor="white", linewidth=1.0))
        ax.set_xlim(-0.5, c * (w + gap))
        ax.set_ylim(-0.5, n * (h + gap))
        ax.set_xticks([ci * (w + gap) + w / 2 for ci in range(c)], [f"c={ci}" for ci in range(c)])
        ax.set_yticks([(n - 1 - ni) * (h + gap) + h / 2 for ni in range(n)], [f"n={ni}" for ni in range(n)])
        ax.set_xlabel("channel (a block: one H×W map)")
        ax.set_ylabel("example in the batch")
        ax.set_title(title)
        ax.set_aspect("equal")
        ax.grid(False)
    return fig


# --------------------------------------------------------------------------- parity


def _torch_bn2d(x: FloatArray, gamma: FloatArray, beta: FloatArray, dout: FloatArray,
                eps: float) -> dict[str, FloatArray]:
    xt = torch.tensor(x, requires_grad=True)
    bn = nn.BatchNorm2d(x.shape[1], eps=eps).to(xt.dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    out = bn(xt)
    out.backward(torch.from_numpy(dout))
    assert xt.grad is not None and bn.weight.grad is not None and bn.bias.grad is not None
    return {"out": out.detach().numpy(), "dx": xt.grad.numpy(),
            "dgamma": bn.weight.grad.numpy(), "dbeta": bn.bias.grad.numpy()}


def bn2d_parity(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    x: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    dout: FloatArray,
    eps: float = 1e-5,
) -> dict[str, float]:
    """Max abs difference between a NumPy spatial BN and ``torch.nn.BatchNorm2d`` (train mode).

    ``forward(x, gamma, beta, eps) -> (out, cache)`` and ``backward(dout, cache) ->
    (dx, dgamma, dbeta)`` are compared output by output with torch autograd, in the dtype
    of ``x``.  Shapes: x, dout ``(N, C, H, W)``; gamma, beta ``(C,)``.

    Returns:
        ``{"out", "dx", "dgamma", "dbeta"}`` → max |NumPy − torch|.
    """
    if x.ndim != 4 or dout.shape != x.shape:
        raise ShapeError(f"bn2d_parity expects x and dout of shape (N, C, H, W), got {x.shape} and {dout.shape}")
    out, cache = forward(x, gamma, beta, eps)
    dx, dgamma, dbeta = backward(dout, cache)
    ref = _torch_bn2d(x, gamma, beta, dout, eps)
    mine = {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}
    return {k: float(np.abs(np.asarray(mine[k], dtype=np.float64) - ref[k]).max()) for k in ref}


def _param(module: nn.Module, name: str) -> FloatArray | None:
    value = getattr(module, name, None)
    return value.detach().double().numpy() if isinstance(value, torch.Tensor) else None


def running_buffer_parity(batches: Sequence[FloatArray], momentum: float = 0.1, eps: float = 1e-5
                          ) -> dict[str, float]:
    """Running statistics after training steps on ``batches``: three implementations.

    NumPy applies ``running = (1 − momentum)·running + momentum·batch`` with the
    unbiased variance over m = N·H·W values per channel; ``bncourse.nn.BatchNorm2d`` and
    ``torch.nn.BatchNorm2d`` run forward in training mode.  Afterwards both modules are
    also compared in eval mode, forward and backward, on the last batch.

    Returns:
        max |difference| for ``numpy_vs_torch_mean``, ``numpy_vs_torch_var``,
        ``ours_vs_torch_mean``, ``ours_vs_torch_var``, ``ours_vs_torch_eval_out``,
        ``ours_vs_torch_eval_dx``, ``numpy_var_with_m_equal_N`` (the error one would make
        with the correction N/(N − 1) instead of m/(m − 1)).
    """
    from bncourse.nn import BatchNorm2d

    c = batches[0].shape[1]
    dtype = torch.float64 if batches[0].dtype == np.float64 else torch.float32
    theirs = nn.BatchNorm2d(c, eps=eps, momentum=momentum).to(dtype)
    ours = BatchNorm2d(c, eps=eps, momentum=momentum).to(dtype)
    mean, var, var_wrong = np.zeros(c), np.ones(c), np.ones(c)
    for x in batches:
        n = x.shape[0]
        mean = (1 - momentum) * mean + momentum * x.mean(axis=(0, 2, 3))
        var = (1 - momentum) * var + momentum * x.var(axis=(0, 2, 3), ddof=1)
        var_wrong = (1 - momentum) * var_wrong + momentum * x.var(axis=(0, 2, 3)) * n / max(n - 1, 1)
        theirs(torch.from_numpy(x))
        ours(torch.from_numpy(x))
    t_mean, t_var = batchnorm_buffers(theirs)
    o_mean, o_var = batchnorm_buffers(ours)
    res = {
        "numpy_vs_torch_mean": float(np.abs(mean - t_mean).max()),
        "numpy_vs_torch_var": float(np.abs(var - t_var).max()),
        "ours_vs_torch_mean": float(np.abs(o_mean - t_mean).max()),
        "ours_vs_torch_var": float(np.abs(o_var - t_var).max()),
        "numpy_var_with_m_equal_N": float(np.abs(var_wrong - t_var).max()),
    }
    theirs.eval()
    ours.eval()
    outs = []
    for mod in (theirs, ours):
        xt = torch.tensor(batches[-1], requires_grad=True)
        y = mod(xt)
        y.sum().backward()
        assert xt.grad is not None
        outs.append((y.detach(), xt.grad))
    res["ours_vs_torch_eval_out"] = float((outs[0][0] - outs[1][0]).abs().max())
    res["ours_vs_torch_eval_dx"] = float((outs[0][1] - outs[1][1]).abs().max())
    return res


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class CNNRun:
    """One training configuration of the small CNN (``make_cnn``) or a deep stack.

    ``lr_multiplier`` multiplies :data:`BASE_LR`; ``classifier_lr_multiplier`` (if given)
    replaces it for the final linear layer only (a gradient hook rescales that layer's
    gradients, which for SGD with momentum is the same as its own learning rate);
    ``bn_impl`` is ``"torch"`` or ``"bncourse"`` (``bncourse.nn.BatchNorm2d``); ``depth``
    > 0 builds :func:`make_deep_cnn` with ``depth`` blocks of ``width`` channels instead.
    """

    label: str
    norm: str = "bn"
    activation: str = "relu"
    lr_multiplier: float = 1.0
    classifier_lr_multiplier: float | None = None
    init_scale: float = 1.0
    bn_impl: str = "torch"
    depth: int = 0
    width: int = 8
    outliers: int = 0

    @property
    def lr(self) -> float:
        return BASE_LR * self.lr_multiplier


@dataclass
class RunResult:
    """A finished run: its configuration, history (test accuracy every ``EVAL_EVERY``
    steps, train loss, per-layer gradient norms in ``records``) and trained model."""

    run: CNNRun
    history: History
    model: nn.Module

    @property
    def max_acc(self) -> float:
        return float(np.nanmax(self.history.test_acc))


def make_deep_cnn(depth: int, width: int = 8, activation: str = "sigmoid", norm: str = "none",
                  seed: int = 0) -> nn.Sequential:
    """``[conv3×3 (stride 1) → (BatchNorm2d) → act] × depth → avg-pool → linear`` for 1×8×8.

    All blocks keep the 8×8 resolution, so BN always sees N·64 values per channel.
    """
    if depth < 1 or width < 1:
        raise ParameterError(f"make_deep_cnn needs depth >= 1 and width >= 1, got {depth}, {width}")
    if norm not in ("none", "bn"):
        raise ParameterError(f"make_deep_cnn norm must be 'none' or 'bn', got {norm!r}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = 1
    for _ in range(depth):
        layers.append(nn.Conv2d(c_in, width, 3, padding=1, bias=norm == "none"))
        if norm == "bn":
            layers.append(nn.BatchNorm2d(width))
        layers.append(activation_layer(activation))
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    return nn.Sequential(*layers)


def _build(run: CNNRun, seed: int) -> nn.Module:
    if run.depth > 0:
        model = make_deep_cnn(run.depth, run.width, run.activation, run.norm, seed=seed)
        if run.init_scale != 1.0:
            from bncourse.course.models import init_scaled_

            init_scaled_(model, run.init_scale)
        return model
    factory: Callable[[int], nn.Module] | None = None
    if run.bn_impl == "bncourse":
        from bncourse.nn import BatchNorm2d

        factory = BatchNorm2d
    elif run.bn_impl != "torch":
        raise ParameterError(f"bn_impl must be 'torch' or 'bncourse', got {run.bn_impl!r}")
    return make_cnn(CHANNELS, activation=run.activation, norm=run.norm, norm_factory=factory,
                    init_scale=run.init_scale, seed=seed)


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The model's convolutions, input to output."""
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


class _KeepBuffers:
    """Context: run a model in training mode and restore its BN buffers and mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.saved = {k: v.detach().clone() for k, v in self.model.named_buffers()}
        self.was_training = self.model.training
        self.model.train()
        return self.model

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for k, v in self.model.named_buffers():
                v.copy_(self.saved[k])
        self.model.train(self.was_training)


def layer_gradient_norms(model: nn.Module, x: Any, y: Any) -> FloatArray:
    """‖∂L/∂W‖ of every conv layer (input to output) on one batch, in training mode
    (:func:`bncourse.course.diagnostics.weight_gradient_norms`; the model is left as it was)."""
    return weight_gradient_norms(model, x, y, nn.Conv2d)


def corrupt_images(x: FloatArray, count: int, magnitude: float = 100.0, seed: int = 0
                   ) -> tuple[FloatArray, NDArray[np.int64]]:
    """A copy of ``x`` in which ``count`` random images are multiplied by ``magnitude``.

    Digits pixels lie in [0, 1]; a corrupted image has pixels up to ``magnitude`` (a
    sensor glitch, a unit error).  Returns the new array and the corrupted indices.
    """
    if count < 0 or count > len(x):
        raise ParameterError(f"count must be in [0, {len(x)}], got {count}")
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=count, replace=False))
    out = x.copy()
    out[idx] = out[idx] * magnitude
    return out, idx.astype(np.int64)


def train_run(run: CNNRun, data: Any, *, steps: int = STEPS, seed: int = 0,
              grad_batch: int = 128) -> RunResult:
    """Train one configuration on ``data`` (a ``DigitsSplit`` with ``images=True``).

    SGD with momentum :data:`~bncourse.conventions.SGD_MOMENTUM`, batch :data:`BATCH_SIZE`, evaluation every
    :data:`EVAL_EVERY` steps on the test set.  At step 0 and at the last step the conv
    layers' gradient norms on the first ``grad_batch`` training images are recorded as
    ``records[i]["grad_norms"]`` (see :func:`grad_norms_at`).
    """
    model = _build(run, seed)
    if run.classifier_lr_multiplier is not None:
        factor = run.classifier_lr_multiplier / run.lr_multiplier
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        for p in head.parameters():
            p.register_hook(lambda g, f=factor: g * f)
    x_tr = data.x_train
    if run.outliers:
        x_tr, _ = corrupt_images(x_tr, run.outliers, seed=seed)
    xg, yg = data.x_train[:grad_batch], data.y_train[:grad_batch]

    def record(step: int, m: nn.Module) -> dict[str, Any]:
        if step in (0, steps):
            return {"grad_norms": layer_gradient_norms(m, xg, yg)}
        return {}

    hist = train(model, x_tr, data.y_train, data.x_test, data.y_test, steps=steps, batch_size=BATCH_SIZE,
                 lr=run.lr, sgd_momentum=SGD_MOMENTUM, eval_every=EVAL_EVERY, seed=seed, callback=record)
    return RunResult(run, hist, model)


def grad_norms_at(history: History, when: str) -> FloatArray:
    """The recorded per-layer gradient norms at ``"init"`` (step 0) or ``"end"`` (the last
    step; empty if the run diverged before it)."""
    if when not in ("init", "end"):
        raise ParameterError(f"when must be 'init' or 'end', got {when!r}")
    rec = history.records[0] if when == "init" else history.records[-1]
    return np.asarray(rec.get("grad_norms", np.array([])), dtype=np.float64)


def train_runs(runs: Sequence[CNNRun], data: Any, *, steps: int = STEPS, seed: int = 0
               ) -> dict[str, RunResult]:
    """:func:`train_run` for each configuration, by label (labels must be unique)."""
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ParameterError(f"run labels must be unique, got {labels}")
    return {r.label: train_run(r, data, steps=steps, seed=seed) for r in runs}


@dataclass
class SeedRuns:
    """One configuration trained once per seed (same data, different initialization and
    mini-batch order): ``results[i]`` is the run with ``seeds[i]``."""

    run: CNNRun
    seeds: tuple[int, ...]
    results: list[RunResult]

    @property
    def steps(self) -> NDArray[np.int64]:
        """The evaluation steps of the longest run (every run has them unless it diverged)."""
        return np.asarray(max((r.history.steps for r in self.results), key=len), dtype=np.int64)

    def accuracy_matrix(self) -> FloatArray:
        """Test accuracy, one row per seed, one column per evaluation step.

        A run that diverged stops early; its last accuracy (measured at the divergence) is
        carried to the end, so every row has one value per step.
        """
        n = len(self.steps)
        rows = [list(r.history.test_acc) + [r.history.test_acc[-1]] * (n - len(r.history.test_acc))
                for r in self.results]
        return np.asarray(rows, dtype=np.float64)

    @property
    def max_accs(self) -> FloatArray:
        """Each seed's best test accuracy."""
        return np.array([r.max_acc for r in self.results], dtype=np.float64)


def train_seeds(runs: Sequence[CNNRun], data: Any, *, seeds: Sequence[int] = SEEDS, steps: int = STEPS
                ) -> dict[str, SeedRuns]:
    """:func:`train_run` for each configuration and each seed, by label (labels must be unique)."""
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ParameterError(f"run labels must be unique, got {labels}")
    if len(seeds) < 1:
        raise ParameterError("train_seeds needs at least one seed")
    return {r.label: SeedRuns(r, tuple(seeds), [train_run(r, data, steps=steps, seed=s) for s in seeds])
            for r in runs}


def first_seed(seed_runs: Mapping[str, SeedRuns]) -> dict[str, RunResult]:
    """The run of the first seed of every configuration (trained models for later sections)."""
    return {label: sr.results[0] for label, sr in seed_runs.items()}


def inception_table(seed_runs: Mapping[str, SeedRuns], baseline: str, rows: Sequence[tuple[str, str]]
                    ) -> list[dict[str, Any]]:
    """The paper's comparison measured on our runs, seed by seed.

    ``rows`` pairs a paper row name with a run label (``("BN-x5", "BN ×5")``).  As in the
    paper, the target is the baseline's best accuracy — here per seed: the no-BN run of
    seed *s* sets the target of every run of seed *s*.  Each row gets its learning rate,
    per seed the first evaluated step at or above the target (``None`` if never), and per
    seed the best accuracy.
    """
    targets = seed_runs[baseline].max_accs
    table = []
    for paper_name, label in rows:
        sr = seed_runs[label]
        if sr.seeds != seed_runs[baseline].seeds:
            raise ParameterError(f"{label!r} has seeds {sr.seeds}, the baseline {seed_runs[baseline].seeds}")
        table.append({
            "model": paper_name,
            "run": label,
            "lr": sr.run.lr,
            "steps_to_target": [steps_to_reach(r.history, t) for r, t in zip(sr.results, targets, strict=True)],
            "max_acc": sr.max_accs,
            "targets": targets,
        })
    return table


def mean_and_range(values: Sequence[float | None], fmt: str = ".0f", scale: float = 1.0) -> str:
    """``"mean (min–max)"`` of the values that are not ``None``, ``"never"`` if all are;
    when some are ``None``, how many seeds got there (``"…, 2 of 3"``)."""
    got = np.array([v for v in values if v is not None], dtype=np.float64) * scale
    if got.size == 0:
        return "never"
    text = f"{got.mean():{fmt}} ({got.min():{fmt}}–{got.max():{fmt}})"
    return text if got.size == len(values) else f"{text}, {got.size} of {len(values)}"


def format_inception_table(table: Sequence[Mapping[str, Any]]) -> str:
    """Paper row and measured row side by side, one line per model, as plain text.

    Our columns give the mean over seeds and, in brackets, the range (min–max)."""
    paper = {p[0]: p for p in PAPER_INCEPTION}
    n = len(table[0]["targets"])
    head = (f"{'model':16s} | {'paper: lr':>17s} {'steps to 72.2 %':>16s} {'max acc':>8s} | "
            f"{'ours: lr':>8s} {'steps to baseline best':>24s} {'max acc (%)':>17s}")
    lines = [head, "-" * len(head)]
    for row in table:
        p = paper.get(row["model"], (row["model"], "", "", ""))
        lines.append(f"{row['model']:16s} | {p[1]:>17s} {p[2]:>16s} {p[3]:>8s} | "
                     f"{row['lr']:8.2f} {mean_and_range(row['steps_to_target']):>24s} "
                     f"{mean_and_range(list(row['max_acc']), '.1f', 100.0):>17s}")
    targets = ", ".join(f"{100 * t:.1f} %" for t in table[0]["targets"])
    lines.append(f"ours: mean (min–max) over {n} seeds; target = the no-BN baseline's best accuracy "
                 f"in the same seed ({targets})")
    return "\n".join(lines)


def plot_learning_curves(seed_runs: Mapping[str, SeedRuns], panels: Sequence[tuple[str, Sequence[str]]],
                         colors: Mapping[str, str] | None = None) -> Figure:
    """One panel per ``(title, labels)``: test accuracy vs training step for those
    configurations — the mean over seeds as a line, the range (min–max) as a band."""
    fig, axes = new_figure(ncols=len(panels), width=MAX_WIDTH_IN, height=6.0, sharey=True)
    axes = np.atleast_1d(axes)
    n_seeds = 0
    for ax, (title, labels) in zip(axes, panels, strict=True):
        for label in labels:
            sr = seed_runs[label]
            acc, steps = sr.accuracy_matrix(), sr.steps
            n_seeds = max(n_seeds, acc.shape[0])
            color = (colors or {}).get(label)
            style = "--" if sr.run.norm == "none" else "-"
            (line,) = ax.plot(steps, acc.mean(axis=0), style, label=label, color=color)
            ax.fill_between(steps, acc.min(axis=0), acc.max(axis=0), color=line.get_color(), alpha=0.18, lw=0)
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.set_ylim(0, 1.02)
        legend_below(ax, ncols=2)
    axes[0].set_ylabel(f"test accuracy, {n_seeds} seeds")
    fig.suptitle("Line: mean over the seeds; band: their min–max")
    return fig


def plot_gradient_bars(results: Mapping[str, RunResult], labels: Sequence[str],
                       colors: Mapping[str, str] | None = None) -> Figure:
    """Per-layer gradient norms (log scale) at initialization and at the end of training."""
    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.4, sharey=True)
    k = len(labels)
    for ax, (title, when) in zip(axes, (("at initialization (step 0)", "init"), ("after training (last step)", "end")),
                                 strict=True):
        for j, label in enumerate(labels):
            g = grad_norms_at(results[label].history, when)
            pos = np.arange(1, len(g) + 1) + (j - (k - 1) / 2) * 0.8 / k
            ax.bar(pos, np.maximum(g, 1e-12), width=0.8 / k, label=label, color=(colors or {}).get(label))
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("conv layer (1 = next to the input)")
        ax.set_xticks(np.arange(1, len(g) + 1))
    axes[0].set_ylabel("‖∂L/∂W‖ (log)")
    fig.suptitle("Gradient norm per conv layer")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(labels), 4))
    return fig


# --------------------------------------------------------------------------- channel histograms


@torch.no_grad()
def bn_channel_activations(model: nn.Module, x: Any, which: int = 0) -> tuple[FloatArray, FloatArray]:
    """Input and output of the ``which``-th ``BatchNorm2d`` on the batch ``x`` (training mode).

    The running statistics and the model's mode are restored afterwards.  Returns two
    ``(N, C, H, W)`` arrays: the conv output before BN and the BN output after γ, β.
    """
    bns = [m for m in model.modules() if hasattr(m, "running_mean") and hasattr(m, "running_var")]
    if which >= len(bns):
        raise ParameterError(f"the model has {len(bns)} BatchNorm2d layers, asked for index {which}")
    seen: dict[str, torch.Tensor] = {}

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        seen["before"], seen["after"] = inp[0].detach().clone(), out.detach().clone()

    handle = bns[which].register_forward_hook(hook)
    try:
        with _KeepBuffers(model):
            model(torch.as_tensor(x))
    finally:
        handle.remove()
    return seen["before"].numpy(), seen["after"].numpy()


def plot_channel_histograms(before: FloatArray, after: FloatArray, channels: Sequence[int]) -> Figure:
    """Histograms of a few channels' values (over N, H, W) before and after BN."""
    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.6)
    cmap = plt.get_cmap("tab10")
    for ax, arr, title in ((axes[0], before, "before BN (conv output)"), (axes[1], after, "after BN (γ x̂ + β)")):
        lo, hi = np.percentile(arr[:, list(channels)], [0.5, 99.5])
        bins = np.linspace(lo, hi, 50)
        for j, c in enumerate(channels):
            v = arr[:, c].ravel()
            ax.hist(v, bins=bins, histtype="step", lw=2, color=cmap(j),
                    label=f"ch {c}: μ {v.mean():+.2f}, σ {v.std():.2f}")
        ax.set_title(title)
        ax.set_xlabel("activation value")
        ax.set_ylabel("count")
        legend_below(ax, ncols=2, columnspacing=1.0)
    fig.suptitle("Each channel's values over N·H·W")
    return fig


# --------------------------------------------------------------------------- folding


def fold_model(model: nn.Sequential, fold: Callable[..., tuple[Any, Any]]) -> nn.Sequential:
    """A copy of ``model`` with every ``Conv2d → BatchNorm2d`` (or ``Linear → BatchNorm1d``)
    pair replaced by one layer whose weights come from ``fold`` (NumPy, float64 inside).

    ``fold(weight, bias, gamma, beta, running_mean, running_var, eps) -> (weight, bias)``
    is :func:`bncourse.reference.fold_batchnorm` or a student's version.  The result is in
    eval mode; it equals ``model.eval()`` up to float32 rounding.
    """
    layers = list(model)
    out: list[nn.Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        bn_like = nxt is not None and hasattr(nxt, "running_mean") and hasattr(nxt, "running_var")
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and bn_like:
            bn: Any = nxt
            w_new, b_new = fold(_param(layer, "weight"), _param(layer, "bias"), _param(bn, "weight"),
                                _param(bn, "bias"), *batchnorm_buffers(bn),
                                float(bn.eps))
            fused = copy.deepcopy(layer)
            fused.weight = nn.Parameter(torch.as_tensor(np.asarray(w_new), dtype=layer.weight.dtype))
            fused.bias = nn.Parameter(torch.as_tensor(np.asarray(b_new), dtype=layer.weight.dtype))
            out.append(fused)
            i += 2
        else:
            out.append(copy.deepcopy(layer))
            i += 1
    folded = nn.Sequential(*out)
    folded.eval()
    return folded


@torch.no_grad()
def forward_seconds(model: nn.Module, x: Any, repeats: int = 30) -> float:
    """Best-of-``repeats`` wall time (s) of one eval-mode forward pass on ``x``."""
    model.eval()
    xt = torch.as_tensor(x)
    model(xt)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(xt)
        best = min(best, time.perf_counter() - t0)
    return best


def eval_accuracy(model: nn.Module, x: Any, y: Any) -> float:
    """Test accuracy in eval mode (re-exported for the notebook)."""
    return accuracy(model, x, y)


# --------------------------------------------------------------------------- swap, outliers, gaps


def compare_bn_implementations(data: Any, *, steps: int = 150, seed: int = 0
                               ) -> tuple[History, History, float]:
    """Train the BN CNN twice — ``torch.nn.BatchNorm2d`` and ``bncourse.nn.BatchNorm2d`` —
    with the same seed and batches, in the dtype of ``data.x_train`` (float32 or float64).

    Returns the two histories (torch's first) and the largest absolute difference between
    corresponding parameters after training.
    """
    from bncourse.nn import BatchNorm2d

    dtype = torch.float64 if data.x_train.dtype == np.float64 else torch.float32
    pair = []
    for factory in (None, BatchNorm2d):
        model = make_cnn(CHANNELS, norm="bn", norm_factory=factory, seed=seed).to(dtype)
        hist = train(model, data.x_train, data.y_train, data.x_test, data.y_test, steps=steps,
                     batch_size=BATCH_SIZE, lr=BASE_LR, sgd_momentum=SGD_MOMENTUM, eval_every=EVAL_EVERY, seed=seed)
        pair.append((hist, model))
    (h_t, m_t), (h_o, m_o) = pair
    diff = max(float((p - q).detach().abs().max()) for p, q in zip(m_t.parameters(), m_o.parameters(), strict=True))
    return h_t, h_o, diff


@torch.no_grad()
def recompute_bn_statistics(model: nn.Module, x: Any, batch_size: int = 256) -> nn.Module:
    """A copy of ``model`` whose BN running statistics are recomputed on ``x``.

    The running buffers are reset and accumulated as a cumulative average
    (``momentum=None``) over mini-batches of ``x`` in training mode; the weights are
    unchanged.  The copy is returned in eval mode.
    """
    clone = copy.deepcopy(model)
    bns = [m for m in clone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    clone.train()
    xt = torch.as_tensor(x)
    for i in range(0, len(xt), batch_size):
        clone(xt[i:i + batch_size])
    clone.eval()
    return clone


def gap_table(results: Mapping[str, RunResult | SeedRuns], pairs: Sequence[tuple[str, str, str]]
              ) -> list[dict[str, Any]]:
    """Max test accuracy without and with BN for each ``(setting, no_bn_label, bn_label)``,
    and the gain BN − no BN.  A :class:`SeedRuns` entry counts with the mean over its seeds
    of the best accuracy (``n_seeds`` says how many runs each row rests on)."""

    def best(entry: RunResult | SeedRuns) -> tuple[float, int]:
        if isinstance(entry, SeedRuns):
            return float(entry.max_accs.mean()), len(entry.results)
        return entry.max_acc, 1

    rows = []
    for setting, no_bn, bn in pairs:
        (a, na), (b, nb) = best(results[no_bn]), best(results[bn])
        rows.append({"setting": setting, "no_bn": a, "bn": b, "gain": b - a, "n_seeds": min(na, nb)})
    return rows
