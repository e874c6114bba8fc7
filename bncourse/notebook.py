"""Set-up shared by every course notebook: seeds, threads, plot style, quiet warnings."""

from __future__ import annotations

import os
import random
import sys
import warnings

import numpy as np

__all__ = ["setup_notebook"]


def setup_notebook(seed: int = 0, threads: int = 1) -> None:
    """Make a notebook deterministic and consistent.

    Seeds Python's ``random``, NumPy's global generator and (if torch is imported or
    importable) torch; fixes torch to ``threads`` threads so results do not depend on the
    machine's core count; applies the course plot style if matplotlib is available; and
    silences library warnings, whose text would put machine paths into outputs.
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None  # type: ignore[assignment]
    if torch is not None:
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
    if "ipykernel" in sys.modules:
        from bncourse import plots

        plots.use_style()
        try:
            from IPython import get_ipython

            ip = get_ipython()
            if ip is not None:
                ip.run_line_magic("matplotlib", "inline")
                ip.run_line_magic("config", "InlineBackend.figure_formats = ['png']")
                ip.run_line_magic("config", "InlineBackend.rc = {}")
        except ImportError:  # pragma: no cover
            pass
