"""A JupyterLab server for the browser tests, and what a course notebook must show in it.

:class:`LabServer` starts ``jupyter lab`` from the project's venv on a free loopback port
with a random token, on a folder of *copies* of the notebooks (running cells in the UI
never touches the committed notebooks and leaves no checkpoints in the repo), with the
repo's Jupyter config (``.jupyter/config``: no news, no update check) and every other
Jupyter/IPython/matplotlib state folder in build/ or the temporary folder.  It runs in its
own process group and :meth:`LabServer.stop` kills that group, so no kernel outlives the
test.

:func:`expected_outputs` reads the committed, executed notebook and says what the UI must
show after Run All: how many figures (stored ``image/png`` outputs plus the figures inside
each widget's ``Output`` in the stored widget state), how many sliders, and which
markdown cells hold LaTeX.  The numbers come from the notebook file, not from the UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lab_environment(runtime_dir: Path) -> dict[str, str]:
    """The environment ``make lab`` gives JupyterLab (see the Makefile), with a private runtime dir.

    ``MPLBACKEND`` is dropped so the kernel picks matplotlib's inline backend as in a
    student's session (the test suite sets ``Agg`` for itself).
    """
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(ROOT / ".jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(BUILD / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(runtime_dir),
        "IPYTHONDIR": str(BUILD / "ipython"),
        "MPLCONFIGDIR": str(BUILD / "mpl"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    env.pop("MPLBACKEND", None)
    for key in ("JUPYTER_DATA_DIR", "IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the test process dies (Linux), so a killed
    pytest does not leave a server behind; elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LabServerError(RuntimeError):
    """JupyterLab did not start (the message holds the end of its log)."""


@dataclass
class LabServer:
    """One ``jupyter lab`` process serving ``root_dir`` on 127.0.0.1 (see the module doc).

    Use as a context manager, or call :meth:`start` and :meth:`stop` (in a ``finally``).
    """

    root_dir: Path
    work_dir: Path  # runtime dir, workspaces and the server log go here
    startup_timeout: float = 120.0
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "jupyter-lab.log"

    def url(self, path: str) -> str:
        """``base_url + path`` with the token as a query parameter (logs the browser in)."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        jupyter = Path(sys.executable).with_name("jupyter")
        return [
            str(jupyter), "lab", "--no-browser",
            f"--port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.workspaces_dir={self.work_dir / 'workspaces'}",
            # window.jupyterapp: the start-up test asks the front end's commands when the
            # announcements plugin has decided about news and update checks.
            "--LabApp.expose_app_in_browser=True",
        ]

    def start(self) -> LabServer:
        """Start the server and wait until ``/api/status`` answers; raise LabServerError if not."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = lab_environment(self.work_dir / "runtime")
        last_error = ""
        for _attempt in range(3):  # another process may take the free port before we bind it
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    self.command(), cwd=self.root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
                )
            try:
                self._wait_ready()
                return self
            except LabServerError as exc:
                last_error = str(exc)
                self.stop()
                if "address already in use" not in last_error.lower():
                    break
        raise LabServerError(last_error)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LabServerError(f"jupyter lab exited with {self.process.returncode}:\n"
                                     + self.log_text()[-3000:])
            try:
                status = self.api("GET", "/api/status", timeout=2.0)
                if isinstance(status, dict):
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        raise LabServerError(f"jupyter lab did not answer on {self.base_url} within "
                             f"{self.startup_timeout:.0f} s:\n" + self.log_text()[-3000:])

    def api(self, method: str, path: str, timeout: float = 10.0) -> Any:
        """Call the server's REST API with the token; the decoded JSON (None for no content)."""
        req = urllib.request.Request(self.base_url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_sessions(self, path: str | None = None) -> None:
        """Delete the sessions (and so their kernels) of notebook ``path``, or all of them."""
        for session in self.api("GET", "/api/sessions") or []:
            if path is not None and session.get("path") != path:
                continue
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        """Kill the server's process group (the server and its kernels); idempotent."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class WidgetExpect:
    """One widget view in a cell's stored outputs."""

    cell: int  # index of the cell in the notebook
    sliders: int  # slider models in the widget tree
    figures: int  # image/png outputs inside its Output widgets


@dataclass(frozen=True)
class NotebookExpect:
    """What the UI must show for one executed notebook after Run All."""

    n_code_cells: int
    n_figures: int  # stored image/png outputs + the figures inside widgets
    n_sliders: int
    widgets: tuple[WidgetExpect, ...]
    math_cells: dict[int, int]  # markdown cell index -> number of $..$ / $$..$$ spans


_SLIDER_MODELS = re.compile(r"(Float|Int|FloatLog)(Range)?SliderModel$|SelectionSliderModel$")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
# Like JupyterLab's own split (rendermime's removeMath): any $$..$$ or $..$ pair not escaped
# with a backslash, which may wrap onto the next line but not across a blank line.
_MATH = re.compile(r"\$\$((?:(?!\n\s*\n).)+?)\$\$|(?<![\\$])\$((?:(?!\n\s*\n)[^$])+?)(?<!\\)\$", re.S)


def math_spans(markdown: str) -> int:
    """Number of ``$$…$$`` and ``$…$`` spans outside code in a markdown source."""
    return len(_MATH.findall(_CODE.sub("", markdown)))


def _widget_tree(state: dict[str, Any], model_id: str, seen: set[str] | None = None) -> list[dict[str, Any]]:
    """The model and every model it references (``IPY_MODEL_…``), depth first."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    model = state[model_id]
    found = [model]
    refs = re.findall(r"IPY_MODEL_([0-9a-f]+)", json.dumps(model.get("state", {})))
    for ref in refs:
        found += _widget_tree(state, ref, seen)
    return found


def expected_outputs(nb: Any) -> NotebookExpect:
    """Read the expectations of :class:`NotebookExpect` off an executed notebook.

    Raises ValueError if a widget view has no stored widget state (the notebook was not
    executed with ``make execute``, which stores it), since its figures cannot be counted.
    """
    state = (nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}) or {}).get("state", {})
    n_code = n_png = 0
    widgets: list[WidgetExpect] = []
    math: dict[int, int] = {}
    for idx, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            n = math_spans(cell.source)
            if n:
                math[idx] = n
            continue
        if cell.cell_type != "code":
            continue
        n_code += 1
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                model_id = data[WIDGET_VIEW]["model_id"]
                if model_id not in state:
                    raise ValueError(f"cell {idx}: widget {model_id} has no stored state; "
                                     "execute the notebook with `make execute`")
                models = _widget_tree(state, model_id)
                sliders = sum(bool(_SLIDER_MODELS.search(m["model_name"])) for m in models)
                figures = sum("image/png" in o.get("data", {})
                              for m in models if m["model_name"] == "OutputModel"
                              for o in m["state"].get("outputs", []))
                widgets.append(WidgetExpect(idx, sliders, figures))
            elif "image/png" in data:
                n_png += 1
    return NotebookExpect(
        n_code_cells=n_code,
        n_figures=n_png + sum(w.figures for w in widgets),
        n_sliders=sum(w.sliders for w in widgets),
        widgets=tuple(widgets),
        math_cells=math,
    )
