"""A real browser against the real app: district staff mark a step done, the coordinator sees it.

Headless Chromium (Debian's /usr/bin/chromium) through Playwright; the app runs under uvicorn
in a background thread on a free port over a demo SQLite database.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.conftest import NOW, unavailable
from tidtam.demo.province import DEMO_PASSWORD
from tidtam.infra import db
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOT = Path("/tmp/board.png")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    """The app, served by uvicorn in a thread until the module's tests are done."""
    engine = db.engine_for(f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    app = create_app(Settings(demo=True, _env_file=None), engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url)
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def wait_until_healthy(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json() == {"ok": True}:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the app did not start on {url}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        unavailable("chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.locator("form.stack button[type=submit]").click()


def test_staff_mark_g1_done_and_the_coordinator_sees_it(browser, base_url):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="th-TH")
    page = context.new_page()

    sign_in(page, base_url, "staff-2703")
    expect(page).to_have_url(f"{base_url}/districts/2703")
    expect(page.locator("h1")).to_contain_text("อำเภอตาพระยา")
    g1 = page.locator('li[data-step="G1"]')
    expect(g1).to_have_class(re.compile(r"\boverdue\b"))
    g1.locator("summary").click()
    g1.locator("textarea").fill("ศึกษาแนวทางและแจ้งศูนย์ฯ ทุกแห่งแล้ว")
    g1.locator("form button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("บันทึกแล้ว")
    expect(g1).to_have_class(re.compile(r"\bdone\b"))
    expect(g1).to_contain_text("ศึกษาแนวทางและแจ้งศูนย์ฯ ทุกแห่งแล้ว")
    page.locator("form.logout button").click()
    expect(page).to_have_url(f"{base_url}/login")
    expect(page.locator(".flash")).to_contain_text("ออกจากระบบแล้ว")

    sign_in(page, base_url, "coordinator")
    expect(page).to_have_url(f"{base_url}/board")
    cell = page.locator('tr[data-district="2703"] td[data-step="G1"]')
    expect(cell).to_have_attribute("data-state", "done")
    expect(page.locator('tr[data-district="2703"] td.count')).to_have_text("1/12")
    expect(page.locator("table.board")).to_contain_text("ตาพระยา")
    expect(page.locator("thead")).to_contain_text("ส.ค. 2567")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    context.close()


def test_the_board_fits_a_phone(browser, base_url):
    """On a 390 px phone the page itself does not scroll sideways; only the table does."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, base_url, "coordinator")
    page.wait_for_url(f"{base_url}/board")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    page.screenshot(path="/tmp/board-phone.png")
    context.close()


def test_signed_out_browser_is_sent_to_login(browser, base_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/board")
    assert page.url == f"{base_url}/login?next=%2Fboard"
    context.close()
