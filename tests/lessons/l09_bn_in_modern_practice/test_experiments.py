"""Tests of bncourse.lessons.l09_bn_in_modern_practice.experiments (notebook 09's helpers), on
small settings; the exercises: ``test_exercises.py``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from bncourse.errors import ParameterError
from bncourse.lessons.l09_bn_in_modern_practice import experiments as mod


def test_mean_spread() -> None:
    assert mod.mean_spread([0.5, 1.0, 0.0]) == "0.500 (0.000-1.000)"


def test_weight_decay_shrinks_the_norm_and_raises_the_effective_lr() -> None:
    res = mod.weight_decay_experiment(weight_decays=(0.0, 1e-2), steps=100, seeds=(0,), record_every=50)
    no, yes = res.norm["weight decay 0"], res.norm["weight decay 0.01"]
    assert no.shape == (1, 3)
    assert no[0, -1] > no[0, 0]  # orthogonal gradients only grow the norm
    assert yes[0, -1] < no[0, -1]
    np.testing.assert_allclose(res.eff_lr["weight decay 0"], 0.1 / no**2)
    assert len(res.rows()) == 2
    plt.close(mod.plot_weight_decay(res))
    with pytest.raises(ParameterError):
        mod.weight_decay_experiment(weight_decays=())


def test_signal_propagation_regimes() -> None:
    res = mod.signal_propagation(depth=12, seeds=(0,))
    none, bn, zero = (res.curves[k][0] for k in mod.SETTINGS)
    np.testing.assert_allclose(zero, zero[0], rtol=1e-5)  # every block is the identity
    assert none[-1] > 10 * bn[-1] and bn[-1] > 10 * zero[-1]
    fig = mod.plot_signal_propagation(res)
    assert fig.axes[0].get_title() and fig.axes[0].get_xlabel()
    plt.close(fig)


def test_zero_gamma_curves_shape() -> None:
    res = mod.zero_gamma_experiment(depth=2, steps=20, seeds=(0, 1), record_every=10)
    assert set(res.curves) == {"BN, gamma=1", "BN, zero gamma"}
    assert res.curves["BN, zero gamma"].shape == (2, 2)
    assert np.isfinite(res.curves["BN, zero gamma"]).all()


def test_precise_stats_equal_pooled_stats_of_the_inputs() -> None:
    model = mod._bn_mlp(8, 0)
    x = torch.randn(40, 64)
    seen = []
    mod._precise_stats_(model, x, 10, lambda a: (seen.append(a.shape), a.reshape(-1, 8).mean(0),
                                                  a.reshape(-1, 8).var(0))[1:])
    assert seen == [(4, 10, 8), (4, 10, 8)]
    with torch.no_grad():
        z = model[0](x)
    np.testing.assert_allclose(model[1].running_mean.numpy(), z.mean(0).numpy(), atol=1e-5)


def test_precise_bn_experiment_rows() -> None:
    res = mod.precise_bn_experiment(steps=20, checkpoints=(10, 20), seeds=(0,))
    assert res.ema.shape == res.precise.shape == (1, 2)
    assert [r["step"] for r in res.rows()] == [10, 20]


def test_only_bn_in_train_mode_depends_on_the_batch() -> None:
    rows = mod.batch_dependence(n_batches=5, steps=20)
    moved = {(r["norm"], r["mode"]): r["logit std over batches"] for r in rows}
    assert moved[("BN", "train")] > 1e-3
    assert max(moved[("BN", "eval")], moved[("LN", "train")], moved[("LN", "eval")]) < 1e-5


def test_class_sorted_batches_hurt_train_mode() -> None:
    rows = mod.class_sorted_experiment(steps=150, seeds=(0,))
    assert len(rows) == 3
    assert float(rows[2]["test acc"].split()[0]) < float(rows[0]["test acc"].split()[0])


def test_transformer_helpers() -> None:
    res = mod.transformer_grad_norms(depth=2, seeds=(0,))
    assert res.curves["post-LN"].shape == (1, 2) and (res.curves["pre-LN"] > 0).all()
    plt.close(mod.plot_transformer_grads(res))
    seq = mod.norm_sequence_experiment(steps=10, seeds=(0,), record_every=5)
    assert seq.curves["pre-LN, RMSNorm"].shape == (1, 2)


def test_padding_changes_only_batchnorm() -> None:
    rows = mod.padding_dependence(lengths=(4, 9))
    assert rows[1]["BatchNorm: max change"] > 0.1
    assert rows[1]["LayerNorm: max change"] < 1e-9 and rows[1]["RMSNorm: max change"] < 1e-9


def test_agc_clips_large_gradients_only() -> None:
    lin = torch.nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    lin.weight.grad = torch.tensor([[100.0, 0, 0, 0], [0.001, 0, 0, 0]])
    lin.bias.grad = torch.zeros(2)
    mod.agc_(lin, clip=0.1)
    np.testing.assert_allclose(lin.weight.grad[0].norm().item(), 0.1 * 2.0, rtol=1e-6)  # ||W_0|| = 2
    np.testing.assert_allclose(lin.weight.grad[1, 0].item(), 0.001)


def test_small_batch_ws_experiment_rows_and_bad_method() -> None:
    rows = mod.small_batch_ws_experiment(methods=("ws+gn", "none+agc, lr x4"), steps=5, seeds=(0,))
    assert [r["method"] for r in rows] == ["ws+gn", "none+agc"]
    assert rows[1]["lr"] == pytest.approx(0.2)
    with pytest.raises(ParameterError):
        mod.small_batch_ws_experiment(methods=("ln",), steps=1, seeds=(0,))


def test_ws_conv_standardizes_its_filters() -> None:
    conv = mod._WSConv2d(1, 3, 3, padding=1, bias=False)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0  # a delta: the output at the centre reads the flipped-free kernel centre
    w = conv.weight.detach().reshape(3, -1)
    w_hat = (w - w.mean(1, keepdim=True)) / torch.sqrt(w.var(1, unbiased=False, keepdim=True) + 1e-5)
    np.testing.assert_allclose(conv(x)[0, :, 1, 1].detach().numpy(), w_hat[:, 4].numpy(), rtol=1e-5)


def test_finetune_experiment_rows() -> None:
    rows = mod.finetune_experiment(pretrain_steps=20, steps=5, seeds=(0,))
    assert [r["fine-tuning"] for r in rows][1:] == list(mod.FINETUNE_MODES)
    assert all(0.0 <= float(r["target test acc"].split()[0]) <= 1.0 for r in rows)


def test_frozen_bn_keeps_its_running_stats() -> None:
    model = mod._bn_mlp(8, 0)
    model.train()
    mod._set_bn_eval(model)
    before = model[1].running_mean.clone()
    model(torch.randn(4, 64))
    assert torch.equal(model[1].running_mean, before)
    assert model[0].training and not model[1].training
