"""Notebook 08's experiments: the NumPy network and its torch twin agree, the comparison table
says what it should, the diagnostics, the widget, calibration and the Bessel measurement."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from bncourse import oracle
from bncourse.course.data import load_digits_split
from bncourse.lessons.l08_bn_in_a_network import experiments as net


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_digits_split(seed=0, dtype=np.float64)


def _fns() -> net.NetFunctions:
    return net.NetFunctions(oracle.batchnorm_forward, oracle.batchnorm_backward, oracle.batchnorm_layer_forward,
                            oracle.softmax_cross_entropy, oracle.linear_backward, oracle.network_backward)


def test_stand_in_gradients_match_autograd_and_detached_stats_do_not(data) -> None:  # type: ignore[no-untyped-def]
    model = net.NumpyMLP(net.init_params(seed=1), _fns())
    x, y = data.x_train[:16], data.y_train[:16]
    _, dlogits, grads = model.gradients(x, y)
    ours = {**grads, "logits": dlogits}
    table = net.compare_table(ours, net.autograd_gradients(model.params, x, y))
    assert "WRONG" not in table and table.count("\n") == len(net.BACKPROP_ORDER)
    wrong = net.compare_table(ours, net.constant_stats_gradients(model.params, x, y))
    rows = {line.split()[0]: line for line in wrong.splitlines()[1:]}
    assert "WRONG" in rows["a2"] and "WRONG" in rows["W1"]
    assert "WRONG" not in rows["gamma2"] and "WRONG" not in rows["W3"]


def test_compare_table_verdicts() -> None:
    a = {"t": np.ones(3)}
    assert "exact" in net.compare_table(a, {"t": np.ones(3)}, keys=["t"])
    assert "approximate" in net.compare_table(a, {"t": np.ones(3) + 1e-12}, keys=["t"])
    assert "WRONG" in net.compare_table(a, {"t": np.ones(3) + 1e-3}, keys=["t"])
    assert "WRONG" in net.compare_table(a, {"t": np.ones(4)}, keys=["t"])


def test_numpy_network_and_torch_twin_train_alike(data) -> None:  # type: ignore[no-untyped-def]
    ours, model = net.train_numpy(_fns(), data, seeds=(0,), steps=60, eval_every=30)
    theirs, _ = net.train_torch(data, seeds=(0,), steps=60, eval_every=30)
    np.testing.assert_allclose(ours.loss[0][1:], theirs.loss[0][1:], rtol=1e-8)
    assert ours.test_acc == theirs.test_acc
    assert ours.final_acc[0] > 0.8
    assert model.running["var1"].shape == (64,) and not np.allclose(model.running["var1"], 1.0)
    fig = net.plot_training(ours, theirs)
    assert fig.axes[0].get_title() and fig.axes[1].get_xlabel() == "SGD step"


def test_cross_example_gradient_is_zero_in_eval_mode(data) -> None:  # type: ignore[no-untyped-def]
    coupled, uncoupled = net.cross_example_gradient(net.init_params(seed=0), data.x_train[:8], data.y_train[:8])
    assert coupled > 1e-3 and uncoupled == 0.0


def test_diagnostics_record_and_widget_redraws(data) -> None:  # type: ignore[no-untyped-def]
    configs = {"BN": (True, 1.0), "no BN, W×10": (False, 10.0)}
    diag = net.run_diagnostics(data, configs=configs, seeds=(0, 1), steps=20, record_steps=(0, 20))
    assert diag.ratios["BN"].shape == (2, 2, 3)
    assert diag.saturation("no BN, W×10", 0, 2) > 30 > diag.saturation("BN", 0, 2)
    for kind in ("activations", "gradients"):
        assert len(net.plot_histograms(diag, 0, kind=kind).axes) in (2, 3)
    assert len(net.plot_update_ratios(diag).axes) == 3
    w = net.diagnostics_widget(diag)
    f1, f2 = w.draw(1, 0), w.draw(2, 1)  # record 1 is step 20
    assert f1.axes[0].get_title() != f2.axes[0].get_title()
    assert "% sat." in f1.axes[0].get_legend_handles_labels()[1][0]


def test_calibration_and_bessel(data) -> None:  # type: ignore[no-untyped-def]
    calib = net.calibration_experiment(data, momenta=(0.1, 0.001), seeds=(0,), steps=60)
    assert calib.mean(0.001, "ema_loss") > calib.mean(0.001, "precise_loss")
    assert "momentum" in calib.table()
    res = net.bessel_experiment(data, batch_sizes=(2, 8), seeds=(0,), steps=30)
    np.testing.assert_allclose(res["var_ratio"][:, 0], [2.0, 8 / 7], rtol=1e-6)
    assert net.plot_bessel((2, 8), res).axes[0].get_xlabel() == "training batch size m"
