"""Mutants of notebook 01's exercises (``standardize``, ``gd_steps_to_converge``).

Written the way a student would write them — loops, keepdims, other formulas —
independently of the ``Mistake`` implementations in bncourse/grading/exercises/scaling.py.
"""

from __future__ import annotations

import numpy as np

# =========================================================================== standardize


def std_test_own_stats(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd[sd <= eps] = 1.0
    mu_t = x_test.mean(axis=0)
    sd_t = x_test.std(axis=0)
    sd_t[sd_t <= eps] = 1.0
    return (x_train - mu) / sd, (x_test - mu_t) / sd_t, mu, sd


def std_pooled(x_train, x_test, eps=1e-8):
    everything = np.vstack([x_train, x_test])
    mu = np.mean(everything, axis=0)
    sd = np.std(everything, axis=0)
    sd = np.where(sd > eps, sd, 1.0)
    return (x_train - mu) / sd, (x_test - mu) / sd, mu, sd


def std_per_example(x_train, x_test, eps=1e-8):
    def rows(x):
        out = np.empty_like(x)
        for i in range(x.shape[0]):
            s = x[i].std()
            out[i] = (x[i] - x[i].mean()) / (s if s > eps else 1.0)
        return out

    return rows(x_train), rows(x_test), x_train.mean(axis=0), x_train.std(axis=0)


def std_global(x_train, x_test, eps=1e-8):
    mu, sd = x_train.mean(), x_train.std()
    d = x_train.shape[1]
    return (x_train - mu) / sd, (x_test - mu) / sd, np.full(d, mu), np.full(d, sd)


def std_ddof1(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0, ddof=1)
    sd = np.where(sd <= eps, 1.0, sd).astype(x_train.dtype)
    return (x_train - mu) / sd, (x_test - mu) / sd, mu, sd


def std_by_variance(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    var = ((x_train - mu) ** 2).mean(axis=0)
    var = np.where(var <= eps, 1.0, var).astype(x_train.dtype)
    return (x_train - mu) / var, (x_test - mu) / var, mu, var


def std_plus_eps(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0) + eps
    return ((x_train - mu) / sd).astype(x_train.dtype), ((x_test - mu) / sd).astype(x_test.dtype), mu, sd.astype(x_train.dtype)


def std_bn_style(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    denom = np.sqrt(x_train.var(axis=0) + eps)
    return ((x_train - mu) / denom).astype(x_train.dtype), ((x_test - mu) / denom).astype(x_test.dtype), mu, denom.astype(x_train.dtype)


def std_nan_for_constants(x_train, x_test, eps=1e-8):
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = x_train.mean(axis=0)
        sd = x_train.std(axis=0)
        return (x_train - mu) / sd, (x_test - mu) / sd, mu, sd


def std_zero_constant_everywhere(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    tr = np.zeros_like(x_train)
    te = np.zeros_like(x_test)
    for j in range(x_train.shape[1]):
        if sd[j] > eps:
            tr[:, j] = (x_train[:, j] - mu[j]) / sd[j]
            te[:, j] = (x_test[:, j] - mu[j]) / sd[j]
        else:
            sd[j] = 1.0
    return tr, te, mu, sd


def std_returns_raw_std(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    safe = sd.copy()
    safe[safe <= eps] = 1
    return (x_train - mu) / safe, (x_test - mu) / safe, mu, sd


def std_keepdims(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0, keepdims=True)
    sd = x_train.std(axis=0, keepdims=True)
    sd[sd <= eps] = 1
    return (x_train - mu) / sd, (x_test - mu) / sd, mu, sd


def std_in_place(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd[sd <= eps] = 1
    x_train -= mu
    x_train /= sd
    return x_train, (x_test - mu) / sd, mu, sd


def std_swapped_stats(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd[sd <= eps] = 1
    return (x_train - mu) / sd, (x_test - mu) / sd, sd, mu


def std_float64_out(x_train, x_test, eps=1e-8):
    xt = np.asarray(x_train, dtype=np.float64)
    mu = xt.mean(axis=0)
    sd = xt.std(axis=0)
    sd[sd <= eps] = 1
    return (xt - mu) / sd, (np.asarray(x_test, dtype=np.float64) - mu) / sd, mu, sd


def std_two_outputs(x_train, x_test, eps=1e-8):
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd[sd <= eps] = 1
    return (x_train - mu) / sd, (x_test - mu) / sd


# --- correct alternatives


def std_loops(x_train, x_test, eps=1e-8):
    n, d = x_train.shape
    mean = np.zeros(d, dtype=x_train.dtype)
    std = np.zeros(d, dtype=x_train.dtype)
    for j in range(d):
        col = x_train[:, j]
        mean[j] = sum(col) / n
        std[j] = np.sqrt(sum((v - mean[j]) ** 2 for v in col) / n)
        if std[j] <= eps:
            std[j] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std, mean, std


def std_formula(x_train, x_test, eps=1e-8):
    mean = np.mean(x_train, axis=0)
    var = np.mean((x_train - mean) ** 2, axis=0)
    std = np.sqrt(var)
    std = np.where(std > eps, std, np.ones_like(std))
    return (x_train - mean) / std, (x_test - mean) / std, mean, std


# =========================================================================== gd_steps_to_converge


def gd_no_bias(x, y, lr, tol=1e-6, max_steps=100_000):
    w = np.zeros(x.shape[1])
    for t in range(max_steps + 1):
        err = x @ w - y
        g = x.T @ err / len(y)
        if np.linalg.norm(g) <= tol:
            return t
        w -= lr * g
    return -1


def gd_norm_without_b(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    w = np.zeros(x.shape[1])
    b = 0.0
    for t in range(max_steps + 1):
        err = x @ w + b - y
        gw = x.T @ err / n
        gb = np.mean(err)
        if np.linalg.norm(gw) <= tol:
            return t
        w = w - lr * gw
        b = b - lr * gb
    return -1


def gd_factor_two(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    xt = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(xt.shape[1])
    for t in range(max_steps + 1):
        g = 2 * xt.T @ (xt @ theta - y) / n  # derivative of mean(r²)
        if np.linalg.norm(g) <= tol:
            return t
        theta = theta - lr * g
    return -1


def gd_sum(x, y, lr, tol=1e-6, max_steps=100_000):
    xt = np.hstack([x, np.ones((len(y), 1))])
    theta = np.zeros(xt.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(max_steps + 1):
            g = xt.T @ (xt @ theta - y)
            if np.linalg.norm(g) <= tol:
                return t
            theta = theta - lr * g
    return -1


def gd_max_abs(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    xt = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(xt.shape[1])
    for t in range(max_steps + 1):
        g = xt.T @ (xt @ theta - y) / n
        if np.max(np.abs(g)) <= tol:
            return t
        theta = theta - lr * g
    return -1


def gd_loss_criterion(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    w = np.zeros(x.shape[1])
    b = 0.0
    for t in range(max_steps + 1):
        r = x @ w + b - y
        if 0.5 * np.mean(r**2) <= tol:
            return t
        w = w - lr * x.T @ r / n
        b = b - lr * r.mean()
    return -1


def gd_update_then_check(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    w = np.zeros(x.shape[1])
    b = 0.0
    for t in range(max_steps):
        r = x @ w + b - y
        w = w - lr * x.T @ r / n
        b = b - lr * r.mean()
        r = x @ w + b - y
        if np.sqrt(np.sum((x.T @ r / n) ** 2) + r.mean() ** 2) <= tol:
            return t  # off by one: t + 1 updates were made
    return -1


def gd_returns_max_steps(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    w = np.zeros(x.shape[1])
    b = 0.0
    step = 0
    while step < max_steps:
        r = x @ w + b - y
        gw, gb = x.T @ r / n, r.mean()
        if np.sqrt(gw @ gw + gb * gb) <= tol:
            break
        w, b = w - lr * gw, b - lr * gb
        step += 1
    return step


def gd_returns_history(x, y, lr, tol=1e-6, max_steps=100_000):
    n = len(y)
    w = np.zeros(x.shape[1])
    b = 0.0
    norms = []
    for t in range(max_steps + 1):
        r = x @ w + b - y
        gw, gb = x.T @ r / n, r.mean()
        norms.append(np.sqrt(gw @ gw + gb * gb))
        if norms[-1] <= tol:
            return t, norms
        w, b = w - lr * gw, b - lr * gb
    return -1, norms


# --- correct alternatives


def gd_augmented(x, y, lr, tol=1e-6, max_steps=100_000):
    n = x.shape[0]
    xt = np.concatenate([x, np.ones((n, 1), dtype=x.dtype)], axis=1).astype(np.float64)
    theta = np.zeros(xt.shape[1])
    g = xt.T @ (xt @ theta - y) / n
    steps = 0
    while np.linalg.norm(g) > tol:
        if steps == max_steps or not np.all(np.isfinite(g)):
            return -1
        theta -= lr * g
        steps += 1
        g = xt.T @ (xt @ theta - y) / n
    return steps


def gd_elementwise(x, y, lr, tol=1e-6, max_steps=100_000):
    n, d = x.shape
    w = [0.0] * d
    b = 0.0
    for t in range(max_steps + 1):
        r = [sum(w[j] * float(x[i, j]) for j in range(d)) + b - float(y[i]) for i in range(n)]
        gw = [sum(r[i] * float(x[i, j]) for i in range(n)) / n for j in range(d)]
        gb = sum(r) / n
        norm = (sum(g * g for g in gw) + gb * gb) ** 0.5
        if norm <= tol:
            return t
        if norm != norm or norm == float("inf"):
            return -1
        w = [w[j] - lr * gw[j] for j in range(d)]
        b -= lr * gb
    return -1


MUTANTS = [
    ("standardize", "test set's own mean/std", std_test_own_stats),
    ("standardize", "include the test set", std_pooled),
    ("standardize", "axis=1", std_per_example),
    ("standardize", "one mean and one std for the whole array", std_global),
    ("standardize", "ddof=1", std_ddof1),
    ("standardize", "divided by the variance", std_by_variance),
    ("standardize", "You added eps to the std", std_plus_eps),
    ("standardize", "√(var + eps)", std_bn_style),
    ("standardize", "gives NaN", std_nan_for_constants),
    ("standardize", "constant feature to 0 on the test set", std_zero_constant_everywhere),
    ("standardize", "Return the std you divided by", std_returns_raw_std),
    ("standardize", "drop keepdims", std_keepdims),
    ("standardize", "in place", std_in_place),
    ("standardize", "mean and std are swapped", std_swapped_stats),
    ("standardize", "dtype not preserved", std_float64_out),
    ("standardize", "must return four things", std_two_outputs),
    ("gd_steps_to_converge", "no bias", gd_no_bias),
    ("gd_steps_to_converge", "leaves out ∂L/∂b", gd_norm_without_b),
    ("gd_steps_to_converge", "twice ∇L", gd_factor_two),
    ("gd_steps_to_converge", "sums over the examples", gd_sum),
    ("gd_steps_to_converge", "Euclidean norm", gd_max_abs),
    ("gd_steps_to_converge", "stop when the loss is below tol", gd_loss_criterion),
    ("gd_steps_to_converge", "off by one", gd_update_then_check),
    ("gd_steps_to_converge", "return -1 when the tolerance is not reached", gd_returns_max_steps),
    ("gd_steps_to_converge", "must return one integer", gd_returns_history),
]

CORRECT = [
    ("standardize", std_loops),
    ("standardize", std_formula),
    ("gd_steps_to_converge", gd_augmented),
    ("gd_steps_to_converge", gd_elementwise),
]
