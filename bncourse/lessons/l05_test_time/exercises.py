"""Exercises of notebook 05 (test time): ``population_stats``, ``batchnorm_inference``, ``BatchNorm1d``.

* ``population_stats(batches) -> (mean, var)``: the whole training set's mean and unbiased
  variance from a list of ``(N_b, D)`` batches (solution:
  :func:`bncourse.lessons.l05_test_time.solutions.population_stats`).
* ``batchnorm_inference(x, gamma, beta, running_mean, running_var, eps)``: BN with the
  running statistics (solution: :func:`bncourse.reference.batchnorm_inference`, re-exported
  by :mod:`bncourse.lessons.l05_test_time.solutions`).
* ``BatchNorm1d``: a NumPy class whose buffers follow ``torch.nn.BatchNorm1d`` exactly
  (solution: :class:`bncourse.reference.BatchNorm1d`, re-exported the same way).  The
  check builds the module, runs a fixed sequence of training batches of different sizes,
  recording the outputs and the buffers after every step (and before the first), then
  evaluation-mode outputs on a test batch and on a single example.

Every known mistake below wraps a small wrong implementation from
:mod:`bncourse.lessons.l05_test_time.mistakes`; a student's outputs matching it gives the
diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bncourse.grading.cases import describe, tolerance
from bncourse.grading.registry import (
    NUMPY_FORBIDDEN,
    Case,
    ContractError,
    Exercise,
    LessonPart,
    Mistake,
    register,
)

mistakes = LessonPart(__name__, "mistakes")
solutions = LessonPart(__name__, "solutions")

NOTEBOOK = "05_test_time"

# ---------------------------------------------------------------------------- population_stats


def _drifting_batches(
    rng: np.random.Generator, sizes: list[int], D: int, dtype: Any, loc: float = 0.0, scale: float = 1.0
) -> np.ndarray:
    """Rows of batches whose means drift from batch to batch (as during training)."""
    parts = []
    for i, n in enumerate(sizes):
        shift = loc + scale * (0.8 * i + 0.5 * rng.standard_normal(D))
        parts.append(shift + scale * rng.uniform(0.5, 2.0, D) * rng.standard_normal((n, D)))
    return np.concatenate(parts).astype(dtype)


def _pop_cases() -> list[Case]:
    rng = np.random.default_rng(500)
    specs = [
        ("float64 3 batches (60, 60, 37)x5", [60, 60, 37], 5, np.float64, 0.0, 1.0),
        ("float32 4 batches (16, 16, 16, 9)x3", [16, 16, 16, 9], 3, np.float32, 0.0, 1.0),
        ("float64 unequal sizes (2, 9, 3, 20)x4", [2, 9, 3, 20], 4, np.float64, 0.0, 1.0),
        ("float64 D=1, 5 batches of 2", [2, 2, 2, 2, 2], 1, np.float64, 0.0, 1.0),
        ("float64 one batch (7)x3", [7], 3, np.float64, 0.0, 1.0),
        ("float32 large mean 1e3 (32, 32, 32)x4", [32, 32, 32], 4, np.float32, 1e3, 1.0),
        ("float64 large scale 1e4 (10, 30)x2", [10, 30], 2, np.float64, 5.0, 1e4),
    ]
    cases = []
    for name, sizes, D, dt, loc, scale in specs:
        x = _drifting_batches(rng, sizes, D, dt, loc, scale)
        cases.append(Case(name, {"x": x, "sizes": tuple(sizes)}, tolerance(dt)))
    return cases


def _split(x: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    return np.split(x, np.cumsum(sizes)[:-1])  # views: an in-place change shows up in x


def _call_pop(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    result = fn(_split(inputs["x"], inputs["sizes"]))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ContractError(f"population_stats must return a tuple (mean, var), got {describe(result)}")
    return {"mean": result[0], "var": result[1]}


def _pop_diagnose(case: Case, got: dict[str, np.ndarray], exp: dict[str, np.ndarray]) -> str | None:
    if "large mean" not in case.name or "mean" not in got or "var" not in got:
        return None
    mean_ok = np.allclose(got["mean"], exp["mean"], rtol=case.tolerance[0], atol=case.tolerance[1])
    var_ok = np.allclose(got["var"], exp["var"], rtol=case.tolerance[0], atol=case.tolerance[1])
    if mean_ok and not var_ok:
        return (
            "Your mean is right but the variance is off when the mean (1000) is much larger than the "
            "spread: E[x²] − E[x]² cancels catastrophically in float32. Accumulate in float64 "
            "(b.astype(np.float64)) or sum the squared deviations (x − μ)² in a second pass."
        )
    return None


register(
    Exercise(
        id="population_stats",
        notebook=NOTEBOOK,
        solution=solutions.population_stats,
        cases=_pop_cases,
        call=_call_pop,
        mistakes=(
            Mistake(
                "mean of batch variances",
                "You averaged the batches' variances: that ignores how much the batch means differ "
                "(law of total variance: total = mean of within-batch variances + variance of the "
                "batch means). Take the squared deviations of every row from the overall mean.",
                mistakes.pop_mean_of_batch_vars,
            ),
            Mistake(
                "plain mean of batch variances",
                "You averaged the batches' variances: that ignores how much the batch means differ "
                "(law of total variance: total = mean of within-batch variances + variance of the "
                "batch means). Take the squared deviations of every row from the overall mean.",
                mistakes.pop_plain_mean_of_batch_vars,
                outputs=("var",),
            ),
            Mistake(
                "mean of biased batch variances",
                "You averaged the batches' (biased) variances: that ignores how much the batch means "
                "differ (law of total variance). Take the squared deviations of every row from the "
                "overall mean and divide by N − 1.",
                mistakes.pop_mean_of_biased_vars,
                outputs=("var",),
            ),
            Mistake(
                "mean of batch stds",
                "You averaged the batches' standard deviations and squared the result: neither "
                "stds nor variances of batches average to the whole set's variance. Take the squared "
                "deviations of every row from the overall mean and divide by N − 1.",
                mistakes.pop_mean_of_stds,
                outputs=("var",),
            ),
            Mistake(
                "unweighted batch means",
                "Your mean gives every batch the same weight, but batches have different sizes: "
                "weight each batch mean by its number of rows (or sum all rows and divide by the "
                "total N).",
                mistakes.pop_unweighted_means,
                outputs=("mean",),
            ),
            Mistake(
                "biased variance",
                "Your variance divides by N; the population statistics here (like torch's "
                "running_var) use the unbiased variance: divide by N − 1.",
                mistakes.pop_biased,
            ),
            Mistake(
                "last batch only",
                "You returned the statistics of the last batch only; use every row of every batch.",
                mistakes.pop_last_batch,
            ),
            Mistake(
                "moving average",
                "That is PyTorch's moving average (momentum 0.1) of the batch statistics, an "
                "estimate; the exercise asks for the exact statistics of all rows together.",
                mistakes.pop_ema,
            ),
        ),
        diagnose=_pop_diagnose,
        forbidden=NUMPY_FORBIDDEN,
        hints=(
            "The batches are only a way of storing the rows: the statistics are those of all rows "
            "stacked together (N = sum of the batch sizes), not an average of per-batch statistics. "
            "Two passes work: the mean first, then the squared deviations from it.",
            "Accumulate per-feature sums over the batches in float64 (b.sum(axis=0, dtype=np.float64)): "
            "mean = total sum / N; var = (sum over all rows of (row - mean)**2) / (N - 1), the unbiased "
            "variance like torch's running_var. Cast both back to the batches' dtype at the end.",
            "n = sum(b.shape[0] for b in batches); dtype = batches[0].dtype; mean = sum(b.sum(axis=0, dtype=np.float64) for b in batches) / n; "
            "var = sum(((b.astype(np.float64) - mean) ** 2).sum(axis=0) for b in batches) / (n - 1); "
            "return mean.astype(dtype), var.astype(dtype)",
        ),
    )
)

# ---------------------------------------------------------------------------- bn_inference


def _inf_cases() -> list[Case]:
    rng = np.random.default_rng(501)
    specs = [
        ("float64 x(6, 4)", 6, 4, np.float64, 0.0, 1.0, 1e-5, False),
        ("float32 x(9, 5)", 9, 5, np.float32, 0.0, 1.0, 1e-5, False),
        ("float64 one example x(1, 3)", 1, 3, np.float64, 0.0, 1.0, 1e-5, False),
        ("float64 x(2, 1)", 2, 1, np.float64, 0.0, 1.0, 1e-5, False),
        ("float64 large mean/scale x(5, 3)", 5, 3, np.float64, 100.0, 30.0, 1e-5, False),
        ("float64 tiny running_var x(4, 3)", 4, 3, np.float64, 0.0, 1.0, 1e-5, True),
        ("float32 eps=1e-3 x(3, 7)", 3, 7, np.float32, 0.0, 1.0, 1e-3, False),
    ]
    cases = []
    for name, N, D, dt, loc, scale, eps, tiny in specs:
        running_mean = loc + scale * rng.standard_normal(D)
        running_var = (scale * rng.uniform(0.5, 2.0, D)) ** 2
        if tiny:
            running_var = rng.uniform(1e-8, 1e-7, D)
        # test examples from a slightly different distribution than the running stats
        x = running_mean + 0.3 * scale + np.sqrt(running_var) * 1.5 * rng.standard_normal((N, D))
        gamma = rng.uniform(0.5, 2.0, D)
        beta = rng.standard_normal(D)
        inputs = {
            "x": x.astype(dt),
            "gamma": gamma.astype(dt),
            "beta": beta.astype(dt),
            "running_mean": running_mean.astype(dt),
            "running_var": running_var.astype(dt),
            "eps": eps,
        }
        cases.append(Case(name, inputs, tolerance(dt)))
    return cases


def _call_inf(fn: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    out = fn(inputs["x"], inputs["gamma"], inputs["beta"], inputs["running_mean"], inputs["running_var"],
             inputs["eps"])
    if isinstance(out, tuple):
        raise ContractError(
            f"batchnorm_inference must return only the output array, got a tuple of length {len(out)}"
        )
    return {"out": out}


register(
    Exercise(
        id="batchnorm_inference",
        notebook=NOTEBOOK,
        solution=solutions.batchnorm_inference,
        cases=_inf_cases,
        call=_call_inf,
        forbidden=NUMPY_FORBIDDEN,
        hints=(
            "Start from the training-mode formula of section 1 and ask which of its quantities a "
            "single test example cannot provide: replace exactly those by the stored constants.",
            "mu_B becomes running_mean and sigma_B**2 becomes running_var; everything else stays: "
            "eps is added to the variance before the square root, then gamma scales and beta shifts. "
            "Every row is normalized on its own, so N = 1 works.",
            "out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta",
        ),
        mistakes=(
            Mistake(
                "batch statistics",
                "You normalized with the test batch's own mean and variance; at test time use "
                "running_mean and running_var (a single example has no batch statistics).",
                mistakes.inf_batch_stats,
            ),
            Mistake(
                "missing eps",
                "You left out ε: divide by np.sqrt(running_var + eps), not np.sqrt(running_var).",
                mistakes.inf_no_eps,
            ),
            Mistake(
                "no square root",
                "running_var is a variance: divide by its square root, np.sqrt(running_var + eps), "
                "not by running_var + eps.",
                mistakes.inf_no_sqrt,
            ),
            Mistake(
                "eps outside the square root",
                "ε belongs inside the square root: np.sqrt(running_var + eps), not "
                "np.sqrt(running_var) + eps.",
                mistakes.inf_eps_outside,
            ),
            Mistake(
                "no gamma/beta",
                "You returned x̂ without the learned scale and shift: y = gamma * x̂ + beta.",
                mistakes.inf_no_affine,
            ),
        ),
    )
)

# ---------------------------------------------------------------------------- bn_module


def _module_cases() -> list[Case]:
    rng = np.random.default_rng(502)
    specs: list[tuple[str, list[int], int, Any, dict[str, Any], float, float, bool]] = [
        ("float64 default args, 6 batches (8, 5, 12, 3, 7, 2)x4", [8, 5, 12, 3, 7, 2], 4, np.float64, {},
         0.0, 1.0, False),
        ("float32 6 batches (10, 6, 4, 9, 5, 7)x3", [10, 6, 4, 9, 5, 7], 3, np.float32,
         {"eps": 1e-5, "momentum": 0.1}, 0.0, 1.0, False),
        ("float64 momentum=None, 5 batches x3", [6, 4, 9, 2, 5], 3, np.float64,
         {"eps": 1e-5, "momentum": None}, 0.0, 1.0, False),
        ("float64 momentum=0.3, D=1, 5 batches of 2-4", [2, 2, 3, 2, 4], 1, np.float64,
         {"eps": 1e-5, "momentum": 0.3}, 0.0, 1.0, False),
        ("float64 large mean/scale, 5 batches x2", [12, 8, 10, 6, 9], 2, np.float64,
         {"eps": 1e-5, "momentum": 0.1}, 50.0, 10.0, False),
        ("float64 eps=1e-3, tiny variance, 5 batches x3", [5, 7, 4, 6, 3], 3, np.float64,
         {"eps": 1e-3, "momentum": 0.05}, 0.0, 1.0, True),
    ]
    cases = []
    for name, sizes, D, dt, kwargs, loc, scale, tiny in specs:
        x = _drifting_batches(rng, sizes, D, np.float64, loc, scale)
        if tiny:
            x[:, 0] = 0.3 + 1e-3 * rng.standard_normal(len(x))
        x_test = loc + scale * (2.0 + 1.5 * rng.standard_normal((5, D)))
        inputs = {
            "x": x.astype(dt),
            "sizes": tuple(sizes),
            "x_test": x_test.astype(dt),
            "gamma": rng.uniform(0.5, 2.0, D),
            "beta": rng.standard_normal(D),
            "kwargs": kwargs,
        }
        cases.append(Case(name, inputs, tolerance(dt)))
    return cases


_BUFFERS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _buffer(bn: Any, name: str) -> np.ndarray:
    value = getattr(bn, name, None)
    if value is None:
        raise ContractError(f"BatchNorm1d has no attribute `{name}` (or it is None); set it in __init__.")
    return np.array(value, dtype=np.float64)


def _call_module(cls: Callable[..., Any], inputs: Mapping[str, Any], ns: Mapping[str, Any]) -> dict[str, Any]:
    D = inputs["x"].shape[1]
    bn = cls(D, **inputs["kwargs"])
    for name in _BUFFERS:
        if not hasattr(bn, name):
            raise ContractError(f"BatchNorm1d has no attribute `{name}`; set it in __init__.")
    rms, rvs, counts = [_buffer(bn, "running_mean")], [_buffer(bn, "running_var")], [
        _buffer(bn, "num_batches_tracked")
    ]
    bn.weight = np.array(inputs["gamma"], dtype=np.float64)
    bn.bias = np.array(inputs["beta"], dtype=np.float64)
    bn.train()
    outs = []
    for xb in _split(inputs["x"], inputs["sizes"]):
        outs.append(bn.forward(xb))
        rms.append(_buffer(bn, "running_mean"))
        rvs.append(_buffer(bn, "running_var"))
        counts.append(_buffer(bn, "num_batches_tracked"))
    for i, o in enumerate(outs):
        if o is None:
            raise ContractError("BatchNorm1d.forward returned None in training mode: did you forget `return`?")
        if np.shape(o) != (inputs["sizes"][i], D):
            raise ContractError(
                f"forward in training mode returned shape {np.shape(o)} for an input of shape "
                f"{(inputs['sizes'][i], D)}"
            )
    bn.eval()
    x_test = inputs["x_test"]
    eval_out = bn.forward(x_test)
    eval_single = bn.forward(x_test[:1])
    after_eval = np.concatenate([_buffer(bn, "running_mean"), _buffer(bn, "running_var"),
                                 _buffer(bn, "num_batches_tracked").reshape(1)])
    return {
        "train_out": np.concatenate([np.asarray(o) for o in outs]),
        "running_mean": np.stack(rms),
        "running_var": np.stack(rvs),
        "num_batches_tracked": np.array(counts),
        "eval_out": eval_out,
        "eval_single": eval_single,
        "buffers_after_eval": after_eval,
    }


_EVAL_UPDATES = (
    "Your module changes its running statistics (or num_batches_tracked) in eval mode; only "
    "training-mode forward passes update them."
)


def _module_diagnose(case: Case, got: dict[str, np.ndarray], exp: dict[str, np.ndarray]) -> str | None:
    """Diagnoses that do not need a matching wrong implementation (checked on the student's own buffers)."""
    try:
        rm, rv, nbt = got["running_mean"], got["running_var"], got["num_batches_tracked"]
        end = np.concatenate([rm[-1], rv[-1], nbt[-1:]])
        if end.shape == got["buffers_after_eval"].shape and not np.allclose(
            got["buffers_after_eval"], end, rtol=1e-12, atol=0.0
        ):
            return _EVAL_UPDATES
    except (KeyError, IndexError, ValueError):
        return None
    return None


register(
    Exercise(
        id="BatchNorm1d",
        notebook=NOTEBOOK,
        solution=solutions.BatchNorm1d,
        cases=_module_cases,
        call=_call_module,
        forbidden=NUMPY_FORBIDDEN,
        hints=(
            "Section 4 lists torch's semantics one by one; turn each bullet into code. In __init__ store "
            "eps and momentum and create the parameters and buffers (weight ones, bias zeros, "
            "running_mean zeros, running_var ones, num_batches_tracked 0). In forward, branch on "
            "self.training.",
            "Training: normalize with the batch mean and the biased variance x.var(axis=0), but put the "
            "unbiased one, x.var(axis=0) * n / (n - 1), into running_var. Count the batch first; with "
            "momentum None the factor is 1 / num_batches_tracked. A batch of one raises an error. "
            "Eval: use the buffers, update nothing.",
            "num_batches_tracked += 1; m = 1 / num_batches_tracked if momentum is None else momentum; "
            "running_mean = (1 - m) * running_mean + m * mu; running_var = (1 - m) * running_var + "
            "m * var * n / (n - 1); out = weight * (x - mu) / np.sqrt(var + eps) + bias, cast to x.dtype.",
        ),
        mistakes=(
            Mistake(
                "momentum on the wrong side",
                "Your running stats weight the new batch by 1 − momentum: PyTorch keeps 1 − momentum "
                "of the OLD value, running = (1 - momentum) * running + momentum * batch_stat "
                "(momentum = 0.1 moves slowly; Keras writes it on the old value).",
                mistakes.bn_momentum_side,
                outputs=("running_mean", "running_var"),
            ),
            Mistake(
                "biased running_var",
                "running_var is updated with the biased batch variance; PyTorch stores the unbiased "
                "one: use x.var(axis=0, ddof=1) in the update (normalize with the biased one).",
                mistakes.bn_biased_running,
                outputs=("running_var",),
            ),
            Mistake(
                "running_var starts at zero",
                "running_var must start at ones (running_mean at zeros), as in PyTorch: "
                "np.ones(num_features).",
                mistakes.bn_var_init_zero,
                outputs=("running_var",),
            ),
            Mistake(
                "eval uses batch statistics",
                "In eval mode your module still normalizes with the batch's statistics; after "
                ".eval() use running_mean and running_var (and do not update them).",
                mistakes.bn_eval_batch_stats,
                outputs=("eval_out",),
            ),
            Mistake(
                "num_batches_tracked not incremented",
                "num_batches_tracked must go up by 1 on every training-mode forward pass "
                "(and stay put in eval mode).",
                mistakes.bn_no_count,
                outputs=("num_batches_tracked",),
            ),
            Mistake(
                "no update in train mode",
                "Your running_mean/running_var never change: every training-mode forward must "
                "update them, running = (1 - momentum) * running + momentum * batch_stat.",
                mistakes.bn_no_update,
                outputs=("running_mean", "running_var"),
            ),
            Mistake(
                "cumulative average off by one",
                "With momentum=None the factor is 1 / num_batches_tracked AFTER incrementing the "
                "counter, so the first batch gets weight 1 and running = average of all batch stats.",
                mistakes.bn_cumulative_off_by_one,
            ),
            Mistake(
                "eval without eps",
                "In eval mode divide by np.sqrt(running_var + eps): ε is added there too.",
                mistakes.bn_eval_no_eps,
            ),
            Mistake(
                "unbiased variance to normalize",
                "In training mode normalize with the biased batch variance (divide by N, "
                "x.var(axis=0)); only the running_var update uses the unbiased one.",
                mistakes.bn_unbiased_normalize,
                outputs=("train_out",),
            ),
        ),
        diagnose=_module_diagnose,
    )
)
