"""The course the way students meet it: JupyterLab in headless Debian Chromium.

One ``jupyter lab`` (tests/lab_helpers.LabServer: free loopback port, random token, the
repo's .jupyter/config, a temporary copy of notebooks/ plus one student-edition notebook)
serves the whole module; the browser's requests off the machine are aborted and counted.

- Start-up is quiet and offline: no request leaves the machine, the front end never asks
  for news or an update check, the repo's notification settings are the ones in force, no
  toast or dialog pops up, the server log has no error.
- Each instructor notebook: Edit › Clear Outputs of All Cells, Run › Run All Cells, wait
  until no cell is queued and the kernel is idle; then no error output, as many figures
  as the committed notebook has (stored ``image/png`` plus the figures in each widget's
  stored state), every LaTeX span in markdown typeset by MathJax, every slider of every
  widget drawn, and moving one slider per widget redraws its figure (different PNG bytes).
  Screenshots go to build/screenshots/lab/<notebook>.png (after Run All, the whole
  notebook; ``-part2.png``... if taller than 16000 px) and <notebook>-widget.png (the
  widget after the slider moved).  The notebooks run two at a time (RunAllPipeline):
  each keeps one core busy, and the machine has two.
- The student edition of 03: the check of the empty exercise says "not implemented yet";
  a correct ``batchnorm_forward`` typed into the editor key by key passes the check.

Each test shuts its kernel down (and the module checks that no kernel is left); the
module's server is killed (process group) at the end, whatever happened, and dies with
the test process if that is killed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from bncourse.authoring import release
from tests.browser_helpers import chromium_browser_session, watch_page
from tests.lab_helpers import BUILD, ROOT, LabServer, NotebookExpect, expected_outputs

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = BUILD / "screenshots" / "lab"
STUDENT_STEM = "03_forward_backward"
STUDENT_EXERCISE = "batchnorm_forward"
# What a student types in place of the ``raise NotImplementedError(...)`` line (written
# here, not copied from the instructor's solution).
STUDENT_SOLUTION = (
    "mu = x.mean(axis=0)",
    "var = x.var(axis=0)",
    "x_hat = (x - mu) / np.sqrt(var + eps)",
    "out = gamma * x_hat + beta",
    "return out, (x_hat, gamma, var, eps)",
)
RUN_ALL_TIMEOUT_MS = 240_000
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
MAX_SCREENSHOT_HEIGHT = 16_000


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with chromium_browser_session() as browser:
        yield browser


@pytest.fixture(scope="module")
def lab(chromium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """The server, on copies: notebooks/ (instructor) and student/<STUDENT_STEM>.ipynb."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (root / "student").mkdir()
    instructor = nbformat.read(ROOT / "notebooks" / f"{STUDENT_STEM}.ipynb", as_version=4)
    nbformat.write(release.student_notebook(instructor, STUDENT_STEM),
                   root / "student" / f"{STUDENT_STEM}.ipynb")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    server = LabServer(root_dir=root, work_dir=root / ".server")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if server.log_path.exists():
            shutil.copyfile(server.log_path, SCREENSHOTS / "jupyter-lab.log")


# --------------------------------------------------------------------------- page helpers


def _menu(page: Any, top: str, item: str) -> None:
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


# The kernel of the notebook at ``path`` is connected and idle.  (The toolbar's execution
# indicator cannot tell: it says "idle" from the start, before the kernel has started, and
# a Run All sent then runs nothing.)
_KERNEL_IDLE = """path => Array.from(window.jupyterapp ? jupyterapp.shell.widgets('main') : [])
    .some(w => w.context && w.context.path === path && w.sessionContext
               && w.sessionContext.kernelDisplayStatus === 'idle')"""


def _open_notebook(page: Any, lab: LabServer, relpath: str, n_cells: int) -> None:
    """Open ``relpath`` in a fresh workspace, wait for an idle kernel and every cell attached."""
    page.goto(lab.url(f"/lab/tree/{relpath}?reset"))
    page.wait_for_selector(f'{PANEL} .jp-Notebook-ExecutionIndicator', timeout=90_000)
    page.wait_for_function(_KERNEL_IDLE, arg=relpath, timeout=90_000)
    # Fold the file browser away: more room for the notebook in screenshots.
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
    _attach_all_cells(page, n_cells)


def _attach_all_cells(page: Any, n_cells: int) -> None:
    """The windowed notebook attaches cells as they scroll by: scroll until all are in the DOM."""
    try:
        page.wait_for_function(f"""n => {{
            const p = document.querySelector('{PANEL}');
            const outer = p.querySelector('.jp-WindowedPanel-outer');
            outer.scrollTop = outer.scrollHeight;
            return p.querySelectorAll('.jp-Cell').length >= n; }}""",
            arg=n_cells, timeout=60_000, polling=200)
    except Exception as exc:  # playwright's TimeoutError
        n = page.evaluate(f"() => document.querySelectorAll('{PANEL} .jp-Cell').length")
        raise AssertionError(f"only {n} of {n_cells} cells appeared in the notebook panel") from exc
    page.evaluate(f"() => {{ document.querySelector('{PANEL} .jp-WindowedPanel-outer').scrollTop = 0; }}")


def _cell(page: Any, index: int) -> Any:
    return page.locator(f'{PANEL} .jp-Cell[data-windowed-list-index="{index}"]')


# Clear Outputs is shown: no figure, every code cell's prompt empty ("[ ]:").
_CLEARED = f"""() => !document.querySelector('{PANEL} .jp-RenderedImage img')
    && [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')]
        .every(e => !/\\*|\\d/.test(e.textContent))"""

# Run All has reached the kernel: a code cell is queued (*) or has run (a number).
_RUN_STARTED = f"""() => [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')]
    .some(e => /\\*|\\d/.test(e.textContent))"""

_RUN_FINISHED = f"""() => {{
    const p = document.querySelector('{PANEL}');
    const prompts = [...p.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
    return p.querySelector('.jp-Notebook-ExecutionIndicator').dataset.status === 'idle'
        && !prompts.some(t => t.includes('*'));
}}"""

_STATE = f"""() => {{
    const p = document.querySelector('{PANEL}');
    const text = e => (e.innerText || e.textContent || '').trim();
    const cells = [...p.querySelectorAll('.jp-Cell')];
    return {{
        n_cells: cells.length,
        prompts: [...p.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(text),
        errors: [...p.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(e => text(e).slice(-4000)),
        images: [...p.querySelectorAll('.jp-RenderedImage img')]
            .map(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0),
        sliders: p.querySelectorAll('.jupyter-widgets.widget-slider').length,
        widget_problems: [...p.querySelectorAll('.jupyter-widgets')].map(text)
            .filter(t => /Error displaying widget|Loading widget|model not found/.test(t)),
        math: Object.fromEntries(cells.filter(c => c.classList.contains('jp-MarkdownCell')).map(c =>
            [c.dataset.windowedListIndex,
             c.querySelectorAll('.jp-RenderedMarkdown mjx-container').length])),
    }};
}}"""


def _image_bytes(cell: Any) -> bytes:
    """PNG bytes of the (single) image in a cell's output, decoded from its data: URI."""
    src = cell.locator(".jp-RenderedImage img").first.get_attribute("src") or ""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), f"figure is not an inline PNG: {src[:40]!r}"
    return base64.b64decode(src[len(prefix):])


# The notebook panel shows its scroll position: every cell in view is laid out and its content
# rendered (not skipped by the ``content-visibility: auto`` of JupyterLab's windowing).
_IN_VIEW_RENDERED = f"""() => {{
    const outer = document.querySelector('{PANEL} .jp-WindowedPanel-outer');
    const view = outer.getBoundingClientRect();
    return [...outer.querySelectorAll('.jp-Cell')].every(c => {{
        const r = c.getBoundingClientRect();
        return r.bottom <= view.top || r.top >= view.bottom || [...c.children]
            .every(e => !e.checkVisibility() || e.checkVisibility({{contentVisibilityAuto: true}}));
    }});
}}"""


def _screenshot_whole_notebook(page: Any, path: Path) -> None:
    """Screenshot the whole notebook: the viewport grown to its height, in parts of at most
    MAX_SCREENSHOT_HEIGHT pixels (``path``, then ``<stem>-part2.png``, ...)."""
    outer = f"document.querySelector('{PANEL} .jp-WindowedPanel-outer')"
    height = int(page.evaluate(f"() => {outer}.scrollHeight"))
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(height + 200, MAX_SCREENSHOT_HEIGHT)})
    client = int(page.evaluate(f"() => {outer}.clientHeight"))
    for part, top in enumerate(range(0, max(height - client, 0) + 1, max(client, 1)), start=1):
        page.evaluate(f"() => {{ {outer}.scrollTop = {top}; }}")
        page.wait_for_function(_IN_VIEW_RENDERED)
        page.screenshot(path=str(path if part == 1 else path.with_name(f"{path.stem}-part{part}.png")))
    page.set_viewport_size({"width": width, "height": 1000})


def _move_slider(page: Any, cell: Any, expect_figures: int) -> tuple[str, str]:
    """Press → on the widget's first slider; wait for its figure to be redrawn. Returns readouts."""
    before_src = cell.locator(".jp-RenderedImage img").first.get_attribute("src")
    before = _image_bytes(cell)
    readout = cell.locator(".widget-slider .widget-readout").first
    handle = cell.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    old_value = (readout.text_content() or "").strip()
    assert old_value, "the slider shows no value"
    handle.focus()
    page.keyboard.press("ArrowRight")
    try:  # the figure is redrawn: as many figures as before, the first one a new picture
        page.wait_for_function(
            """([c, n, src]) => { const imgs = c.querySelectorAll('.jp-RenderedImage img');
                return imgs.length === n && imgs[0].getAttribute('src') !== src; }""",
            arg=[cell.element_handle(), expect_figures, before_src], timeout=60_000)
    except Exception as exc:  # playwright's TimeoutError
        raise AssertionError(f"moving the slider from {old_value} did not change the figure within 60 s") from exc
    assert cell.locator(".jp-RenderedImage img").count() == expect_figures
    after = _image_bytes(cell)
    assert after != before, "the redrawn figure is the same picture"
    new_value = (readout.text_content() or "").strip()
    assert new_value != old_value, f"the slider readout stayed at {old_value}"
    assert after[:8] == b"\x89PNG\r\n\x1a\n" and len(after) > 1000, "the redrawn figure is not a PNG"
    return old_value, new_value


# --------------------------------------------------------------------------- tests


# Every fetch() of the page, "METHOD url", recorded when it is called (JupyterLab's REST calls
# all go through fetch).
_RECORD_FETCHES = """window.bncourseFetches = [];
const bncourseFetch = window.fetch;
window.fetch = function (input, init) {
    const method = (init && init.method) || (input instanceof Request ? input.method : 'GET');
    window.bncourseFetches.push(method.toUpperCase() + ' ' + (input instanceof Request ? input.url : String(input)));
    return bncourseFetch.apply(this, arguments);
};"""
# The plugin's config section: its id without the non-word characters.
_ANNOUNCEMENTS_CONFIG = "/api/config/jupyterlabapputilsextensionannouncements"

# Whether JupyterLab's announcements plugin has decided about news and update checks.  It
# decides once the app is restored and its settings and config section are loaded, and in
# the same callback, before it fetches anything, starts to record dismissed "news"
# notifications in its config section (a PATCH).  So: emit and dismiss a silent news
# notification (autoClose 0: no toast) until that PATCH is sent; from then on any news or
# update request the plugin makes has been made.
_ANNOUNCEMENTS_DECIDED = f"""async () => {{
    const app = window.jupyterapp;
    if (!app || !app.commands.hasCommand('apputils:notify')) return false;
    const id = await app.commands.execute('apputils:notify', {{message: 'bncourse test probe',
        options: {{autoClose: 0, data: {{id: 'bncourse-test-probe', tags: ['news']}}}}}});
    await app.commands.execute('apputils:dismiss-notification', {{id}});
    return window.bncourseFetches.some(f => f.startsWith('PATCH ') && f.includes('{_ANNOUNCEMENTS_CONFIG}'));
}}"""


def _fulfill_config_patch(route: Any) -> None:
    """Answer a config PATCH (the probe's) in the browser: the server would write it into the
    repo's .jupyter/config."""
    if route.request.method == "PATCH":
        route.fulfill(status=200, content_type="application/json", body="{}")
    else:
        route.fallback()


def test_lab_starts_offline_and_quiet(lab: LabServer, chromium: Any) -> None:
    context, page, log = watch_page(chromium, viewport=(1400, 1000))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.add_init_script(_RECORD_FETCHES)
    page.route("**/api/config/**", _fulfill_config_patch)
    try:
        page.goto(lab.url("/lab?reset"))
        page.wait_for_selector("#jp-main-statusbar", timeout=90_000)
        page.wait_for_selector(".jp-DirListing-item", timeout=30_000)  # the file browser is listed
        page.screenshot(path=str(SCREENSHOTS / "start.png"))
        page.wait_for_function(_ANNOUNCEMENTS_DECIDED, timeout=60_000, polling=100)
        log.assert_clean()
        asked = [u for u in requests + page.evaluate("() => window.bncourseFetches")
                 if re.search(r"/lab/api/(news|update)", u)]
        assert not asked, f"the front end asked the server for news or updates: {asked}"
        popups = page.evaluate("() => [...document.querySelectorAll('.jp-Dialog, .Toastify__toast')]"
                               ".map(e => (e.innerText || '').slice(0, 200))")
        assert not popups, f"JupyterLab showed a popup at start: {popups}"
        notification = lab.api("GET", "/lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert notification["settings"].get("checkForUpdates") is False, notification["settings"]
        assert notification["settings"].get("fetchNews") == "false", notification["settings"]
        errors = [ln for ln in lab.log_text().splitlines() if ln.startswith("[E ") or "Traceback" in ln]
        assert not errors, "jupyter lab logged errors at start:\n" + "\n".join(errors)
        # nbgrader is a dev dependency (the export's tests); its menus and server pages are not
        # the course's: the project's Jupyter config turns them off in `make lab`.
        menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
        assert "File" in menus and not [m for m in menus if "nbgrader" in m.lower()], menus
        active = page.evaluate("() => window.jupyterapp.listPlugins()"
                               ".filter(p => p.includes('nbgrader') && window.jupyterapp.isPluginActivated(p))")
        assert active == [], active
        with pytest.raises(urllib.error.HTTPError) as formgrader:
            lab.api("GET", "/formgrader")
        assert formgrader.value.code == 404
    finally:
        context.close()


@dataclass
class StartedRun:
    """A notebook opened in its own browser context, its Run All sent to the kernel."""

    notebook: Path
    nb: Any
    context: Any
    page: Any
    log: Any
    error: Exception | None = None  # why opening it or starting Run All failed


class RunAllPipeline:
    """Runs the selected instructor notebooks two at a time.

    The course notebooks fix torch to one thread, so one kernel keeps one of the two cores
    busy: while a test waits for and checks its notebook, the next selected notebook is
    already opened and running in a second browser context (its own kernel).
    """

    def __init__(self, lab: LabServer, browser: Any, order: list[Path]) -> None:
        self.lab, self.browser, self.order = lab, browser, order
        self.started: dict[Path, StartedRun] = {}

    def start(self, notebook: Path) -> StartedRun:
        nb = nbformat.read(notebook, as_version=4)
        context, page, log = watch_page(self.browser, viewport=(1400, 1000))
        run = StartedRun(notebook, nb, context, page, log)
        self.started[notebook] = run
        try:
            _open_notebook(page, self.lab, f"notebooks/{notebook.name}", len(nb.cells))
            _menu(page, "Edit", "Clear Outputs of All Cells")
            try:
                page.wait_for_function(_CLEARED)
            except Exception as exc:  # playwright's TimeoutError
                raise AssertionError("outputs were not cleared") from exc
            _menu(page, "Run", "Run All Cells")
            try:
                page.wait_for_function(_RUN_STARTED, timeout=60_000)
            except Exception as exc:  # playwright's TimeoutError
                raise AssertionError("Run All Cells did not start running the notebook") from exc
        except Exception as exc:  # reported by the notebook's own test (take)
            run.error = exc
        return run

    def take(self, notebook: Path) -> StartedRun:
        """The run of ``notebook`` (started now if it was not), after starting the next one."""
        run = self.started.get(notebook) or self.start(notebook)
        later = self.order[self.order.index(notebook) + 1:] if notebook in self.order else []
        if later and later[0] not in self.started:
            self.start(later[0])  # its own test reports a failure to start
        if run.error is not None:
            raise run.error
        return run

    def finish(self, run: StartedRun) -> None:
        """Close the run's browser context and shut its kernel down."""
        self.started.pop(run.notebook, None)
        run.context.close()
        self.lab.shutdown_sessions(f"notebooks/{run.notebook.name}")

    def close(self) -> None:
        for run in list(self.started.values()):
            self.finish(run)


@pytest.fixture(scope="module")
def pipeline(lab: LabServer, chromium: Any, request: pytest.FixtureRequest) -> Iterator[RunAllPipeline]:
    selected = [item.callspec.params["notebook"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_instructor_notebook_runs_in_lab"
                and hasattr(item, "callspec")]
    runs = RunAllPipeline(lab, chromium, selected)
    try:
        yield runs
    finally:
        runs.close()
    leftover = [x["path"] for x in lab.api("GET", "/api/sessions") or []]
    assert not leftover, f"kernels left running after the notebook tests: {leftover}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_instructor_notebook_runs_in_lab(pipeline: RunAllPipeline, notebook: Path) -> None:
    expect: NotebookExpect = expected_outputs(nbformat.read(notebook, as_version=4))
    run = pipeline.take(notebook)
    page, nb = run.page, run.nb
    try:
        page.wait_for_function(_RUN_FINISHED, timeout=RUN_ALL_TIMEOUT_MS, polling=500)
        _attach_all_cells(page, len(nb.cells))
        # MathJax typesets asynchronously; images decode asynchronously.
        math_expected = {str(k): v for k, v in expect.math_cells.items()}
        with contextlib.suppress(Exception):  # a timeout here: the assertions below say what is missing
            page.wait_for_function(
                f"""() => {{ const s = ({_STATE})(); const want = {json.dumps(math_expected)};
                    return Object.entries(want).every(([k, v]) => s.math[k] >= v)
                        && s.images.every(ok => ok); }}""",
                timeout=30_000, polling=500)
        state = page.evaluate(_STATE)
        _screenshot_whole_notebook(page, SCREENSHOTS / f"{notebook.stem}.png")

        assert not state["errors"], f"{notebook.name}: error output after Run All:\n" + "\n---\n".join(state["errors"])
        numbered = [p for p in state["prompts"] if re.fullmatch(r"\[\d+\]:", p)]
        assert len(numbered) == expect.n_code_cells, (
            f"{notebook.name}: {len(numbered)} of {expect.n_code_cells} code cells ran: {state['prompts']}")
        assert len(state["images"]) == expect.n_figures, (
            f"{notebook.name}: {len(state['images'])} figures rendered, the executed notebook has "
            f"{expect.n_figures}")
        assert all(state["images"]), f"{notebook.name}: a figure did not decode"
        unrendered = {k: (state["math"].get(k, 0), v) for k, v in math_expected.items()
                      if state["math"].get(k, 0) != v}
        assert not unrendered, (f"{notebook.name}: markdown cells whose LaTeX was not all typeset "
                                f"(cell: (rendered, expected)): {unrendered}")
        assert state["sliders"] == expect.n_sliders, (
            f"{notebook.name}: {state['sliders']} sliders drawn, the widgets have {expect.n_sliders}")
        assert not state["widget_problems"], f"{notebook.name}: {state['widget_problems']}"

        for widget in expect.widgets:
            if widget.sliders and widget.figures:
                cell = _cell(page, widget.cell)
                _move_slider(page, cell, widget.figures)
                cell.screenshot(path=str(SCREENSHOTS / f"{notebook.stem}-widget.png"))
        run.log.assert_clean()
    finally:
        pipeline.finish(run)


def _student_cells(nb: Any) -> tuple[int, int, int]:
    """Indices of the imports cell, the STUDENT_EXERCISE cell and its check cell."""
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    imports = next(i for i, t in enumerate(tags) if "imports" in t)
    check = next(i for i, c in enumerate(nb.cells)
                 if "check" in tags[i] and f'check("{STUDENT_EXERCISE}"' in c.source)
    exercise = max(i for i in range(check) if "exercise" in tags[i])
    return imports, exercise, check


def _run_cell(page: Any, index: int) -> str:
    """Select cell ``index`` (click its prompt), Shift+Enter, wait until it ran; its output text."""
    cell = _cell(page, index)
    cell.scroll_into_view_if_needed()
    prompt = cell.locator(".jp-InputPrompt")
    before = prompt.text_content() or ""
    prompt.click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        f"""() => {{ const c = document.querySelector('{PANEL} .jp-Cell[data-windowed-list-index="{index}"]');
            const t = c.querySelector('.jp-InputPrompt').textContent.trim();
            return /^\\[\\d+\\]:$/.test(t) && t !== {json.dumps(before.strip())}; }}""",
        timeout=120_000, polling=250)
    return str(cell.locator(".jp-Cell-outputArea").text_content() or "")


def test_student_fills_exercise_and_check_passes(lab: LabServer, chromium: Any) -> None:
    nb = nbformat.read(lab.root_dir / "student" / f"{STUDENT_STEM}.ipynb", as_version=4)
    imports, exercise, check = _student_cells(nb)
    stub = nb.cells[exercise].source
    assert "raise NotImplementedError" in stub, "the student edition still has a solution"
    context, page, log = watch_page(chromium, viewport=(1400, 1000))
    try:
        _open_notebook(page, lab, f"student/{STUDENT_STEM}.ipynb", len(nb.cells))
        _run_cell(page, imports)
        _run_cell(page, exercise)
        first = _run_cell(page, check)
        assert "not implemented yet" in first, f"the empty exercise's check said: {first!r}"

        # Type the solution over the ``raise NotImplementedError(...)`` line, key by key.
        line = _cell(page, exercise).locator(".cm-line", has_text="raise NotImplementedError")
        line.click()
        page.keyboard.press("End")
        page.keyboard.press("Shift+Home")  # to the first non-blank: the indentation stays
        for i, text in enumerate(STUDENT_SOLUTION):
            if i:
                page.keyboard.press("Enter")  # the editor indents the new line
            page.keyboard.type(text)
        typed = "\n".join(_cell(page, exercise).locator(".cm-content .cm-line").all_text_contents())
        indent = re.search(r"^( *)raise NotImplementedError", stub, re.M)
        assert indent is not None
        want = re.sub(r"^ *raise NotImplementedError\(.*\)$",
                      "\n".join(indent.group(1) + s for s in STUDENT_SOLUTION), stub, flags=re.M)
        assert typed.strip() == want.strip(), f"the editor holds:\n{typed}\nexpected:\n{want}"

        _run_cell(page, exercise)
        second = _run_cell(page, check)
        _cell(page, check).screenshot(path=str(SCREENSHOTS / f"student-{STUDENT_STEM}-check.png"))
        assert "All cases match the expected outputs" in second and "10/10 points" in second, (
            f"the check of the typed solution said: {second!r}")
        log.assert_clean()
    finally:
        context.close()
        lab.shutdown_sessions(f"student/{STUDENT_STEM}.ipynb")
