"""The form that helps, as only a browser shows it (issue 15, item 3), on a 390×844 phone: no
error after load, a field marked once touched, the Thai date's three selects saved as an ISO
date, one save status that agrees with the badge, and the count boxes aligned."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from models.directive import get_directive_by_slug
from models.report import get_report
from tests.conftest import NOW
from tests.e2e.conftest import served, sign_in
from tests.web.helpers import CLOCK, SLUG
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser

FORM = f"/directives/{SLUG}/districts/2706/report"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, object]]:
    folder = tmp_path_factory.mktemp("e2e-form-help")
    engine = db.engine_for(f"sqlite:///{folder / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    settings = Settings(data_dir=folder, demo=True, _env_file=None)
    with served(create_app(settings, engine, clock=FixedClock(CLOCK)), "uvicorn-e2e-form-help") as url:
        yield url, engine
    engine.dispose()


def stored_date(engine) -> str:
    with Session(engine) as session:
        directive = get_directive_by_slug(session, SLUG)
        return get_report(session, directive.id, "2706").content["sessions"][0]["held_on"]


def test_the_form_opens_quiet_marks_what_was_touched_and_saves_the_thai_date(phone_page, server):
    from playwright.sync_api import expect

    base_url, engine = server
    page = phone_page
    sign_in(page, base_url, "staff-2706")
    page.goto(f"{base_url}{FORM}")
    card = page.locator("#sessions .session").first
    expect(page.locator("#report-status")).to_have_text("ยังไม่ได้เริ่ม")
    expect(page.locator(".field-msg.error")).to_have_count(0)
    expect(page.locator(".findings.errors")).to_have_count(0)

    card.locator('.js-date-part[data-part="d"]').select_option("20")
    card.locator('.js-date-part[data-part="m"]').select_option("7")
    card.locator('.js-date-part[data-part="y"]').select_option("2567")
    card.locator('[data-name="center"]').focus()   # leaving the date for the center: touched
    card.locator('[data-name="place"]').focus()    # the center left empty: touched
    status = page.locator("#save-status")
    expect(status).to_have_attribute("data-state", "saved", timeout=15000)
    expect(status).to_have_text("บันทึกแล้ว เวลา 10:00 น.")
    expect(page.locator("#report-status")).to_have_text("ร่าง")  # one story: saved, a draft
    assert stored_date(engine) == "2024-07-20"

    expect(card.locator('[data-msgs="sessions[0].center"] .field-msg.error')).to_have_text("ต้องระบุ")
    expect(card.locator('[data-msgs="sessions[0].kind"] .field-msg')).to_have_count(0)  # untouched
    expect(page.locator(".findings.errors")).to_have_count(0)  # the list waits for a submit

    boxes = [box.bounding_box() for box in card.locator("[data-category]").all()]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[2]["y"] == boxes[3]["y"]  # labels wrap; boxes align
    assert all(b["x"] + b["width"] <= 390 for b in boxes)
