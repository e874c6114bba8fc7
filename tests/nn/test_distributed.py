"""Tests of bncourse.nn.distributed: synchronized BN statistics across real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bncourse.errors import DTypeError, ParameterError, ShapeError
from bncourse.nn.distributed import free_port, run_sync_batchnorm, sync_batch_stats

pytestmark = pytest.mark.slow  # starts torch.distributed processes: not in `make test-fast`


def test_two_processes_match_full_batch_statistics() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=(11, 3, 4, 4))  # uneven shards: 4 and 7 examples
    res = run_sync_batchnorm([x[:4], x[4:]])
    np.testing.assert_allclose(res.mean, x.mean(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.var, x.var(axis=(0, 2, 3)), rtol=0, atol=1e-12)
    assert res.n_values == 11 * 4 * 4
    assert res.max_rank_disagreement == 0.0
    full = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.concatenate(res.outputs), full, rtol=0, atol=1e-12)
    # per-shard statistics differ from the global ones: that is why the sync is needed
    assert np.abs(x[:4].mean(axis=(0, 2, 3)) - res.mean).max() > 1e-3


def test_sync_batch_stats_2d_float32() -> None:
    x = np.random.default_rng(1).normal(100.0, 3.0, size=(8, 5)).astype(np.float32)
    mean, var = sync_batch_stats([x[:3], x[3:]])
    assert mean.dtype == np.float32 and mean.shape == (5,)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(var, x.astype(np.float64).var(0), rtol=1e-4)


def test_bad_shards_are_rejected_before_spawning() -> None:
    with pytest.raises(ShapeError, match="shard 1"):
        run_sync_batchnorm([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(DTypeError, match="float32 or float64"):
        run_sync_batchnorm([np.zeros((2, 3), dtype=np.int64)])
    with pytest.raises(ShapeError, match=r"\(N, C\)"):
        run_sync_batchnorm([np.zeros(3)])
    with pytest.raises(ShapeError, match="at least one"):
        run_sync_batchnorm([])
    with pytest.raises(ParameterError, match="eps"):
        run_sync_batchnorm([np.zeros((2, 3))], eps=0.0)


def test_free_port_is_usable() -> None:
    port = free_port()
    assert 1024 <= port < 65536


def test_runs_from_a_plain_script_under_a_main_guard(tmp_path: Path) -> None:
    """The usage the docstring prescribes for scripts works (spawn re-imports __main__)."""
    script = tmp_path / "sync.py"
    script.write_text(
        "import numpy as np\n"
        "from bncourse.nn.distributed import run_sync_batchnorm\n"
        "if __name__ == '__main__':\n"
        "    rng = np.random.default_rng(0)\n"
        "    shards = [rng.standard_normal((3, 2)), rng.standard_normal((5, 2))]\n"
        "    r = run_sync_batchnorm(shards)\n"
        "    full = np.concatenate(shards)\n"
        "    print(float(np.max(np.abs(r.mean - full.mean(axis=0)))))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-12

