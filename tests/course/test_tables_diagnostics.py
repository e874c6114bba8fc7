"""course.tables.format_table and course.diagnostics: the one table formatter and the one
BN-buffer reader / per-layer gradient-norm probe the lessons share."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bncourse.course.diagnostics import batchnorm_buffers, weight_gradient_norms
from bncourse.course.tables import format_table
from bncourse.errors import ParameterError


def test_format_table_rounds_aligns_and_handles_no_rows() -> None:
    text = format_table([{"name": "a", "v": 0.12345, "n": 3}, {"name": "longer", "v": 10.0, "n": 12}], digits=2)
    lines = text.splitlines()
    assert lines[0].split() == ["name", "v", "n"]
    assert "0.12" in text and "0.123" not in text and "10.00" in text
    assert lines[1].startswith("a ") and lines[2].startswith("longer")  # first column left-aligned
    assert len({len(line) for line in lines}) == 1  # other columns right-aligned to one width
    assert format_table([]) == ""


def test_batchnorm_buffers_are_float64_copies_and_refuse_untracked_layers() -> None:
    bn = nn.BatchNorm1d(3)
    bn(torch.randn(8, 3) * 2 + 1)
    mean, _ = batchnorm_buffers(bn)
    assert mean.dtype == np.float64 and mean.shape == (3,)
    np.testing.assert_allclose(mean, bn.running_mean.double().numpy())
    mean[:] = 99.0  # a copy: the layer is untouched
    assert not torch.any(bn.running_mean == 99.0)
    with pytest.raises(ParameterError, match="track_running_stats=False"):
        batchnorm_buffers(nn.BatchNorm1d(3, track_running_stats=False))


def test_weight_gradient_norms_match_autograd_and_leave_the_model_alone() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = weight_gradient_norms(model, x, y, nn.Linear)

    twin = nn.Sequential(*[m for m in model]).train()  # same modules, so compute on a deep copy
    twin = __import__("copy").deepcopy(twin)
    nn.functional.cross_entropy(twin(x), y).backward()
    expected = [twin[0].weight.grad.norm().item(), twin[3].weight.grad.norm().item()]
    np.testing.assert_allclose(norms, expected, rtol=1e-6)
    assert not model.training and all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():  # BN buffers not updated by the probe's forward
        assert torch.equal(v, before[k]), k
