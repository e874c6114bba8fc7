"""Shared helpers for the browser tests (pytest marker ``browser``): headless Debian Chromium
driven by playwright, with every request that would leave the machine aborted and counted.

Usage in a test module::

    from tests.browser_helpers import chromium_browser_session, watch_page

    @pytest.fixture(scope="module")
    def chromium():
        with chromium_browser_session() as browser:
            yield browser

    def test_page(chromium):
        context, page, log = watch_page(chromium)
        page.goto(url)
        ...
        log.assert_clean()

If Chromium or playwright is missing the tests are skipped with the install command, unless
``BNCOURSE_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from bncourse.authoring.browser import (
    CHROMIUM_ARGS,
    INSTALL_HINT,
    BrowserMissingError,
    block_network,
    chromium_executable,
    is_local_url,
    launch_chromium,
)

__all__ = [
    "CHROMIUM_ARGS",
    "REQUIRE_ENV",
    "PageLog",
    "block_network",
    "chromium_browser_session",
    "is_local_url",
    "launch_chromium",
    "require_browser",
    "watch_page",
]

REQUIRE_ENV = "BNCOURSE_REQUIRE_BROWSER"

# Requests that fail without meaning anything: MathJax 2 declares a dummy
# ``@font-face {src: url('about:blank')}`` ("MathJax_Blank") that Chromium refuses on file:.
# MathJax 2's combined config also declares @font-face rules for its TeX fonts (used only
# for native MathML); jupyter-server-mathjax ships only the STIX-Web fonts, which render the
# math, so Chromium's probe of .../fonts/HTML-CSS/TeX/otf/*.otf fails harmlessly.
IGNORED_FAILURES = ("about:blank",)
IGNORED_FAILURE_PARTS = ("/mathjax/fonts/HTML-CSS/TeX/otf/",)


def _skip_or_fail(msg: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{msg} ({REQUIRE_ENV}=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(msg)


def require_browser() -> Any:
    """Return playwright's ``sync_playwright``; skip (or fail, see module doc) if unusable."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("python playwright is not installed: `.venv/bin/pip install playwright` "
                      "(no `playwright install` needed: the tests use Debian's chromium)")
    try:
        chromium_executable()
    except BrowserMissingError as exc:
        _skip_or_fail(f"browser test needs Chromium: {INSTALL_HINT} ({exc})")
    return sync_playwright


@contextmanager
def chromium_browser_session(**launch_kwargs: Any) -> Iterator[Any]:
    """A launched headless Chromium (playwright ``Browser``) for the duration of the block."""
    sync_playwright = require_browser()
    with sync_playwright() as pw:
        browser = launch_chromium(pw, **launch_kwargs)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page did that a test may want to fail on."""

    blocked: list[str] = field(default_factory=list)  # non-local requests (aborted)
    failed: list[str] = field(default_factory=list)  # local requests that failed (missing files)
    page_errors: list[str] = field(default_factory=list)  # uncaught JavaScript exceptions
    console_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [f"network request to {u}" for u in self.blocked]
        out += [f"failed request {u}" for u in self.failed
                if u not in IGNORED_FAILURES and not any(p in u for p in IGNORED_FAILURE_PARTS)]
        out += [f"page error: {e}" for e in self.page_errors]
        return out

    def assert_clean(self) -> None:
        problems = self.problems()
        if problems:
            raise AssertionError("page was not clean:\n  " + "\n  ".join(problems))


def watch_page(browser: Any, *, viewport: tuple[int, int] = (1280, 800)) -> tuple[Any, Any, PageLog]:
    """A new context and page with the network cut off and everything logged.

    Returns ``(context, page, log)``; close the context when done.
    """
    log = PageLog()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    block_network(context, log.blocked)
    page = context.new_page()
    page.on("requestfailed", lambda r: None if not is_local_url(r.url) else log.failed.append(r.url))
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    return context, page, log
