"""A real browser against the real app: district staff mark a step done, the coordinator sees it.

Headless Chromium (Debian's /usr/bin/chromium) through Playwright (tests/e2e/conftest.py); the
app runs under uvicorn in a background thread on a free port over a demo SQLite database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import NOW
from tests.e2e.conftest import served, sign_in
from tidtam.infra import db
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    """The app, served by uvicorn in a thread until the module's tests are done."""
    engine = db.engine_for(f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    with served(create_app(Settings(demo=True, _env_file=None), engine)) as url:
        yield url
    engine.dispose()


def test_staff_mark_g1_done_and_the_coordinator_sees_it(desktop_page, base_url, screenshot):
    from playwright.sync_api import expect

    page = desktop_page
    sign_in(page, base_url, "staff-2703")
    expect(page).to_have_url(f"{base_url}/my")
    page.goto(f"{base_url}/directives/fy2567-sakaeo-volunteer-centers/districts/2703")
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
    expect(page).to_have_url(f"{base_url}/provinces/27/directives")
    page.goto(f"{base_url}/board")  # an old link: the one active directive's board
    expect(page).to_have_url(f"{base_url}/directives/fy2567-sakaeo-volunteer-centers")
    cell = page.locator('tr[data-district="2703"] td[data-step="G1"]')
    expect(cell).to_have_attribute("data-state", "done")
    expect(page.locator('tr[data-district="2703"] td.count .count-text')).to_have_text("1/12")
    expect(page.locator("table.board")).to_contain_text("ตาพระยา")
    expect(page.locator("table.board thead")).to_contain_text("ส.ค. 2567")
    screenshot(page, "board.png", full_page=True)  # the README's: make screenshots (docs/img/)


def test_the_board_fits_a_phone(phone_page, base_url, screenshot):
    """On a 390 px phone the page itself does not scroll sideways; only the table does."""
    page = phone_page
    sign_in(page, base_url, "coordinator")
    page.wait_for_url(f"{base_url}/provinces/27/directives")
    page.goto(f"{base_url}/directives/fy2567-sakaeo-volunteer-centers")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    screenshot(page, "board-phone.png")


def test_signed_out_browser_is_sent_to_login(desktop_page, base_url):
    page = desktop_page
    page.goto(f"{base_url}/board")
    assert page.url == f"{base_url}/login?next=%2Fboard"


def test_the_phone_menu_is_one_line_until_opened_and_then_shows_every_link(phone_page, base_url,
                                                                             screenshot):
    """At 390×844 the closed header is one line (≤ 64 px; it was about 200 with the links
    wrapped); a tap on เมนู / Menu shows every link, and each can be tapped."""
    from playwright.sync_api import expect

    page = phone_page
    sign_in(page, base_url, "coordinator")
    page.wait_for_url(f"{base_url}/provinces/27/directives")
    top = page.locator("header.top")
    links = top.locator("nav a")
    assert links.count() == 5
    assert top.bounding_box()["height"] <= 64
    for link in links.all():
        expect(link).to_be_hidden()
    expect(top.locator("form.logout button")).to_be_hidden()
    page.locator(".menu-button").click()
    for link in links.all():
        expect(link).to_be_visible()
        assert link.bounding_box()["height"] >= 32  # a finger-sized row
    expect(top.locator("form.logout button")).to_be_visible()
    screenshot(page, "menu-open.png")
    top.get_by_role("link", name="รายงาน").click()
    expect(page).to_have_url(re.compile(r"/reports$"))
    assert page.locator("header.top").bounding_box()["height"] <= 64  # closed again on the new page
