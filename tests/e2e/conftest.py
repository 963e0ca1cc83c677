"""The browser tests' one Chromium, their pages, screenshots, and the app served on a free port.

One headless Chromium (Debian's /usr/bin/chromium, through Playwright) for the whole session.
With CI=true a missing Chromium is a failure, never a skip (``unavailable``).

While a sync Playwright is open, the main thread counts as running an asyncio loop (Playwright
marks it so between calls), so ``asyncio.run`` in any other test would fail. The tests that use
the browser are therefore run after all others (``pytest_collection_modifyitems`` below): the
session's Chromium is opened by the first of them and closed at the end of the session.

Screenshots go to the test's own temporary folder. ``TIDTAM_UPDATE_SCREENSHOTS=1`` also writes the
ones the README shows into docs/ (off by default: a test run never changes the repository).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.conftest import unavailable
from tests.helpers.poll import wait_until
from tidtam.demo.province import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "th-TH"}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "locale": "th-TH"}
DOCS = ROOT / "docs"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the browser run last, in their own order (see the module's text)."""
    uses = [item for item in items if "browser" in getattr(item, "fixturenames", ())]
    if uses:
        later = set(uses)
        items[:] = [item for item in items if item not in later] + uses


@pytest.fixture(scope="session")
def browser():
    """The session's headless Chromium."""
    if not CHROMIUM.exists():
        unavailable(f"chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser, options: dict):
    context = browser.new_context(**options)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def desktop_page(browser):
    """A page in a fresh context (no cookies) at 1280×900, in Thai."""
    yield from _page(browser, DESKTOP)


@pytest.fixture
def phone_page(browser):
    """A page in a fresh context (no cookies) on a 390×844 phone, in Thai."""
    yield from _page(browser, PHONE)


@pytest.fixture
def phone_page_without_worker(browser):
    """As phone_page, with service workers blocked: Chromium's offline switch
    (``context.set_offline``) does not reach a service worker's own requests, so a test of the
    page's own offline copy must not have web/static/sw.js carry a save through behind its back
    (tests/e2e/test_offline_form.py tests the worker)."""
    yield from _page(browser, {**PHONE, "service_workers": "block"})


@pytest.fixture
def screenshot(tmp_path, update_screenshots) -> Callable[..., Path]:
    """``screenshot(page, "name.png", **options)``: saved under the test's tmp_path (returned);
    ``docs=True`` marks a picture the README shows, also written to docs/ when
    TIDTAM_UPDATE_SCREENSHOTS=1."""
    def take(page, name: str, *, docs: bool = False, **options) -> Path:
        path = tmp_path / name
        page.screenshot(path=str(path), **options)
        assert path.stat().st_size > 0
        if docs and update_screenshots:
            (DOCS / name).write_bytes(path.read_bytes())
        return path

    return take


# --- the app under uvicorn ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).json() == {"ok": True}
    except (httpx.HTTPError, ValueError):
        return False


@contextmanager
def served(app, name: str = "uvicorn-e2e") -> Iterator[str]:
    """The app under uvicorn in a thread on a free port; yields its URL once /healthz answers."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), timeout=20, interval=0.1,
                   message=f"the app did not start on {url}")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.locator("form.stack button[type=submit]").click()
