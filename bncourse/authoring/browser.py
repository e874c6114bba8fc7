"""Headless Debian Chromium driven by playwright, with the network cut off.

Used by ``bncourse slides --pdf`` and by the browser tests (slides, JupyterLab).  Nothing
here downloads a browser: it runs the Chromium that Debian installs (``apt-get install
chromium``, ``/usr/bin/chromium``), with the flags that keep it from phoning home, and
aborts every request that leaves the machine.  Playwright is imported by the caller, so
``import bncourse.authoring.browser`` costs nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bncourse.errors import BNCourseError

__all__ = [
    "CHROMIUM_ARGS",
    "INSTALL_HINT",
    "BrowserMissingError",
    "block_network",
    "chromium_executable",
    "is_local_url",
    "launch_chromium",
]

#: Flags for a quiet headless Chromium on a machine with no network (run as root, so no
#: sandbox).  Without the background-networking flags Chromium keeps trying to reach its
#: update and sync servers.  Playwright gives each launch a new, empty profile directory.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
)

INSTALL_HINT = (
    "install Debian's Chromium with `sudo apt-get update && sudo apt-get install -y chromium` "
    "(it provides /usr/bin/chromium), or point BNCOURSE_CHROMIUM at a Chromium binary"
)

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about", "chrome-error"})


class BrowserMissingError(BNCourseError):
    """Chromium or the playwright package is not installed."""


def chromium_executable() -> Path:
    """Path of the Chromium binary: ``$BNCOURSE_CHROMIUM``, else Debian's ``/usr/bin/chromium``.

    Raises :class:`BrowserMissingError` (with the install command) when there is none.
    """
    candidates: list[str] = []
    if os.environ.get("BNCOURSE_CHROMIUM"):
        candidates.append(os.environ["BNCOURSE_CHROMIUM"])
    candidates.append("/usr/bin/chromium")
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            candidates.append(found)
    for c in candidates:
        p = Path(c)
        if p.is_file() and os.access(p, os.X_OK):
            return p
    raise BrowserMissingError(f"no Chromium found (looked at {', '.join(candidates)}): "
                              f"{INSTALL_HINT}")


def is_local_url(url: str) -> bool:
    """True for URLs that stay on this machine: file:, data:, blob:, about: and loopback http(s)."""
    parts = urlsplit(url)
    if parts.scheme in _LOCAL_SCHEMES:
        return True
    if parts.scheme in ("http", "https", "ws", "wss"):
        host = (parts.hostname or "").lower()
        return host in _LOCAL_HOSTS or host.startswith("127.")
    return False


def launch_chromium(playwright: Any, *, extra_args: tuple[str, ...] = (), **launch_kwargs: Any) -> Any:
    """Launch headless Debian Chromium through a ``sync_playwright()`` handle.

    Args:
        playwright: the object ``sync_playwright().start()`` (or the ``with`` target) gives.
        extra_args: more command-line flags, appended to :data:`CHROMIUM_ARGS`.
        launch_kwargs: passed on to ``playwright.chromium.launch`` (e.g. ``timeout``).

    Returns the playwright ``Browser``.  Raises :class:`BrowserMissingError` if there is no
    Chromium binary.
    """
    exe = chromium_executable()
    return playwright.chromium.launch(
        executable_path=str(exe),
        headless=True,
        args=[*CHROMIUM_ARGS, *extra_args],
        **launch_kwargs,
    )


def block_network(context: Any, blocked: list[str]) -> None:
    """Abort every request of a playwright ``BrowserContext`` that would leave the machine.

    Each aborted URL is appended to ``blocked``, so a test can fail on it (a page that works
    offline makes no such request).  file:, data: and loopback URLs go through.  WebSocket
    connections to other hosts are counted too (they are refused by the machine anyway).
    """

    def _route(route: Any) -> None:
        url = route.request.url
        if is_local_url(url):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", _route)

    def _on_page(page: Any) -> None:
        page.on("websocket", lambda ws: None if is_local_url(ws.url) else blocked.append(ws.url))

    context.on("page", _on_page)
