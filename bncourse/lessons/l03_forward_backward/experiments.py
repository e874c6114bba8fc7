r"""Notebook 03's experiments: batch norm as one coupled network, and its backward pass.

What lives here (the notebook only calls it):

* the Jacobian :math:`\partial y_{i}/\partial x_{j}` of a batch and the wrong gradient
  that treats μ and σ² as constants (:func:`bn_jacobian`,
  :func:`batchnorm_backward_constant_stats`, :func:`constant_stats_error`,
  :func:`bias_drift_experiment`);
* gradient checking helpers (:func:`forward_difference_gradient`,
  :func:`finite_difference_errors`, :func:`torch_batchnorm_grads`);
* how well a batch stands in for the training set (:func:`batch_statistics_spread`,
  :func:`normalized_value_spread`) and full-batch / mini-batch / online learning
  (:func:`learning_regimes`);
* the timing of the two NumPy backwards against torch (:func:`time_backwards`);
* the figures: :func:`draw_batchnorm_graph`, :func:`plot_jacobians`,
  :func:`plot_batch_spread`, :func:`plot_learning_regimes`, :func:`plot_bias_drift`,
  :func:`plot_finite_differences`.

NumPy only at import time; torch and matplotlib are imported inside the functions that
need them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bncourse import oracle
from bncourse.conventions import EPS
from bncourse.errors import ParameterError, ShapeError
from bncourse.validation import Array

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BiasDrift",
    "RegimeResult",
    "batch_statistics_spread",
    "batchnorm_backward_constant_stats",
    "bias_drift_experiment",
    "bn_jacobian",
    "bn_jacobian_constant_stats",
    "constant_stats_error",
    "draw_batchnorm_graph",
    "finite_difference_errors",
    "forward_difference_gradient",
    "forward_for",
    "jacobian_matrix",
    "learning_regimes",
    "normalized_value_spread",
    "plot_batch_spread",
    "plot_bias_drift",
    "plot_finite_differences",
    "plot_jacobians",
    "plot_learning_regimes",
    "softmax_regression_step",
    "time_backwards",
    "torch_batchnorm_grads",
]

F64 = NDArray[np.float64]


# ----------------------------------------------------------------------------- Jacobians


def bn_jacobian(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = EPS) -> F64:
    r"""The full Jacobian of the batch-norm forward pass, :math:`J[i, d, j, e] = \partial y_{id} / \partial x_{je}`.

    Built one row at a time from the backward pass (a one-hot ``dout`` picks one output),
    so it is exactly what backprop computes.  Features do not mix (``J = 0`` for
    ``d != e``) but examples do: per feature,

    .. math::
        \frac{\partial y_i}{\partial x_j} = \frac{\gamma}{m\sqrt{\sigma^2+\epsilon}}
        \left(m\,\delta_{ij} - 1 - \hat x_i \hat x_j\right),

    which is non-zero off the diagonal.

    Shapes:
        x: ``(N, D)``; gamma, beta: ``(D,)``.

    Returns:
        J of shape ``(N, D, N, D)``, float64.
    """
    x64 = np.asarray(x, dtype=np.float64)
    if x64.ndim != 2:
        raise ShapeError(f"bn_jacobian expects x of shape (N, D), got shape {x64.shape}")
    n, d = x64.shape
    _, cache = oracle.batchnorm_forward(x64, np.asarray(gamma, np.float64), np.asarray(beta, np.float64), eps)
    J = np.zeros((n, d, n, d))
    for i in range(n):
        for k in range(d):
            onehot = np.zeros((n, d))
            onehot[i, k] = 1.0
            J[i, k] = oracle.batchnorm_backward_alt(onehot, cache)[0]
    return J


def bn_jacobian_constant_stats(x: ArrayLike, gamma: ArrayLike, eps: float = EPS) -> F64:
    r"""The Jacobian you get if μ and σ² are treated as constants: diagonal, :math:`\gamma/\sqrt{\sigma^2+\epsilon}`.

    Shapes:
        x: ``(N, D)``; gamma: ``(D,)``.  Returns ``(N, D, N, D)``.
    """
    x64 = np.asarray(x, dtype=np.float64)
    n, d = x64.shape
    scale = np.asarray(gamma, np.float64) / np.sqrt(x64.var(axis=0) + eps)
    J = np.zeros((n, d, n, d))
    for i in range(n):
        for k in range(d):
            J[i, k, i, k] = scale[k]
    return J


def jacobian_matrix(J: ArrayLike) -> F64:
    """``(N, D, N, D)`` Jacobian as an ``(N·D, N·D)`` matrix ordered feature by feature.

    Row/column ``k·N + i`` is example i of feature k, so each feature is one N×N block.
    """
    J = np.asarray(J, dtype=np.float64)
    n, d = J.shape[:2]
    return J.transpose(1, 0, 3, 2).reshape(d * n, d * n)


def batchnorm_backward_constant_stats(dout: ArrayLike, cache: oracle.AutogradCache) -> tuple[F64, F64, F64]:
    r"""The *wrong* backward that treats μ and σ² as constants: :math:`dx = \gamma\,dy/\sqrt{\sigma^2+\epsilon}`.

    dγ and dβ are right (they do not go through μ, σ²); only dx is wrong.  Computed by
    torch: autograd through ``F.batch_norm`` in evaluation mode with the batch's own μ and
    σ² passed in as constants (detached), on the cache of
    :func:`bncourse.oracle.batchnorm_forward`.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 - the conventional name

    x = cache.inputs["x"].detach()
    var, mu = torch.var_mean(x, dim=0, correction=0)
    leaves = [cache.inputs[k].detach().clone().requires_grad_(True) for k in ("x", "gamma", "beta")]
    out = F.batch_norm(leaves[0], mu, var, leaves[1], leaves[2], training=False, eps=cache.eps)
    grads = torch.autograd.grad(out, leaves, torch.as_tensor(np.asarray(dout, np.float64)))
    dx, dgamma, dbeta = (g.numpy().astype(cache.dtype) for g in grads)
    return dx, dgamma, dbeta


def constant_stats_error(
    batch_sizes: Sequence[int],
    d: int = 16,
    trials: int = 20,
    dout_mean: float = 0.0,
    seed: int = 0,
) -> F64:
    r"""Relative error :math:`\|dx_{const} - dx\| / \|dx\|` of the constant-statistics gradient.

    For each batch size m, ``trials`` random batches x ~ N(0, 1) of shape ``(m, d)`` and
    upstream gradients ``dout ~ N(dout_mean, 1)`` (a non-zero mean is a loss that pushes
    every example the same way).  Returns the mean relative error per batch size.
    """
    rng = np.random.default_rng(seed)
    errors = np.zeros(len(batch_sizes))
    for k, m in enumerate(batch_sizes):
        if m < 2:
            raise ParameterError(f"constant_stats_error needs batch sizes >= 2, got {m}")
        errs = []
        for _ in range(trials):
            x = rng.standard_normal((m, d))
            dout = rng.standard_normal((m, d)) + dout_mean
            _, cache = oracle.batchnorm_forward(x, np.ones(d), np.zeros(d))
            dx = oracle.batchnorm_backward_alt(dout, cache)[0]
            dx_const = batchnorm_backward_constant_stats(dout, cache)[0]
            errs.append(np.linalg.norm(dx_const - dx) / np.linalg.norm(dx))
        errors[k] = float(np.mean(errs))
    return errors


@dataclass
class BiasDrift:
    """What :func:`bias_drift_experiment` recorded at every step (one run)."""

    loss: F64
    bias_norm: F64
    weight_norm: F64


def bias_drift_experiment(
    constant_stats: bool,
    steps: int = 300,
    lr: float = 0.1,
    n: int = 64,
    d_in: int = 8,
    d_out: int = 4,
    target_offset: float = 3.0,
    seed: int = 0,
) -> BiasDrift:
    r"""Ioffe & Szegedy's (2015, §2) argument, run: a layer ``z = xW + b`` followed by BN.

    The loss is ``½·mean‖y − t‖²`` with targets whose mean (``target_offset``) BN's output
    cannot reach because β is frozen at 0.  W, b and γ are trained by gradient descent
    on one fixed batch.  With the true gradient, ``db = Σ_i dz_i = 0`` (BN removes any
    shift), so b never moves.  With μ, σ² treated as constants (``constant_stats=True``)
    the gradient keeps asking for a shift that the normalization undoes: b grows every
    step while the loss does not improve.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d_in))
    t = 0.5 * x @ rng.standard_normal((d_in, d_out)) + target_offset
    W = 0.3 * rng.standard_normal((d_in, d_out))
    b, gamma, beta = np.zeros(d_out), np.ones(d_out), np.zeros(d_out)
    backward = batchnorm_backward_constant_stats if constant_stats else oracle.batchnorm_backward_alt
    loss, bias_norm, weight_norm = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    for step in range(steps):
        y, cache = oracle.batchnorm_forward(x @ W + b, gamma, beta)
        loss[step] = 0.5 * np.mean(np.sum((y - t) ** 2, axis=1))
        dz, dgamma, _ = backward((y - t) / n, cache)
        W -= lr * (x.T @ dz)
        b -= lr * dz.sum(axis=0)
        gamma -= lr * dgamma
        bias_norm[step], weight_norm[step] = np.linalg.norm(b), np.linalg.norm(W)
    return BiasDrift(loss, bias_norm, weight_norm)


def forward_for(
    backward: Callable[..., Any], student_forward: Callable[..., Any]
) -> Callable[..., Any]:
    """The forward pass whose cache ``backward`` reads.

    A backward pass only understands the cache of its own forward pass: the reference
    backwards need :func:`bncourse.reference.batchnorm_forward`, a student's backward needs
    the student's forward.  Notebooks call this after ``best_available`` so that the pair
    they use always fits together.
    """
    if backward is oracle.batchnorm_backward or backward is oracle.batchnorm_backward_alt:
        return oracle.batchnorm_forward
    return student_forward


# ----------------------------------------------------------------------------- gradient checks


def forward_difference_gradient(
    f: Callable[[F64], ArrayLike], x: ArrayLike, dout: ArrayLike, h: float = 1e-5
) -> F64:
    r"""One-sided differences :math:`(L(x + h e_i) - L(x))/h` of ``L = Σ f(x)·dout`` (error O(h)).

    The inferior cousin of :func:`bncourse.reference.gradcheck.numerical_gradient`, kept to show why
    the centered difference is used.
    """
    x_work = np.array(x, dtype=np.float64)
    weights = np.asarray(dout, dtype=np.float64)
    base = float(np.sum(np.asarray(f(x_work.copy()), dtype=np.float64) * weights))
    grad = np.zeros_like(x_work)
    for i in np.ndindex(x_work.shape):
        old = x_work[i]
        x_work[i] = old + h
        grad[i] = (float(np.sum(np.asarray(f(x_work.copy()), dtype=np.float64) * weights)) - base) / h
        x_work[i] = old
    return grad


def finite_difference_errors(
    hs: Sequence[float], dtype: type = np.float64, shape: tuple[int, int] = (6, 4), seed: int = 0
) -> dict[str, F64]:
    r"""Relative error ``‖g_num − dx‖/‖dx‖`` of centered and forward differences vs h.

    ``f`` is the BN forward evaluated in ``dtype`` (the input is rounded to ``dtype``
    inside f); the exact dx comes from the float64 closed-form backward.  Truncation
    error falls with h (as h² centered, h forward) while rounding error grows like
    ε_dtype/h, so each curve is V-shaped; in float32 no h gets close to float64's accuracy.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    gamma, beta = rng.uniform(0.5, 2.0, shape[1]), rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    _, cache = oracle.batchnorm_forward(x, gamma, beta)
    exact = oracle.batchnorm_backward_alt(dout, cache)[0]
    g: Array = gamma.astype(dtype)
    bt: Array = beta.astype(dtype)

    def f(z: F64) -> F64:
        return oracle.batchnorm_forward(z.astype(dtype), g, bt)[0].astype(np.float64)

    out = {"centered": np.zeros(len(hs)), "forward": np.zeros(len(hs))}
    for k, h in enumerate(hs):
        centered = oracle.numerical_gradient(f, x, dout, h)
        forward = forward_difference_gradient(f, x, dout, h)
        out["centered"][k] = np.linalg.norm(centered - exact) / np.linalg.norm(exact)
        out["forward"][k] = np.linalg.norm(forward - exact) / np.linalg.norm(exact)
    return out


def torch_batchnorm_grads(
    x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, dout: ArrayLike, eps: float = EPS
) -> tuple[Array, Array, Array, Array]:
    """``(out, dx, dgamma, dbeta)`` from ``torch.nn.functional.batch_norm`` and autograd.

    Training mode (batch statistics), no running statistics, same dtype as x.  An oracle
    written by someone else: parity with it is the strongest test of a hand-written backward.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 - the conventional name

    xt = torch.tensor(np.asarray(x), requires_grad=True)
    gt = torch.tensor(np.asarray(gamma), requires_grad=True)
    bt = torch.tensor(np.asarray(beta), requires_grad=True)
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    dx, dgamma, dbeta = torch.autograd.grad(out, (xt, gt, bt), torch.tensor(np.asarray(dout)))
    return out.detach().numpy(), dx.numpy(), dgamma.numpy(), dbeta.numpy()


# ----------------------------------------------------------------------------- batch statistics


def batch_statistics_spread(
    values: ArrayLike, batch_sizes: Sequence[int], n_batches: int = 2000, seed: int = 0
) -> dict[str, F64]:
    r"""How far a batch's mean and standard deviation stray from the whole set's.

    ``values`` is one feature over the training set (length N).  For each batch size m,
    ``n_batches`` batches are drawn without replacement.  Returns:

    * ``"mean_spread"``: standard deviation of :math:`\mu_B` over batches;
    * ``"predicted"``: :math:`\sigma/\sqrt{m}\cdot\sqrt{(N-m)/(N-1)}` (sampling without
      replacement; ≈ σ/√m when m ≪ N);
    * ``"std_ratio_lo"``, ``"std_ratio_hi"``: 10th and 90th percentiles of
      :math:`\sigma_B/\sigma` (0 for m = 1: one value has no spread).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    N = v.size
    if max(batch_sizes) > N or min(batch_sizes) < 1:
        raise ParameterError(f"batch sizes must lie in 1..{N}, got {list(batch_sizes)}")
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_batches, N)), axis=1)[:, : max(batch_sizes)]  # random prefixes
    sigma = v.std()
    res = {k: np.zeros(len(batch_sizes)) for k in ("mean_spread", "predicted", "std_ratio_lo", "std_ratio_hi")}
    for k, m in enumerate(batch_sizes):
        batch = v[order[:, :m]]
        res["mean_spread"][k] = batch.mean(axis=1).std()
        res["predicted"][k] = sigma / np.sqrt(m) * np.sqrt((N - m) / (N - 1))
        ratio = batch.std(axis=1) / sigma
        res["std_ratio_lo"][k], res["std_ratio_hi"][k] = np.percentile(ratio, [10, 90])
    return res


def normalized_value_spread(
    values: ArrayLike,
    index: int,
    batch_sizes: Sequence[int],
    n_batches: int = 500,
    eps: float = EPS,
    seed: int = 0,
) -> tuple[float, list[F64]]:
    r"""The normalized value x̂ of one example, in many random batches of each size.

    Example ``index`` is put in ``n_batches`` batches of size m with m − 1 random others.
    Returns the population value :math:`(x - \mu)/\sqrt{\sigma^2 + \epsilon}` (what BN
    would output with the whole set as its batch) and, per m, the array of x̂ it gets.
    For m = 1, x̂ = 0 always; for m = 2, x̂ ≈ ±1 whatever x is.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    others = np.delete(np.arange(v.size), index)
    population = float((v[index] - v.mean()) / np.sqrt(v.var() + eps))
    spreads = []
    for m in batch_sizes:
        xs = np.zeros(n_batches)
        for b in range(n_batches):
            batch = np.concatenate(([v[index]], v[rng.choice(others, m - 1, replace=False)]))
            xs[b] = (batch[0] - batch.mean()) / np.sqrt(batch.var() + eps)
        spreads.append(xs)
    return population, spreads


# ----------------------------------------------------------------------------- learning regimes


def softmax_regression_step(
    W: F64, b: F64, x: F64, y: NDArray[np.int64]
) -> tuple[float, F64, F64]:
    r"""Mean cross-entropy of softmax regression ``softmax(xW + b)`` and its gradients.

    Shapes: W ``(F, K)``, b ``(K,)``, x ``(m, F)``, y ``(m,)`` int labels.
    Returns ``(loss, dW, db)``.
    """
    z = x @ W + b
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(-np.log(p[rows, y]).mean())
    p[rows, y] -= 1.0
    p /= len(y)
    return loss, x.T @ p, p.sum(axis=0)


@dataclass
class RegimeResult:
    """One learning regime with its best learning rate (:func:`learning_regimes`)."""

    name: str
    batch_size: int
    lr: float
    updates_per_epoch: int
    train_loss: F64
    """Training-set loss after each epoch (index 0 = before training)."""
    test_acc: F64
    """Test accuracy after each epoch (index 0 = before training)."""
    updates: F64 = field(default_factory=lambda: np.zeros(0))
    """Update counts (1, 2, 4, ... and each epoch's end) at which ``update_loss`` was taken."""
    update_loss: F64 = field(default_factory=lambda: np.zeros(0))
    """Training-set loss after that many updates."""
    all_lrs: dict[float, float] = field(default_factory=dict)
    """Learning rate -> training loss averaged over the epochs, for every rate tried."""


def _train_softmax(
    x: F64, y: NDArray[np.int64], x_test: F64, y_test: NDArray[np.int64],
    batch_size: int, lr: float, epochs: int, seed: int,
) -> tuple[F64, F64, F64, F64]:
    """Epoch losses, epoch test accuracies, and the loss after 1, 2, 4, ... updates."""
    rng = np.random.default_rng(seed)
    n, n_feat = x.shape
    k = int(y.max()) + 1
    onehot = np.eye(k)[y]
    W, b = np.zeros((n_feat, k)), np.zeros(k)
    losses, accs = np.zeros(epochs + 1), np.zeros(epochs + 1)
    updates, update_losses = [], []
    per_epoch = n // batch_size
    checkpoints = {2**j for j in range(40) if 2**j <= per_epoch * epochs} | {
        e * per_epoch for e in range(1, epochs + 1)
    }

    def loss_now() -> float:
        return softmax_regression_step(W, b, x, y)[0]

    losses[0] = loss_now()
    accs[0] = float(((x_test @ W + b).argmax(axis=1) == y_test).mean())
    count = 0
    for e in range(1, epochs + 1):
        perm = rng.permutation(n)
        xs, ts = x[perm], onehot[perm]  # one gather per epoch, then contiguous slices
        for start in range(0, per_epoch * batch_size, batch_size):
            xb, tb = xs[start : start + batch_size], ts[start : start + batch_size]
            z = xb @ W + b
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p -= tb  # softmax − one-hot = d(cross-entropy)/dz, summed over the batch
            p *= lr / batch_size
            W -= xb.T @ p
            b -= p.sum(axis=0)
            count += 1
            if count in checkpoints:
                updates.append(count)
                update_losses.append(loss_now())
        losses[e] = loss_now()
        accs[e] = float(((x_test @ W + b).argmax(axis=1) == y_test).mean())
    return losses, accs, np.array(updates, dtype=np.float64), np.array(update_losses)


def learning_regimes(
    x: ArrayLike,
    y: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    batch_sizes: dict[str, int | None],
    lrs: Sequence[float] | dict[str, Sequence[float]] = (0.1, 0.5, 2.0),
    epochs: int = 4,
    seed: int = 0,
) -> list[RegimeResult]:
    """Full-batch, mini-batch and online gradient descent on softmax regression, compared per epoch.

    ``batch_sizes`` maps a regime's name to its batch size (``None`` = the whole training
    set).  Each regime sees the data ``epochs`` times (shuffled each epoch, a last short
    batch dropped) with each learning rate in ``lrs``; the rate with the lowest final
    training loss is kept, so no regime loses because of a badly chosen rate.
    """
    x64, xt64 = np.asarray(x, np.float64), np.asarray(x_test, np.float64)
    yi, yti = np.asarray(y, np.int64), np.asarray(y_test, np.int64)
    results = []
    for name, bs in batch_sizes.items():
        m = len(x64) if bs is None else int(bs)
        grid = lrs[name] if isinstance(lrs, dict) else lrs
        runs = {lr: _train_softmax(x64, yi, xt64, yti, m, lr, epochs, seed) for lr in grid}
        best = min(runs, key=lambda lr: float(np.mean(runs[lr][0][1:])))
        results.append(RegimeResult(
            name=name, batch_size=m, lr=best, updates_per_epoch=len(x64) // m,
            train_loss=runs[best][0], test_acc=runs[best][1],
            updates=runs[best][2], update_loss=runs[best][3],
            all_lrs={lr: float(np.mean(r[0][1:])) for lr, r in runs.items()},
        ))
    return results


# ----------------------------------------------------------------------------- timing


def time_backwards(
    n: int = 256, d: int = 1024, repeats: int = 25, seed: int = 0,
    forward: Callable[..., Any] | None = None,
    backwards: dict[str, Callable[..., Any]] | None = None,
) -> dict[str, float]:
    """Fastest wall-clock seconds of one backward pass at ``(n, d)`` float32, over ``repeats`` runs.

    The minimum, not the median: other work on the machine only ever adds time, so the
    fastest run is the best estimate of what the code itself costs.

    The ``backwards`` (name -> ``backward(dout, cache)``, e.g. the notebook's step-by-step
    graph and closed form; each reads the cache of its own forward, :func:`forward_for`
    with the student's ``forward``) against torch's autograd
    through ``F.batch_norm`` (its native kernel).  Default: the torch stand-ins of
    :mod:`bncourse.oracle`.  Only the backward is timed; the forward runs once.
    Machine-dependent: for a table, never for a test.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 - the conventional name

    forward = forward or oracle.batchnorm_forward
    backwards = backwards or {"stand-in (torch autograd)": oracle.batchnorm_backward}
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    gamma, beta = np.ones(d, np.float32), np.zeros(d, np.float32)
    dout = rng.standard_normal((n, d)).astype(np.float32)
    caches = {name: forward_for(b, forward)(x, gamma, beta)[1] for name, b in backwards.items()}

    xt = torch.tensor(x, requires_grad=True)
    gt, bt = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    out = F.batch_norm(xt, None, None, gt, bt, training=True)
    dout_t = torch.tensor(dout)

    def torch_backward() -> None:
        xt.grad = gt.grad = bt.grad = None
        out.backward(dout_t, retain_graph=True)

    candidates: dict[str, Callable[[], object]] = {
        name: (lambda b=b, c=caches[name]: b(dout, c)) for name, b in backwards.items()  # type: ignore[misc]
    }
    candidates["torch autograd (F.batch_norm)"] = torch_backward
    timings = {}
    for name, fn in candidates.items():
        fn()  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        timings[name] = float(np.min(times))
    return timings


# ----------------------------------------------------------------------------- figures


def draw_batchnorm_graph() -> Figure:
    """The computational graph of the BN forward pass, with the backward rules on its edges.

    Black: the forward nodes (left to right).  Red, numbered: the gradient each edge
    carries back, in the order the backward pass computes them (1 first).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, use_style

    use_style()
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 6.0), layout="constrained")
    ax.set_xlim(-0.3, 14.5)
    ax.set_ylim(-0.7, 5.3)
    ax.axis("off")
    nodes = {
        "x": (0.5, 2.0, r"$x$"),
        "mu": (2.6, 4.4, r"$\mu = \frac{1}{m}\sum_i x_i$"),
        "xc": (4.4, 2.0, r"$x_c = x - \mu$"),
        "var": (6.6, 4.4, r"$\sigma^2 = \frac{1}{m}\sum_i x_{c,i}^2$"),
        "s": (10.2, 4.4, r"$s = (\sigma^2+\epsilon)^{-1/2}$"),
        "xhat": (8.4, 2.0, r"$\hat x = x_c \cdot s$"),
        "y": (11.5, 2.0, r"$y = \gamma\hat x + \beta$"),
        "gamma": (10.6, -0.1, r"$\gamma$"),
        "beta": (12.4, -0.1, r"$\beta$"),
        "L": (13.8, 2.0, r"$L$"),
    }
    boxes = {}
    for key, (cx, cy, label) in nodes.items():
        param = key in ("gamma", "beta")
        boxes[key] = ax.text(
            cx, cy, label, ha="center", va="center", zorder=3,
            bbox={"boxstyle": "round,pad=0.5", "fc": "#fff7e6" if param else "#eef3fb", "ec": "0.35", "lw": 1.2},
        )

    def edge(a: str, b: str, rule: str, pos: tuple[float, float], rad: float = 0.0) -> None:
        (x0, y0, _), (x1, y1, _) = nodes[a], nodes[b]
        ax.add_patch(FancyArrowPatch(
            (x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=16, lw=1.4, color="0.2",
            patchA=boxes[a].get_bbox_patch(), patchB=boxes[b].get_bbox_patch(),
            # Above the boxes (zorder 3): each box's patch is then laid out, at the dpi being drawn
            # (2× for retina), before the arrow is clipped to it.  Below, it would clip to stale boxes.
            shrinkA=2, shrinkB=2, connectionstyle=f"arc3,rad={rad}", zorder=3.5,
        ))
        ax.text(*pos, rule, ha="center", va="center", color=COLORS["bn"],
                bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1.0}, zorder=4)

    edge("y", "L", r"$dy$", (12.95, 2.4))
    edge("gamma", "y", r"1: $d\gamma=\sum_i dy_i\hat x_i$", (9.0, 0.55))
    edge("beta", "y", r"1: $d\beta=\sum_i dy_i$", (13.3, 0.75))
    edge("xhat", "y", r"2: $d\hat x=\gamma\,dy$", (10.0, 2.4))
    edge("s", "xhat", r"3: $ds=\sum_i d\hat x_i\, x_{c,i}$", (10.4, 3.2))
    edge("xc", "xhat", r"3: $dx_c=s\,d\hat x$", (6.4, 1.6))
    edge("var", "s", r"4: $d\sigma^2=-\frac{1}{2}s^3\, ds$", (8.45, 4.95))
    edge("xc", "var", r"5: $dx_c$ += $\frac{2}{m}x_c\,d\sigma^2$", (6.95, 3.0))
    edge("mu", "xc", r"6: $d\mu=-\sum_i dx_{c,i}$", (4.45, 3.65))
    edge("x", "xc", r"6: $dx = dx_c$", (2.4, 1.6))
    edge("x", "mu", r"7: $dx$ += $d\mu/m$", (0.95, 3.45))
    ax.set_title("Batch norm's graph: forward in black, backward in red (1 = computed first)")
    return fig


def plot_jacobians(J_true: ArrayLike, J_const: ArrayLike) -> Figure:
    """Heat maps of the true Jacobian and the constant-statistics one (same colour scale)."""
    from bncourse.course.plots import new_figure

    A, B = jacobian_matrix(J_true), jacobian_matrix(J_const)
    n, d = np.asarray(J_true).shape[:2]
    vmax = float(max(np.abs(A).max(), np.abs(B).max()))
    fig, axes = new_figure(ncols=2, width=12.5, height=5.4)
    for ax, M, title in zip(axes, (A, B), (r"true $\partial y_i/\partial x_j$",
                                           r"$\mu$, $\sigma^2$ treated as constants"), strict=True):
        im = ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title)
        ticks = [k * n + (n - 1) / 2 for k in range(d)]
        ax.set_xticks(ticks, [f"feature {k}" for k in range(d)])
        ax.set_yticks(ticks, [f"feature {k}" for k in range(d)], rotation=90, va="center")
        for k in range(1, d):
            ax.axhline(k * n - 0.5, color="0.5", lw=0.8)
            ax.axvline(k * n - 0.5, color="0.5", lw=0.8)
        ax.set_xlabel(f"input $x_j$ ({n} examples per feature)")
        ax.set_ylabel(f"output $y_i$ ({n} examples per feature)")
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.85, label=r"$\partial y_i / \partial x_j$")
    fig.suptitle(f"Jacobian of batch norm for a batch of {n} examples × {d} features")
    return fig


def plot_bias_drift(correct: BiasDrift, constant: BiasDrift) -> Figure:
    """Loss and ‖b‖ over training, with the true and the constant-statistics gradient."""
    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, new_figure

    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=4.8)
    steps = np.arange(1, len(correct.loss) + 1)
    for run, label, color in ((correct, "true gradient", COLORS["bn"]),
                              (constant, r"$\mu,\sigma^2$ treated as constants", COLORS["no_bn"])):
        axes[0].plot(steps, run.loss, label=label, color=color)
        axes[1].plot(steps, run.bias_norm, label=label, color=color)
    axes[0].set(title="training loss", xlabel="gradient step", ylabel=r"loss $\frac{1}{2}\,\mathrm{mean}\,\|y-t\|^2$")
    axes[1].set(title=r"size of the bias $b$ before BN", xlabel="gradient step", ylabel=r"$\|b\|_2$")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)  # one legend, off both panels' data
    return fig


def plot_finite_differences(hs: Sequence[float], errors: dict[str, dict[str, F64]]) -> Figure:
    """Relative error of finite-difference gradients vs h (log-log), one line per method and dtype."""
    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, new_figure

    fig, ax = new_figure(width=MAX_WIDTH_IN, height=5.0)
    colors = {"float64": COLORS["bn"], "float32": COLORS["gn"]}
    for dtype, errs in errors.items():
        ax.loglog(hs, errs["centered"], "o-", color=colors.get(dtype), label=f"centered, {dtype}")
        ax.loglog(hs, errs["forward"], "s--", color=colors.get(dtype), label=f"forward, {dtype}")
    ax.axvline(1e-5, color="0.5", lw=1, ls=":")
    ax.set(title="Finite-difference gradient of batch norm vs the exact dx",
           xlabel="step h", ylabel=r"relative error $\|g_{num}-dx\| / \|dx\|$")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def plot_batch_spread(
    batch_sizes: Sequence[int],
    spread: dict[str, F64],
    population_value: float,
    value_spreads: Sequence[F64],
    value_batch_sizes: Sequence[int],
) -> Figure:
    """Left: spread of μ_B vs m against σ/√m; right: x̂ of one example across batches."""
    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, legend_below, new_figure

    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.8)
    ms = np.asarray(batch_sizes, dtype=float)
    ax = axes[0]
    ax.loglog(ms, spread["mean_spread"], "o", color=COLORS["bn"], label=r"measured std of $\mu_B$")
    ax.loglog(ms, spread["predicted"], "-", color="0.3",
              label=r"$\frac{\sigma}{\sqrt{m}}\sqrt{\frac{N-m}{N-1}}$")
    ax.set(title=r"How far the batch mean $\mu_B$ strays from $\mu$",
           xlabel="batch size m", ylabel=r"std of $\mu_B$ over batches")
    ax.legend()
    ax = axes[1]
    # A violin needs a spread: for m = 1 every x̂ is exactly 0, so draw that slot as a point.
    positions = np.arange(1, len(value_batch_sizes) + 1)
    spread_pos = [p for p, v in zip(positions, value_spreads, strict=True) if np.ptp(v) > 0]
    spread_vals = [v for v in value_spreads if np.ptp(v) > 0]
    if spread_vals:
        parts = ax.violinplot(spread_vals, positions=spread_pos, showextrema=False, widths=0.8)
        for body in parts["bodies"]:
            body.set_facecolor(COLORS["bn"])
            body.set_alpha(0.5)
    for p, v in zip(positions, value_spreads, strict=True):
        if np.ptp(v) == 0:
            ax.plot([p], [v[0]], "o", color=COLORS["bn"], ms=6)
            ax.annotate(r"$\hat x = 0$ always", (p, v[0]), xytext=(8, -26), textcoords="offset points")
    bound = np.sqrt(np.asarray(value_batch_sizes, dtype=float) - 1.0)
    ax.hlines(np.concatenate([bound, -bound]), np.concatenate([positions, positions]) - 0.4,
              np.concatenate([positions, positions]) + 0.4, colors="0.4", lw=1.2,
              label=r"bound $|\hat x| \leq \sqrt{m-1}$")
    ax.axhline(population_value, color="0.2", ls="--", label=r"$\hat x$ with the whole training set")
    # The bound grows like √m; keep the axis on the data (larger bounds run off it).
    lim = 1.3 * max(1.0, abs(population_value), *(float(np.abs(v).max()) for v in value_spreads))
    ax.set_ylim(-lim, lim)
    ax.set_xticks(positions, [str(m) for m in value_batch_sizes])
    ax.set(title=r"$\hat x$ of one fixed example in random batches",
           xlabel="batch size m", ylabel=r"normalized value $\hat x$")
    legend_below(ax)
    return fig


def plot_learning_regimes(results: Sequence[RegimeResult]) -> Figure:
    """Training loss per epoch and per update for full-batch, mini-batch and online learning."""
    from bncourse.course.plots import COLORS, MAX_WIDTH_IN, new_figure

    palette = [COLORS["no_bn"], COLORS["bn"], COLORS["gn"], COLORS["ln"]]
    fig, axes = new_figure(ncols=2, width=MAX_WIDTH_IN, height=5.0)
    for r, color in zip(results, palette, strict=False):
        epochs = np.arange(len(r.train_loss))
        label = f"{r.name} (m={r.batch_size}, lr={r.lr:g})"
        axes[0].plot(epochs, r.train_loss, "o-", color=color, label=label)
        axes[1].loglog(r.updates, r.update_loss, ".-", color=color, label=label)
    axes[0].set(title="progress per pass over the data", xlabel="epoch", ylabel="training loss (cross-entropy)")
    axes[1].set(title="progress per parameter update", xlabel="number of parameter updates (log scale)",
                ylabel="training loss (log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return fig
