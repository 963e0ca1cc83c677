"""งานของฉัน in a real browser: district staff see the open items of two directives on one page,
mark one of each done there, and each directive's board shows it; the page and the province's
directives page fit a 390 px phone.

Headless Chromium as in tests/e2e/test_browser.py, over the demo database with the Department's
letter launched on top of Sa Kaeo's own: two active directives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlmodel import Session

from domain.directive import load_directive
from tests.conftest import NOW
from tests.db.test_national import NATIONAL
from tests.e2e.conftest import served, sign_in
from tests.web.helpers import CLOCK
from tidtam.app.national import launch_national
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser

PROVINCIAL = "fy2567-sakaeo-volunteer-centers"
COPY = "fy2567-national-volunteer-centers-p27"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    engine = db.engine_for(f"sqlite:///{tmp_path_factory.mktemp('e2e-my') / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    with Session(engine) as session:
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
    app = create_app(Settings(demo=True, _env_file=None), engine, clock=FixedClock(CLOCK))
    with served(app, "uvicorn-e2e-my") as url:  # 18 July 2567: G1 and A1 overdue, the rest ahead
        yield url
    engine.dispose()


def test_staff_mark_one_item_of_each_directive_on_my_work_and_each_board_shows_it(
        desktop_page, base_url, screenshot):
    from playwright.sync_api import expect

    page = desktop_page
    sign_in(page, base_url, "staff-2703")
    expect(page).to_have_url(f"{base_url}/my")
    expect(page.locator("h1")).to_contain_text("งานของฉัน")
    for slug in (PROVINCIAL, COPY):
        expect(page.locator(f'li.item[data-directive="{slug}"]').first).to_be_visible()
    screenshot(page, "my-work.png", full_page=True)
    for slug in (PROVINCIAL, COPY):
        item = page.locator(f'li.item[data-step="G3"][data-directive="{slug}"]')
        expect(item).to_have_count(1)
        item.locator("summary").click()
        item.locator("textarea").fill(f"ประชุมแล้ว ({slug})")
        item.locator("form button[type=submit]").click()
        expect(page).to_have_url(re.compile(rf"{re.escape(base_url)}/my(#items-title)?$"))
        expect(page.locator(".flash")).to_contain_text("บันทึกแล้ว")
        expect(page.locator(f'li.item[data-step="G3"][data-directive="{slug}"]')).to_have_count(0)
    # The other directive's G3 and everything else are still open on the page.
    expect(page.locator('li.item[data-step="G2"]')).to_have_count(2)
    page.locator("form.logout button").click()

    sign_in(page, base_url, "coordinator")
    expect(page).to_have_url(f"{base_url}/provinces/27/directives")
    expect(page.locator('li.directive-card[data-status="active"]')).to_have_count(2)
    screenshot(page, "directives.png", docs=True, full_page=True)
    for slug in (PROVINCIAL, COPY):
        page.locator(f'li.directive-card[data-directive="{slug}"] h3 a').click()
        expect(page).to_have_url(f"{base_url}/directives/{slug}")
        expect(page.locator('tr[data-district="2703"] td[data-step="G3"]')).to_have_attribute(
            "data-state", "done")
        page.goto(f"{base_url}/provinces/27/directives")


@pytest.mark.parametrize(("username", "path"), [("staff-2705", "/my"),
                                                ("coordinator", "/provinces/27/directives")])
def test_my_work_and_the_directives_page_fit_a_phone(phone_page, base_url, screenshot,
                                                     username, path):
    """On a 390 px phone neither page scrolls sideways."""
    page = phone_page
    sign_in(page, base_url, username)
    page.wait_for_url(f"{base_url}{path}")
    page.locator("details summary").first.click()  # an open form must fit too
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    screenshot(page, f"{path.strip('/').replace('/', '-')}-phone.png", full_page=True)
