"""The outbox page on a 390 px phone in headless Chromium: one card per message, no sideways
scroll, the message opens on a tap (no script); and on a desktop, a table.

Over a fresh demo database with the messages of tests/web/test_outbox_page.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import NOW
from tests.e2e.conftest import served, sign_in
from tests.web.helpers import CLOCK
from tests.web.test_outbox_page import seed
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    engine = db.engine_for(f"sqlite:///{tmp_path_factory.mktemp('e2e-outbox') / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    seed(engine)
    app = create_app(Settings(demo=True, _env_file=None), engine, clock=FixedClock(CLOCK))
    with served(app, "uvicorn-e2e-outbox") as url:
        yield url
    engine.dispose()


def test_the_outbox_fits_a_phone_as_cards_and_opens_a_message_on_a_tap(phone_page, base_url,
                                                                       screenshot):
    from playwright.sync_api import expect

    page = phone_page
    sign_in(page, base_url, "coordinator")
    page.goto(f"{base_url}/outbox")
    rows = page.locator("table.outbox-messages tbody tr")
    expect(rows).to_have_count(6)
    assert page.locator("table.outbox-messages thead").bounding_box()["height"] <= 1  # cards
    message = rows.filter(has_text="k6-review-returned").locator("details")
    message.locator("summary").click()
    expect(message.locator("pre.message-body")).to_contain_text("เพิ่มรูปกิจกรรมครั้งที่ 3")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    screenshot(page, "outbox-phone.png", full_page=True)


def test_the_outbox_is_a_table_on_a_desktop(desktop_page, base_url, screenshot):
    page = desktop_page
    sign_in(page, base_url, "coordinator")
    page.goto(f"{base_url}/outbox?channel=line")
    assert page.locator("table.outbox-messages thead").bounding_box()["height"] > 10
    assert page.locator("table.outbox-messages tbody tr").count() == 2
    screenshot(page, "outbox-desktop.png", full_page=True)
