"""Mutants for notebook 07's exercises, written the way a student would write them."""

from __future__ import annotations

import numpy as np

# ------------------------------------------------------------------ layernorm_forward


def ln_axis0(x, gamma, beta, eps=1e-5):
    mean = np.mean(x, axis=0)
    var = np.mean((x - mean) ** 2, axis=0)
    xn = (x - mean) / np.sqrt(var + eps)
    return gamma * xn + beta, (xn, var)


def ln_ddof1(x, gamma, beta, eps=1e-5):
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        row = x[n]
        m = row.sum() / row.size
        v = ((row - m) ** 2).sum() / (row.size - 1)
        out[n] = gamma * (row - m) / np.sqrt(v + eps) + beta
    return out, None


def ln_noeps(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return gamma * (x - mu) / sd + beta, (x, mu, sd)


def ln_var_denominator(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    return gamma * ((x - mu) / (var + eps)) + beta, {}


def ln_correct_loop(x, gamma, beta, eps=1e-5):
    out = np.zeros_like(x)
    cache = []
    for n in range(x.shape[0]):
        m = sum(x[n]) / len(x[n])
        v = sum((x[n] - m) ** 2) / len(x[n])
        xh = (x[n] - m) / np.sqrt(v + eps)
        out[n] = gamma * xh + beta
        cache.append(xh)
    return out, (x, gamma, eps)


# ----------------------------------------------------------------- layernorm_backward


def ln_bw_constants(dout, cache):
    x_hat, inv_std, gamma = cache.norm.x_hat, cache.norm.inv_std, cache.gamma
    return gamma * dout * inv_std, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def ln_bw_bn_formula(dout, cache):
    # batch norm's closed form copied over: sums over the batch axis
    x_hat, inv_std, gamma = cache.norm.x_hat, cache.norm.inv_std, cache.gamma
    N = dout.shape[0]
    dxh = dout * gamma
    dx = inv_std / N * (N * dxh - dxh.sum(axis=0) - x_hat * (dxh * x_hat).sum(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def ln_bw_per_example_params(dout, cache):
    x_hat, inv_std, gamma = cache.norm.x_hat, cache.norm.inv_std, cache.gamma
    D = dout.shape[1]
    dxh = dout * gamma
    dx = inv_std / D * (D * dxh - dxh.sum(axis=1, keepdims=True) - x_hat * (dxh * x_hat).sum(axis=1, keepdims=True))
    return dx, (dout * x_hat).sum(axis=1), dout.sum(axis=1)


def ln_bw_correct_graph(dout, cache):
    # staged backward through the graph, from a cache of the reference's layout
    x_hat, inv_std, gamma = cache.norm.x_hat, cache.norm.inv_std, cache.gamma
    xc = cache.norm.x_centered
    D = dout.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dxhat = dout * gamma
    dinv = (dxhat * xc).sum(axis=1, keepdims=True)
    dvar = dinv * -0.5 * inv_std**3
    dxc = dxhat * inv_std + dvar * 2.0 * xc / D
    dx = dxc - dxc.mean(axis=1, keepdims=True)
    return dx, dgamma, dbeta


# ------------------------------------------------------------------ groupnorm_forward


def gn_interleaved(x, gamma, beta, num_groups, eps=1e-5):
    N, C = x.shape[:2]
    out = np.empty_like(x)
    for n in range(N):
        for g in range(num_groups):
            chans = list(range(g, C, num_groups))  # every G-th channel
            block = x[n, chans]
            m, v = block.mean(), block.var()
            out[n, chans] = (block - m) / np.sqrt(v + eps)
    return gamma[None, :, None, None] * out + beta[None, :, None, None], None


def gn_size_for_count(x, gamma, beta, num_groups, eps=1e-5):
    N, C = x.shape[:2]
    size = num_groups  # "num_groups channels per group"
    out = np.empty_like(x)
    for n in range(N):
        for start in range(0, C, size):
            block = x[n, start:start + size]
            out[n, start:start + size] = (block - block.mean()) / np.sqrt(block.var() + eps)
    return gamma[None, :, None, None] * out + beta[None, :, None, None], None


def gn_no_spatial(x, gamma, beta, num_groups, eps=1e-5):
    N, C, H, W = x.shape
    xg = x.reshape(N, num_groups, C // num_groups, H * W)
    mu = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    xh = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    return xh * gamma.reshape(1, C, 1, 1) + beta.reshape(1, C, 1, 1), None


def gn_ignores_groups(x, gamma, beta, num_groups, eps=1e-5):
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    xh = (x - mu) / np.sqrt(var + eps)
    return xh * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1), None


def gn_per_channel(x, gamma, beta, num_groups, eps=1e-5):
    mu = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    xh = (x - mu) / np.sqrt(var + eps)
    return xh * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1), None


def gn_correct_loop(x, gamma, beta, num_groups, eps=1e-5):
    N, C = x.shape[:2]
    per = C // num_groups
    out = np.empty_like(x)
    for n in range(N):
        for g in range(num_groups):
            block = x[n, g * per:(g + 1) * per]
            m = block.sum() / block.size
            v = ((block - m) ** 2).sum() / block.size
            for c in range(g * per, (g + 1) * per):
                out[n, c] = gamma[c] * (x[n, c] - m) / np.sqrt(v + eps) + beta[c]
    return out, {"num_groups": num_groups}


# -------------------------------------------------------------- batch_renorm_forward


def brn_no_clip(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu, var = x.mean(axis=0), x.var(axis=0)
    s_b, s_r = np.sqrt(var + eps), np.sqrt(running_var + eps)
    r = s_b / s_r
    d = (mu - running_mean) / s_r
    out = gamma * ((x - mu) / s_b * r + d) + beta
    n = x.shape[0]
    rm = (1 - momentum) * running_mean + momentum * mu
    rv = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return out, r, d, rm, rv


def brn_running_sigma(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu = x.mean(axis=0)
    s_r = np.sqrt(running_var + eps)
    r = np.clip(np.sqrt(x.var(axis=0) + eps) / s_r, 1 / r_max, r_max)
    d = np.clip((mu - running_mean) / s_r, -d_max, d_max)
    out = gamma * ((x - mu) / s_r * r + d) + beta  # running sigma instead of the batch's
    rm = (1 - momentum) * running_mean + momentum * mu
    rv = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)
    return out, r, d, rm, rv


def brn_r_upside_down(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu, var = x.mean(axis=0), x.var(axis=0)
    s_b, s_r = np.sqrt(var + eps), np.sqrt(running_var + eps)
    r = np.minimum(np.maximum(s_r / s_b, 1 / r_max), r_max)
    d = np.minimum(np.maximum((mu - running_mean) / s_r, -d_max), d_max)
    out = gamma * ((x - mu) / s_b * r + d) + beta
    rm = (1 - momentum) * running_mean + momentum * mu
    rv = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)
    return out, r, d, rm, rv


def brn_stats_after_update(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu, var = x.mean(axis=0), x.var(axis=0)
    running_mean = (1 - momentum) * running_mean + momentum * mu
    running_var = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)
    s_b, s_r = np.sqrt(var + eps), np.sqrt(running_var + eps)
    r = np.clip(s_b / s_r, 1 / r_max, r_max)
    d = np.clip((mu - running_mean) / s_r, -d_max, d_max)
    return gamma * ((x - mu) / s_b * r + d) + beta, r, d, running_mean, running_var


def brn_biased_running(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu, var = x.mean(axis=0), x.var(axis=0)
    s_b, s_r = np.sqrt(var + eps), np.sqrt(running_var + eps)
    r = np.clip(s_b / s_r, 1 / r_max, r_max)
    d = np.clip((mu - running_mean) / s_r, -d_max, d_max)
    out = gamma * ((x - mu) / s_b * r + d) + beta
    return out, r, d, 0.9 * running_mean + 0.1 * mu if momentum == 0.1 else (
        (1 - momentum) * running_mean + momentum * mu), (1 - momentum) * running_var + momentum * var


def brn_correct_loop(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    N, D = x.shape
    out = np.empty_like(x)
    r = np.empty_like(running_mean)
    d = np.empty_like(running_mean)
    rm = np.empty_like(running_mean)
    rv = np.empty_like(running_var)
    for j in range(D):
        col = x[:, j]
        m = col.sum() / N
        v = ((col - m) ** 2).sum() / N
        sb = np.sqrt(v + eps)
        sr = np.sqrt(running_var[j] + eps)
        r[j] = min(max(sb / sr, 1 / r_max), r_max)
        d[j] = min(max((m - running_mean[j]) / sr, -d_max), d_max)
        out[:, j] = gamma[j] * ((col - m) / sb * r[j] + d[j]) + beta[j]
        rm[j] = (1 - momentum) * running_mean[j] + momentum * m
        rv[j] = (1 - momentum) * running_var[j] + momentum * v * N / (N - 1)
    return out, r, d, rm, rv


MUTANTS = [
    ("layernorm_forward", "batch axis", ln_axis0),
    ("layernorm_forward", "unbiased", ln_ddof1),
    ("layernorm_forward", "forgot eps", ln_noeps),
    ("layernorm_forward", "divide by the variance", ln_var_denominator),
    ("layernorm_backward", "constants", ln_bw_constants),
    ("layernorm_backward", "batch norm's backward", ln_bw_bn_formula),
    ("layernorm_backward", "one entry per example", ln_bw_per_example_params),
    ("groupnorm_forward", "non-adjacent", gn_interleaved),
    ("groupnorm_forward", "channels per group", gn_size_for_count),
    ("groupnorm_forward", "channels only", gn_no_spatial),
    ("groupnorm_forward", "layer norm", gn_ignores_groups),
    ("groupnorm_forward", "instance norm", gn_per_channel),
    ("batch_renorm_forward", "forgot to clip", brn_no_clip),
    ("batch_renorm_forward", "running standard deviation", brn_running_sigma),
    ("batch_renorm_forward", "upside down", brn_r_upside_down),
    ("batch_renorm_forward", "before the update", brn_stats_after_update),
    ("batch_renorm_forward", "running_var must be updated", brn_biased_running),
]

CORRECT = [
    ("layernorm_forward", ln_correct_loop),
    ("layernorm_backward", ln_bw_correct_graph),
    ("groupnorm_forward", gn_correct_loop),
    ("batch_renorm_forward", brn_correct_loop),
]


# ------------------------------------------------- more mutants (one per registered Mistake)


def ln_forgot_gamma_beta(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + eps), None


def ln_bw_dx_without_gamma(dout, cache):
    x_hat, inv_std = cache.norm.x_hat, cache.norm.inv_std
    D = dout.shape[1]
    dx = inv_std / D * (D * dout - dout.sum(axis=1, keepdims=True)
                        - x_hat * (dout * x_hat).sum(axis=1, keepdims=True))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def ln_bw_forgot_mean_path(dout, cache):
    x_hat, inv_std, gamma = cache.norm.x_hat, cache.norm.inv_std, cache.gamma
    g = gamma * dout
    D = dout.shape[1]
    dx = inv_std * (g - x_hat * (g * x_hat).sum(axis=1, keepdims=True) / D)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def gn_batch_stats(x, gamma, beta, num_groups, eps=1e-5):
    C = x.shape[1]
    out = np.empty_like(x)
    per = C // num_groups
    for g in range(num_groups):
        block = x[:, g * per:(g + 1) * per]  # all examples together
        out[:, g * per:(g + 1) * per] = (block - block.mean()) / np.sqrt(block.var() + eps)
    return out * gamma[None, :, None, None] + beta[None, :, None, None], None


def gn_ddof1(x, gamma, beta, num_groups, eps=1e-5):
    N = x.shape[0]
    xg = x.reshape(N, num_groups, -1)
    xh = (xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, ddof=1, keepdims=True) + eps)
    return xh.reshape(x.shape) * gamma[None, :, None, None] + beta[None, :, None, None], None


def gn_without_eps(x, gamma, beta, num_groups, eps=1e-5):
    N = x.shape[0]
    xg = x.reshape(N, num_groups, -1)
    xh = (xg - xg.mean(-1, keepdims=True)) / xg.std(-1, keepdims=True)
    return xh.reshape(x.shape) * gamma[None, :, None, None] + beta[None, :, None, None], None


def brn_d_sign(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu, var = x.mean(axis=0), x.var(axis=0)
    s_b, s_r = np.sqrt(var + eps), np.sqrt(running_var + eps)
    r = np.clip(s_b / s_r, 1 / r_max, r_max)
    d = np.clip((running_mean - mu) / s_r, -d_max, d_max)
    out = gamma * ((x - mu) / s_b * r + d) + beta
    return (out, r, d, (1 - momentum) * running_mean + momentum * mu,
            (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1))


def brn_ddof1_normalize(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5, momentum=0.1):
    mu, var_u = x.mean(axis=0), x.var(axis=0, ddof=1)
    s_b, s_r = np.sqrt(var_u + eps), np.sqrt(running_var + eps)
    r = np.clip(s_b / s_r, 1 / r_max, r_max)
    d = np.clip((mu - running_mean) / s_r, -d_max, d_max)
    out = gamma * ((x - mu) / s_b * r + d) + beta
    return (out, r, d, (1 - momentum) * running_mean + momentum * mu,
            (1 - momentum) * running_var + momentum * var_u)


MUTANTS += [
    ("layernorm_forward", "without the learned scale and shift", ln_forgot_gamma_beta),
    ("layernorm_backward", "forgets gamma", ln_bw_dx_without_gamma),
    ("layernorm_backward", "gradient through the mean", ln_bw_forgot_mean_path),
    ("groupnorm_forward", "include the batch axis", gn_batch_stats),
    ("groupnorm_forward", "unbiased one (ddof=1)", gn_ddof1),
    ("groupnorm_forward", "forgot eps", gn_without_eps),
    ("batch_renorm_forward", "wrong sign", brn_d_sign),
    ("batch_renorm_forward", "Normalize with the biased batch variance", brn_ddof1_normalize),
]


# ----------------------------------------------------------------- groupnorm_backward
# They read the reference's cache (the exercise's namespace): cache.x_hat (N, C, H, W),
# cache.gamma (C,), cache.norm.x_centered and cache.norm.inv_std on the (N, G, C//G, H, W) view.


def _gnb_unpack(dout, cache):
    N, C, H, W = dout.shape
    G = cache.norm.inv_std.shape[1]
    return N, C, H, W, G, cache.x_hat, cache.gamma, cache.norm.inv_std


def gnb_treat_stats_as_constants(dout, cache):
    N, C, H, W, G, x_hat, gamma, inv_std = _gnb_unpack(dout, cache)
    dxg = (dout * gamma[None, :, None, None]).reshape(N, G, C // G, H, W) * inv_std
    return dxg.reshape(dout.shape), (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def gnb_no_mean_path(dout, cache):
    N, _C, _H, _W, G, x_hat, gamma, inv_std = _gnb_unpack(dout, cache)
    g = (dout * gamma[None, :, None, None]).reshape(N, G, -1)
    xh = x_hat.reshape(N, G, -1)
    M = g.shape[-1]
    dx = inv_std.reshape(N, G, 1) * (g - xh * (g * xh).sum(-1, keepdims=True) / M)
    return dx.reshape(dout.shape), (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def gnb_instance_axes(dout, cache):
    # the layer-norm backward applied per channel, with the group's inv_std
    N, C, _H, _W, G, x_hat, gamma, inv_std = _gnb_unpack(dout, cache)
    dx = np.empty_like(dout)
    for n in range(N):
        for c in range(C):
            s = inv_std[n, c // (C // G)].item()
            g = gamma[c] * dout[n, c]
            xh = x_hat[n, c]
            dx[n, c] = s * (g - g.mean() - xh * (g * xh).mean())
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def gnb_bn_formula(dout, cache):
    # spatial batch norm's closed form pasted in: sums over (N, H, W) per channel
    N, C, H, W, G, x_hat, gamma, inv_std = _gnb_unpack(dout, cache)
    s = np.repeat(inv_std.reshape(N, G), C // G, axis=1)[:, :, None, None]
    m = N * H * W
    g = dout * gamma[None, :, None, None]
    dx = s / m * (m * g - g.sum(axis=(0, 2, 3), keepdims=True)
                  - x_hat * (g * x_hat).sum(axis=(0, 2, 3), keepdims=True))
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def gnb_gamma_missing(dout, cache):
    N, _C, _H, _W, G, x_hat, _gamma, inv_std = _gnb_unpack(dout, cache)
    g = dout.reshape(N, G, -1)
    xh = x_hat.reshape(N, G, -1)
    dx = inv_std.reshape(N, G, 1) * (g - g.mean(-1, keepdims=True) - xh * (g * xh).mean(-1, keepdims=True))
    return dx.reshape(dout.shape), (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def _gnb_dx_right(dout, cache):
    N, _C, _H, _W, G, x_hat, gamma, inv_std = _gnb_unpack(dout, cache)
    g = (dout * gamma[None, :, None, None]).reshape(N, G, -1)
    xh = x_hat.reshape(N, G, -1)
    dx = inv_std.reshape(N, G, 1) * (g - g.mean(-1, keepdims=True) - xh * (g * xh).mean(-1, keepdims=True))
    return dx.reshape(dout.shape)


def gnb_params_per_group(dout, cache):
    N, _C, _H, _W, G, x_hat, _gamma, _inv_std = _gnb_unpack(dout, cache)
    dgamma = (dout * x_hat).reshape(N, G, -1).sum(axis=(0, 2))
    dbeta = dout.reshape(N, G, -1).sum(axis=(0, 2))
    return _gnb_dx_right(dout, cache), dgamma, dbeta


def gnb_params_keep_batch(dout, cache):
    x_hat = cache.x_hat
    return _gnb_dx_right(dout, cache), (dout * x_hat).sum(axis=(2, 3)), dout.sum(axis=(2, 3))


def gnb_correct_graph(dout, cache):
    # staged through the graph on the grouped view: x_c = x - mu, var, inv_std, x_hat = x_c * inv_std
    _N, C, _H, _W, _G, x_hat, gamma, inv_std = _gnb_unpack(dout, cache)
    xc = cache.norm.x_centered  # (N, G, C//G, H, W)
    M = xc[0, 0].size
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    dxhat = (dout * gamma.reshape(1, C, 1, 1)).reshape(xc.shape)
    axes = (2, 3, 4)
    dinv = (dxhat * xc).sum(axis=axes, keepdims=True)
    dvar = dinv * -0.5 * inv_std**3
    dxc = dxhat * inv_std + dvar * 2.0 * xc / M
    dx = dxc - dxc.mean(axis=axes, keepdims=True)
    return dx.reshape(dout.shape), dgamma, dbeta


MUTANTS += [
    ("groupnorm_backward", "as constants", gnb_treat_stats_as_constants),
    ("groupnorm_backward", "through the group's mean", gnb_no_mean_path),
    ("groupnorm_backward", "instance norm's backward", gnb_instance_axes),
    ("groupnorm_backward", "batch norm's backward", gnb_bn_formula),
    ("groupnorm_backward", "forgets gamma", gnb_gamma_missing),
    ("groupnorm_backward", "one entry per group", gnb_params_per_group),
    ("groupnorm_backward", "keeps the batch axis", gnb_params_keep_batch),
]

CORRECT += [
    ("groupnorm_backward", gnb_correct_graph),
]
