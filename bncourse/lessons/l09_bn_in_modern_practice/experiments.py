"""Batch norm in modern practice: the helpers of notebook 09.

* :func:`weight_decay_experiment`, :func:`plot_weight_decay` -- with BN, weight decay sets
  the weight norm and so the effective learning rate η/‖W‖² (van Laarhoven 2017).
* :func:`signal_propagation`, :func:`plot_signal_propagation`, :func:`zero_gamma_experiment`
  -- residual networks: variance of the residual stream with depth, and zero-γ init.
* :func:`precise_bn_experiment` -- EMA vs precise population statistics (Wu & Johnson 2021).
* :func:`batch_dependence`, :func:`class_sorted_experiment` -- BN leaks information across
  a batch (MoCo's Shuffle-BN).
* :func:`transformer_grad_norms`, :func:`plot_transformer_grads`, :func:`norm_sequence_experiment`,
  :func:`padding_dependence` -- LayerNorm vs RMSNorm, pre- vs post-LN.
* :func:`small_batch_ws_experiment` -- Weight Standardization + GN, and adaptive gradient
  clipping, against BN at batch 4.
* :func:`mean_spread` -- mean and (min, max) over seeds.

Every experiment is seeded and runs on one thread in a second or a few.  Importing this
module imports torch and matplotlib.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from matplotlib.figure import Figure
from numpy.typing import NDArray
from torch import nn

from bncourse.course import plots
from bncourse.course.data import DigitsSplit, load_digits_split, shift_digits
from bncourse.course.training import minibatch_step
from bncourse.errors import ParameterError

__all__ = [
    "SeedCurves",
    "agc_",
    "batch_dependence",
    "class_sorted_experiment",
    "finetune_experiment",
    "mean_spread",
    "norm_sequence_experiment",
    "padding_dependence",
    "plot_bands",
    "plot_signal_propagation",
    "plot_transformer_grads",
    "plot_weight_decay",
    "precise_bn_experiment",
    "signal_propagation",
    "small_batch_ws_experiment",
    "transformer_grad_norms",
    "weight_decay_experiment",
    "zero_gamma_experiment",
]

Array = NDArray[np.float64]


def mean_spread(values: Sequence[float] | NDArray[np.floating]) -> str:
    """``"0.912 (0.905-0.920)"``: the mean and the range over seeds."""
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.3f} ({v.min():.3f}-{v.max():.3f})"


@dataclass
class SeedCurves:
    """Curves of several named settings, one row per seed: ``curves[name]`` is ``(seeds, T)``."""

    x: Array
    curves: dict[str, Array] = field(default_factory=dict)


def plot_bands(result: SeedCurves, *, title: str, xlabel: str, ylabel: str, logy: bool = False,
               ax: Any = None) -> Figure:
    """Mean over seeds as a line, min–max over seeds as a band, per setting; the legend under the axes."""
    if ax is None:
        fig, ax = plots.new_figure(width=10.0, height=6.0)
    else:
        fig = ax.figure
    for name, c in result.curves.items():
        m = c.mean(axis=0)
        (line,) = ax.plot(result.x, m, label=f"{name} (mean of {c.shape[0]})")
        ax.fill_between(result.x, c.min(axis=0), c.max(axis=0), color=line.get_color(), alpha=0.2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    plots.legend_below(ax)
    return fig


def _digits(split: DigitsSplit | None) -> tuple[torch.Tensor, ...]:
    d = split if split is not None else load_digits_split(seed=0)
    return (torch.as_tensor(d.x_train.reshape(len(d.x_train), -1), dtype=torch.float32),
            torch.as_tensor(d.y_train), torch.as_tensor(d.x_test.reshape(len(d.x_test), -1), dtype=torch.float32),
            torch.as_tensor(d.y_test))


def _bn_mlp(width: int, seed: int, norm: str = "bn", depth: int = 2) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    d_in = 64
    for _ in range(depth):
        layers += [nn.Linear(d_in, width, bias=norm == "none")]
        if norm == "bn":
            layers.append(nn.BatchNorm1d(width))
        elif norm == "ln":
            layers.append(nn.LayerNorm(width))
        layers.append(nn.ReLU())
        d_in = width
    layers.append(nn.Linear(d_in, 10))
    return nn.Sequential(*layers)


def _sgd_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, gen: torch.Generator,
               batch_size: int = 32) -> None:
    """``steps`` of SGD (lr 0.1, momentum 0.9) on cross-entropy, each on a random mini-batch
    drawn with ``gen`` (which the caller may go on using)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        minibatch_step(model, opt, x, y, gen, batch_size)


def _acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        a = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return float(a)


# ------------------------------------------------------------------------- 1. weight decay


@dataclass
class WeightDecayResult:
    """‖W‖ of the first (BN-followed) layer, η/‖W‖², and test accuracy, per setting and seed."""

    steps: Array
    norm: dict[str, Array]
    eff_lr: dict[str, Array]
    final_acc: dict[str, list[float]]

    def rows(self) -> list[dict[str, Any]]:
        return [{"setting": k, "initial ||W||": mean_spread(self.norm[k][:, 0]),
                 "final ||W||": mean_spread(self.norm[k][:, -1]),
                 "final lr/||W||^2": f"{self.eff_lr[k][:, -1].mean():.2e}",
                 "test acc": mean_spread(self.final_acc[k])} for k in self.norm]


def weight_decay_experiment(weight_decays: Sequence[float] = (0.0, 5e-3), lr: float = 0.1, steps: int = 600,
                            batch_size: int = 32, width: int = 64, seeds: Sequence[int] = (0, 1, 2),
                            record_every: int = 20, split: DigitsSplit | None = None) -> WeightDecayResult:
    """Train a BN MLP on the digits with SGD and several weight decays; record ‖W₁‖ over training.

    The first layer's output goes through BN, so the loss does not depend on ‖W₁‖: its
    gradient is orthogonal to W₁ and a step of size η turns W₁ by about η‖∇‖/‖W₁‖, i.e. the
    *effective* learning rate of the direction is η/‖W₁‖² (van Laarhoven 2017).
    """
    if not weight_decays or not seeds:
        raise ParameterError("need at least one weight decay and one seed")
    xtr, ytr, xte, yte = _digits(split)
    rec = np.arange(0, steps + 1, record_every)
    norm, eff, accs = {}, {}, {}
    for wd in weight_decays:
        name = f"weight decay {wd:g}"
        ns, es, acc = [], [], []
        for seed in seeds:
            model = _bn_mlp(width, seed)
            opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
            gen = torch.Generator().manual_seed(seed)
            w: torch.Tensor = model[0].weight  # type: ignore[assignment]
            n_curve = []
            for step in range(steps + 1):
                if step % record_every == 0:
                    n_curve.append(float(w.detach().norm()))
                if step == steps:
                    break
                minibatch_step(model, opt, xtr, ytr, gen, batch_size)
            ns.append(n_curve)
            es.append([lr / v**2 for v in n_curve])
            acc.append(_acc(model, xte, yte))
        norm[name], eff[name], accs[name] = np.array(ns), np.array(es), acc
    return WeightDecayResult(rec.astype(np.float64), norm, eff, accs)


def plot_weight_decay(res: WeightDecayResult) -> Figure:
    """Two panels: ‖W₁‖ and the effective learning rate η/‖W₁‖², mean and range over seeds."""
    fig, axes = plots.new_figure(2, width=plots.MAX_WIDTH_IN, height=5.6)
    plot_bands(SeedCurves(res.steps, res.norm), title="Weight norm of the layer before BN",
               xlabel="SGD step", ylabel="||W1|| (Frobenius)", ax=axes[0])
    plot_bands(SeedCurves(res.steps, res.eff_lr), title="Effective learning rate", xlabel="SGD step",
               ylabel="lr / ||W1||^2", logy=True, ax=axes[1])
    return fig


# ------------------------------------------------------------------- 2. residual networks


class _Block(nn.Module):
    """``x + f(x)``, ``f = Linear → [BN] → ReLU → Linear → [BN]``; γ of the last BN set by ``zero_gamma``."""

    def __init__(self, width: int, bn: bool, zero_gamma: bool) -> None:
        super().__init__()
        self.l1 = nn.Linear(width, width, bias=not bn)
        self.l2 = nn.Linear(width, width, bias=not bn)
        for lin in (self.l1, self.l2):
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        self.n1: nn.Module = nn.BatchNorm1d(width) if bn else nn.Identity()
        self.n2: nn.Module = nn.BatchNorm1d(width) if bn else nn.Identity()
        if bn and zero_gamma:
            nn.init.zeros_(self.n2.weight)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.n2(self.l2(F.relu(self.n1(self.l1(x)))))


class _ResMLP(nn.Module):
    def __init__(self, depth: int, width: int, bn: bool, zero_gamma: bool, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Linear(64, width)
        self.blocks = nn.ModuleList([_Block(width, bn, zero_gamma) for _ in range(depth)])
        self.head = nn.Linear(width, 10)

    def stream(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(x)
        out = [h]
        for b in self.blocks:
            h = b(h)
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stream(x)[-1])


SETTINGS = {"no norm": (False, False), "BN, gamma=1": (True, False), "BN, zero gamma": (True, True)}
"""Residual-network settings: name → (batch norm, zero-initialized γ in each block's last BN)."""


def signal_propagation(depth: int = 20, width: int = 64, batch: int = 256, seeds: Sequence[int] = (0, 1, 2),
                       split: DigitsSplit | None = None) -> SeedCurves:
    """Average channel variance of the residual stream after each block, at initialization.

    Brock, De & Smith (2021)'s signal propagation plot, on a residual MLP fed digits (in
    training mode, as during the first step). Returns ``SeedCurves`` over block index
    ``0..depth`` per :data:`SETTINGS`.
    """
    xtr = _digits(split)[0][:batch]
    res = SeedCurves(np.arange(depth + 1, dtype=np.float64))
    for name, (bn, zg) in SETTINGS.items():
        rows = []
        for seed in seeds:
            model = _ResMLP(depth, width, bn, zg, seed)
            with torch.no_grad():
                rows.append([float(h.var(dim=0).mean()) for h in model.stream(xtr)])
        res.curves[name] = np.array(rows)
    return res


def plot_signal_propagation(res: SeedCurves) -> Figure:
    """Channel variance of the residual stream against depth (log scale)."""
    return plot_bands(res, title="Signal propagation at initialization", xlabel="residual block",
                      ylabel="average channel variance", logy=True)


def zero_gamma_experiment(depth: int = 12, width: int = 64, lr: float = 0.1, steps: int = 100,
                          batch_size: int = 64, seeds: Sequence[int] = (0, 1, 2), record_every: int = 10,
                          split: DigitsSplit | None = None) -> SeedCurves:
    """Training loss of a deep BN residual MLP with γ = 1 vs zero-initialized γ, at a large lr."""
    xtr, ytr, _, _ = _digits(split)
    res = SeedCurves(np.arange(0, steps, record_every, dtype=np.float64))
    for name in ("BN, gamma=1", "BN, zero gamma"):
        bn, zg = SETTINGS[name]
        rows = []
        for seed in seeds:
            model = _ResMLP(depth, width, bn, zg, seed)
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
            gen = torch.Generator().manual_seed(seed)
            curve, run = [], []
            for step in range(steps):
                loss = minibatch_step(model, opt, xtr, ytr, gen, batch_size)
                run.append(min(float(np.nan_to_num(loss.item(), nan=10.0)), 10.0))  # a diverged run counts as loss 10
                if (step + 1) % record_every == 0:
                    curve.append(float(np.mean(run)))
                    run = []
            rows.append(curve)
        res.curves[name] = np.array(rows)
    return res


# ------------------------------------------------------------------ 3. fine-tuning


FINETUNE_MODES = ("BN in train mode", "BN frozen (source stats)", "BN re-estimated, then frozen")
"""How BN is treated while fine-tuning: batch statistics (and EMA updates) from the small batches;
eval mode with the source's running statistics; eval mode with statistics recomputed on the
unlabeled target images first (AdaBN-style)."""


def _set_bn_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.eval()


def finetune_experiment(shift: tuple[str, float] = ("scale", 0.4), n_labeled: int = 50, batch_size: int = 2,
                        pretrain_steps: int = 300, steps: int = 100, lr: float = 0.02,
                        seeds: Sequence[int] = (0, 1, 2), split: DigitsSplit | None = None) -> list[dict[str, Any]]:
    """Pretrain a BN MLP on the digits, fine-tune it on a few labeled shifted digits with tiny batches.

    ``shift`` is passed to :func:`bncourse.course.data.shift_digits`.  Each of
    :data:`FINETUNE_MODES` starts from the same pretrained weights; the target test
    accuracy (eval mode) is reported before and after fine-tuning, mean and range over seeds.
    """
    d = split if split is not None else load_digits_split(seed=0)
    xtr, ytr, _, yte = _digits(d)
    kind, amount = shift
    ttr = torch.as_tensor(shift_digits(d.x_train.reshape(len(d.x_train), -1), kind, amount, seed=1),
                          dtype=torch.float32)
    tte = torch.as_tensor(shift_digits(d.x_test.reshape(len(d.x_test), -1), kind, amount, seed=2),
                          dtype=torch.float32)
    before: list[float] = []
    after: dict[str, list[float]] = {m: [] for m in FINETUNE_MODES}
    for seed in seeds:
        base = _bn_mlp(64, seed)
        gen = torch.Generator().manual_seed(seed)
        _sgd_steps(base, xtr, ytr, pretrain_steps, gen)
        before.append(_acc(base, tte, yte))
        labeled = torch.randperm(len(ttr), generator=gen)[:n_labeled]
        for mode in FINETUNE_MODES:
            model = copy.deepcopy(base)
            if mode.startswith("BN re-estimated"):
                _precise_stats_(model, ttr, 32, _pooled_stats)  # unlabeled target images
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
            g2 = torch.Generator().manual_seed(100 + seed)
            model.train()
            if mode != "BN in train mode":
                _set_bn_eval(model)
            for _ in range(steps):
                idx = labeled[torch.randint(0, n_labeled, (batch_size,), generator=g2)]
                loss = F.cross_entropy(model(ttr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            after[mode].append(_acc(model, tte, yte))
    rows = [{"fine-tuning": "none (pretrained, source stats)", "target test acc": mean_spread(before)}]
    rows += [{"fine-tuning": m, "target test acc": mean_spread(v)} for m, v in after.items()]
    return rows


# ------------------------------------------------------------ 5. EMA vs precise statistics


@dataclass
class PreciseResult:
    """Test accuracy with the EMA running statistics vs precise ones, at checkpoints, per seed."""

    steps: Array
    ema: Array
    precise: Array

    def rows(self) -> list[dict[str, Any]]:
        return [{"step": int(s), "EMA stats": mean_spread(self.ema[:, i]),
                 "precise stats": mean_spread(self.precise[:, i]),
                 "precise - EMA": mean_spread(self.precise[:, i] - self.ema[:, i])}
                for i, s in enumerate(self.steps)]


def _precise_stats_(model: nn.Module, x: torch.Tensor, batch_size: int, stats_fn: Callable[..., Any]) -> None:
    """Replace every BN's running stats by ``stats_fn`` over its inputs on ``x`` in batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    inputs: dict[int, list[np.ndarray]] = {i: [] for i in range(len(bns))}
    hooks = [bn.register_forward_hook(lambda m, a, o, i=i: inputs[i].append(a[0].detach().numpy().astype(np.float64)))
             for i, bn in enumerate(bns)]
    model.train()
    with torch.no_grad():
        for start in range(0, len(x) - batch_size + 1, batch_size):
            model(x[start:start + batch_size])
    for h in hooks:
        h.remove()
    for i, bn in enumerate(bns):
        mean, var = stats_fn(np.stack(inputs[i]))
        bn.running_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))  # type: ignore[union-attr]
        bn.running_var.copy_(torch.as_tensor(var, dtype=torch.float32))  # type: ignore[union-attr]


def _pooled_stats(acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased variance of every activation of every batch, ``(B, N, D)`` → ``(D,), (D,)``."""
    flat = acts.reshape(-1, acts.shape[-1])
    return flat.mean(axis=0), flat.var(axis=0, ddof=1)


def precise_bn_experiment(lr: float = 0.5, steps: int = 300, checkpoints: Sequence[int] = (25, 50, 100, 300),
                          batch_size: int = 32, bn_momentum: float = 0.1, width: int = 64,
                          seeds: Sequence[int] = (0, 1, 2), stats_fn: Callable[..., Any] | None = None,
                          split: DigitsSplit | None = None) -> PreciseResult:
    """Train a BN MLP with a large lr; at each checkpoint evaluate with EMA and with precise statistics.

    Precise statistics: run the training set through the frozen network in training-sized
    batches and set each BN's population mean/variance from all of them (``stats_fn``,
    e.g. the ``precise_bn_stats`` exercise, gets the ``(num_batches, batch, D)`` inputs
    of one BN layer; default: the stand-in).  The EMA lags behind weights that change
    fast — the train/test inconsistency of Wu & Johnson (2021).
    """
    stats_fn = stats_fn if stats_fn is not None else _pooled_stats
    xtr, ytr, xte, yte = _digits(split)
    ema, prec = [], []
    for seed in seeds:
        model = _bn_mlp(width, seed)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = bn_momentum
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        gen = torch.Generator().manual_seed(seed)
        e_row, p_row = [], []
        for step in range(1, steps + 1):
            minibatch_step(model, opt, xtr, ytr, gen, batch_size)
            if step in checkpoints:
                e_row.append(_acc(model, xte, yte))
                state = {k: v.clone() for k, v in model.state_dict().items()}
                _precise_stats_(model, xtr, batch_size, stats_fn)
                p_row.append(_acc(model, xte, yte))
                model.load_state_dict(state)  # training goes on with the EMA buffers
        ema.append(e_row)
        prec.append(p_row)
    return PreciseResult(np.array(list(checkpoints), dtype=np.float64), np.array(ema), np.array(prec))


# ----------------------------------------------------------------- 6. information leakage


def batch_dependence(n_batches: int = 50, batch_size: int = 8, steps: int = 300, seed: int = 0,
                     split: DigitsSplit | None = None) -> list[dict[str, Any]]:
    """One test example in ``n_batches`` random batches of test digits: how much its output moves.

    A BN and an LN MLP, trained alike; for each mode, the spread (std over batches, mean over
    classes) of the example's logits and the number of distinct predicted classes.
    """
    xtr, ytr, xte, _ = _digits(split)
    rows = []
    for norm in ("bn", "ln"):
        model = _bn_mlp(64, seed, norm=norm)
        gen = torch.Generator().manual_seed(seed)
        _sgd_steps(model, xtr, ytr, steps, gen)
        rng = np.random.default_rng(seed)
        for mode in ("train", "eval"):
            model.train(mode == "train")
            logits = []
            with torch.no_grad():
                for _ in range(n_batches):
                    mates = torch.as_tensor(rng.choice(np.arange(1, len(xte)), batch_size - 1, replace=False))
                    logits.append(model(torch.cat([xte[:1], xte[mates]]))[0].numpy())
            L = np.array(logits)
            rows.append({"norm": norm.upper(), "mode": mode, "logit std over batches": float(L.std(0).mean()),
                         "distinct predictions": len(set(L.argmax(1).tolist()))})
        model.train()
    return rows


def class_sorted_experiment(steps: int = 300, batch_size: int = 16, seeds: Sequence[int] = (0, 1, 2),
                            split: DigitsSplit | None = None) -> list[dict[str, Any]]:
    """A BN MLP trained on ordinary shuffled batches, evaluated three ways on the same test digits.

    In eval mode (running statistics); in training mode on random test batches; in training
    mode on batches that hold a single class. The last normalizes each example with the
    statistics of its own class and so removes what the classes have in common apart:
    a prediction in training mode is a function of the batch-mates.
    """
    xtr, ytr, xte, yte = _digits(split)
    by_class_te = [torch.nonzero(yte == c).flatten() for c in range(10)]
    ev, tr_rand, tr_sorted = [], [], []
    for seed in seeds:
        model = _bn_mlp(64, seed)
        gen = torch.Generator().manual_seed(seed)
        _sgd_steps(model, xtr, ytr, steps, gen, batch_size)
        ev.append(_acc(model, xte, yte))
        perm = torch.randperm(len(xte), generator=gen)
        correct = total = 0
        with torch.no_grad():
            for s in range(0, len(perm) - batch_size + 1, batch_size):
                b = perm[s:s + batch_size]
                correct += int((model(xte[b]).argmax(1) == yte[b]).sum())
                total += batch_size
            tr_rand.append(correct / total)
            correct = total = 0
            for c in range(10):
                pool = by_class_te[c]
                for s in range(0, len(pool) - batch_size + 1, batch_size):
                    correct += int((model(xte[pool[s:s + batch_size]]).argmax(1) == c).sum())
                    total += batch_size
            tr_sorted.append(correct / total)
    return [{"evaluation": "eval mode (running statistics)", "test acc": mean_spread(ev)},
            {"evaluation": f"train mode, random batches of {batch_size}", "test acc": mean_spread(tr_rand)},
            {"evaluation": f"train mode, single-class batches of {batch_size}", "test acc": mean_spread(tr_sorted)}]


# ------------------------------------------------------------------- 7. sequence models


class _TinyTransformer(nn.Module):
    """Token embedding + learned positions → ``depth`` encoder layers → mean-pool → linear."""

    def __init__(self, vocab: int, length: int, d: int, depth: int, n_classes: int, norm_first: bool,
                 norm: str, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(length, d))
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(d, nhead=2, dim_feedforward=2 * d, dropout=0.0, batch_first=True,
                                       norm_first=norm_first) for _ in range(depth)])
        if norm == "rms":
            for layer in self.layers:
                layer.norm1 = nn.RMSNorm(d, eps=1e-5)
                layer.norm2 = nn.RMSNorm(d, eps=1e-5)
        self.final: nn.Module = (nn.RMSNorm(d, eps=1e-5) if norm == "rms" else nn.LayerNorm(d)) if norm_first \
            else nn.Identity()
        self.head = nn.Linear(d, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.emb(tokens) + self.pos
        for layer in self.layers:
            h = layer(h)
        return self.head(self.final(h).mean(dim=1))


def _seq_task(n: int, length: int, vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token sequences; label: the most frequent token among tokens 0–3 (ties → smallest)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, length), generator=g)
    counts = torch.stack([(x == t).sum(1) for t in range(4)], dim=1)
    return x, counts.argmax(1)


def _grad_norm(p: Any) -> float:
    return float(p.grad.norm()) if p.grad is not None else 0.0


def transformer_grad_norms(depth: int = 12, d: int = 32, length: int = 12, vocab: int = 12,
                           seeds: Sequence[int] = (0, 1, 2)) -> SeedCurves:
    """Gradient norm of each layer's feed-forward weights at initialization, post-LN vs pre-LN.

    Xiong et al. (2020): with post-LN the gradients of the last layers are large at
    initialization (hence the warm-up it needs); with pre-LN they are flat or shrink with depth.
    """
    x, y = _seq_task(256, length, vocab, seed=99)
    res = SeedCurves(np.arange(1, depth + 1, dtype=np.float64))
    for name, nf in (("post-LN", False), ("pre-LN", True)):
        rows = []
        for seed in seeds:
            model = _TinyTransformer(vocab, length, d, depth, 4, nf, "ln", seed)
            F.cross_entropy(model(x), y).backward()
            rows.append([_grad_norm(layer.linear2.weight) for layer in model.layers])  # type: ignore[union-attr]
        res.curves[name] = np.array(rows)
    return res


def plot_transformer_grads(res: SeedCurves) -> Figure:
    return plot_bands(res, title="Gradient norm at initialization", xlabel="layer (1 = input side)",
                      ylabel="||grad of FFN weight||", logy=True)


def norm_sequence_experiment(settings: Sequence[tuple[str, bool, str]] = (
        ("post-LN, LayerNorm", False, "ln"), ("pre-LN, LayerNorm", True, "ln"), ("pre-LN, RMSNorm", True, "rms")),
        depth: int = 2, d: int = 32, length: int = 12, vocab: int = 12, steps: int = 100, lr: float = 3e-3,
        batch_size: int = 32, seeds: Sequence[int] = (0, 1, 2), record_every: int = 10) -> SeedCurves:
    """Train a tiny transformer (Adam, no warm-up) on a counting task; loss curve per setting and seed."""
    xtr, ytr = _seq_task(2048, length, vocab, seed=1)
    res = SeedCurves(np.arange(record_every, steps + 1, record_every, dtype=np.float64))
    for name, nf, norm in settings:
        rows = []
        for seed in seeds:
            model = _TinyTransformer(vocab, length, d, depth, 4, nf, norm, seed)
            opt = torch.optim.Adam(model.parameters(), lr=lr)
            gen = torch.Generator().manual_seed(seed)
            curve, run = [], []
            for step in range(1, steps + 1):
                loss = minibatch_step(model, opt, xtr, ytr, gen, batch_size)
                run.append(loss.item())
                if step % record_every == 0:
                    curve.append(float(np.mean(run)))
                    run = []
            rows.append(curve)
        res.curves[name] = np.array(rows)
    return res


def padding_dependence(lengths: Sequence[int] = (4, 8, 16), d: int = 6, seed: int = 0) -> list[dict[str, Any]]:
    """One sequence of 4 tokens, padded with zeros into batches padded to different lengths.

    BN over (batch, time) counts the padding in its statistics, so the real tokens'
    outputs change with the padding; LN and RMSNorm (per token) do not.
    """
    rng = np.random.default_rng(seed)
    seq = rng.normal(1.0, 2.0, size=(4, d))
    other = rng.normal(1.0, 2.0, size=(3, d))
    ref: dict[str, np.ndarray] = {}
    rows = []
    for T in lengths:
        batch = np.zeros((2, T, d))
        batch[0, :4] = seq
        batch[1, :3] = other
        t = torch.as_tensor(batch)
        outs = {"BatchNorm": F.batch_norm(t.reshape(-1, d), None, None, training=True).reshape(2, T, d),
                "LayerNorm": F.layer_norm(t, (d,)),
                "RMSNorm": F.rms_norm(t, (d,), eps=1e-5)}
        row: dict[str, Any] = {"padded length": T}
        for name, o in outs.items():
            o0 = o[0, :4].numpy()
            ref.setdefault(name, o0)
            row[f"{name}: max change"] = float(np.abs(o0 - ref[name]).max())
        rows.append(row)
    return rows


# --------------------------------------------------------- 8. no batch statistics at all


class _WSConv2d(nn.Conv2d):
    """A convolution whose weight is standardized per output channel on every forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        flat = w.reshape(w.shape[0], -1)
        w_hat = ((flat - flat.mean(1, keepdim=True)) / torch.sqrt(flat.var(1, unbiased=False, keepdim=True) + 1e-5))
        return F.conv2d(x, w_hat.reshape(w.shape), self.bias, self.stride, self.padding)


def _cnn(norm: str, seed: int, channels: tuple[int, int] = (8, 16)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = 1
    for i, c in enumerate(channels):
        conv_cls = _WSConv2d if norm == "ws+gn" else nn.Conv2d
        layers.append(conv_cls(c_in, c, 3, stride=1 if i == 0 else 2, padding=1, bias=norm == "none"))
        if norm == "bn":
            layers.append(nn.BatchNorm2d(c))
        elif norm in ("gn", "ws+gn"):
            layers.append(nn.GroupNorm(4, c))
        layers.append(nn.ReLU())
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
    return nn.Sequential(*layers)


def agc_(model: nn.Module, clip: float = 0.02, eps: float = 1e-3) -> None:
    """Adaptive gradient clipping (Brock et al. 2021), unit-wise, in place on ``.grad``.

    Each output unit's gradient row G_i is rescaled to at most ``clip · max(‖W_i‖, eps) ``
    when it is larger (every layer here, the classifier included).
    """
    for p in model.parameters():
        if p.grad is None:
            continue
        w, g = p.detach(), p.grad
        w2, g2 = w.reshape(w.shape[0], -1), g.reshape(g.shape[0], -1)
        wn = w2.norm(dim=1, keepdim=True).clamp_min(eps)
        gn = g2.norm(dim=1, keepdim=True).clamp_min(1e-6)
        scale = torch.where(gn > clip * wn, clip * wn / gn, torch.ones_like(gn))
        g.copy_((g2 * scale).reshape(g.shape))


def small_batch_ws_experiment(methods: Sequence[str] = ("bn", "gn", "ws+gn", "none", "none, lr x4",
                                                       "none+agc, lr x4"),
                              batch_size: int = 8, steps: int = 300, lr: float = 0.05,
                              seeds: Sequence[int] = (0, 1, 2), split: DigitsSplit | None = None
                              ) -> list[dict[str, Any]]:
    """A small CNN on the digits with small batches: BN, GN, WS+GN, no norm, no norm + AGC.

    Test accuracy in eval mode (BN: running statistics) after ``steps`` SGD steps
    (momentum 0.9), mean and range over seeds.  A method ending in ``", lr x4"`` is trained
    with four times the learning rate; ``"+agc"`` adds adaptive gradient clipping.
    """
    d = split if split is not None else load_digits_split(seed=0, images=True)
    xtr, ytr = torch.as_tensor(d.x_train.reshape(-1, 1, 8, 8)), torch.as_tensor(d.y_train)
    xte, yte = torch.as_tensor(d.x_test.reshape(-1, 1, 8, 8)), torch.as_tensor(d.y_test)
    rows = []
    for method in methods:
        base, _, mult = method.partition(", lr x")
        norm, agc = base.replace("+agc", ""), base.endswith("+agc")
        if norm not in ("bn", "gn", "ws+gn", "none"):
            raise ParameterError(f"unknown method {method!r}")
        m_lr = lr * (float(mult) if mult else 1.0)
        accs = []
        for seed in seeds:
            model = _cnn(norm, seed)
            opt = torch.optim.SGD(model.parameters(), lr=m_lr, momentum=0.9)
            gen = torch.Generator().manual_seed(seed)
            for _ in range(steps):
                minibatch_step(model, opt, xtr, ytr, gen, batch_size, before_step=agc_ if agc else None)
            accs.append(_acc(model, xte, yte))
        rows.append({"method": base, "batch": batch_size, "lr": m_lr, "test acc": mean_spread(accs)})
    return rows
