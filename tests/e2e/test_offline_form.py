"""The report form opens without a connection, and what is entered offline reaches the server
(issue 15, Done-when 2).

On a phone (390×844) staff-2706 opens the form and enters a first session; the connection drops
(``context.set_offline``); the reloaded form still opens, from the service worker's copy, with
that session in it; a second session (26 participants on 20 July 2567) and its photo are entered
and wait on the device, counted ("รอส่ง 2 รายการ"); the connection returns and the server has both;
the report is submitted; signing out leaves none of the person's pages on the device; and the
coordinator's board shows R1 submitted and A3 done from the report.

Headless Chromium against the real app under uvicorn on 127.0.0.1 (a secure context, as service
workers require), its clock at 10:00 on Tuesday 6 August 2567.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from models.directive import get_directive_by_slug
from models.report import ReportStatus, get_report, photos_of
from tests.conftest import NOW
from tests.e2e.conftest import PHONE, served, sign_in
from tests.e2e.test_report_browser import add_photos, fill_session, jpeg, wait_saved
from tests.helpers.poll import wait_until
from tests.web.helpers import SLUG
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser

CLOCK = datetime(2024, 8, 6, 3, 0, tzinfo=UTC)  # Tue 6 Aug 2567, 10:00 in Bangkok
FORM = f"/directives/{SLUG}/districts/2706/report"
FIRST_CENTER = "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลโคกสูง (ครั้งแรก)"
OFFLINE_CENTER = "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลหนองม่วง (กรอกตอนไม่มีสัญญาณ)"
KEPT = "tidtam-pages"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, object]]:
    folder = tmp_path_factory.mktemp("e2e-offline")
    engine = db.engine_for(f"sqlite:///{folder / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    app = create_app(Settings(data_dir=folder, demo=True, _env_file=None), engine,
                     clock=FixedClock(CLOCK))
    with served(app, "uvicorn-e2e-offline") as url:
        yield url, engine
    engine.dispose()


def report_of(engine):
    return report_of_district(engine, "2706")


def report_of_district(engine, code: str):
    with Session(engine) as session:
        directive = get_directive_by_slug(session, SLUG)
        report = get_report(session, directive.id, code)
        photos = photos_of(session, report.id) if report else []
        return report, photos


def kept_copy(page, path: str) -> str:
    """The text of the service worker's copy of ``path`` ("" when it keeps none)."""
    return page.evaluate("""async ([name, path]) => {
        if (!(await caches.has(name))) return "";
        const hit = await (await caches.open(name)).match(new URL(path, location.origin).href);
        return hit ? await hit.text() : "";
    }""", [KEPT, path])


def test_the_form_opens_offline_and_what_waits_is_sent_when_the_network_returns(browser, server):
    from playwright.sync_api import expect

    base_url, engine = server
    context = browser.new_context(**PHONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text)
            if "Content Security Policy" in m.text else None)
    try:
        # online: signed in, the worker installed and in control; the form opened once
        sign_in(page, base_url, "staff-2706")
        expect(page).to_have_url(re.compile(rf"{base_url}/(my|districts/2706)$"))
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
        # installable: Chromium reads the manifest without error and finds nothing missing (a
        # test browser's context is always "incognito", which alone stops the install prompt)
        cdp = context.new_cdp_session(page)
        assert cdp.send("Page.getAppManifest")["errors"] == []
        refusals = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]}
        assert refusals <= {"in-incognito"}, refusals
        cdp.detach()
        page.goto(f"{base_url}{FORM}")
        first = page.locator("#sessions .session").first
        fill_session(first, held_on="2024-07-10", center=FIRST_CENTER, place="บ้านโคกสูง",
                     kind="tree-planting", counts={"center-committee": 5, "volunteer-leaders": 10,
                                                   "community": 12, "partners": 3,
                                                   "cd-officials": 2})
        add_photos(first, jpeg("first.jpg", (60, 140, 60)))
        page.locator("#outcome-list textarea").first.fill("ศูนย์ฯ มีแปลงผักเพิ่มขึ้น")
        page.locator("#outcome-list textarea").first.blur()
        wait_saved(page)
        # the worker's copy follows the saves: reopened offline, the form shows the server's last
        version = page.locator("#report-form").get_attribute("data-version")
        wait_until(lambda: f'data-version="{version}"' in kept_copy(page, FORM), timeout=10,
                   interval=0.2, message="the worker's copy of the form missed the last save")

        # offline: the form still opens, with what the server had
        context.set_offline(True)
        page.reload()
        expect(page.locator("h1")).to_contain_text("แบบรายงาน")
        expect(page.locator('[data-name="center"]').first).to_have_value(FIRST_CENTER)
        badge = page.locator(".offline-badge")
        expect(badge).to_have_attribute("data-offline", "1")

        # a session and a photo entered offline wait on the device, counted
        page.locator(".js-add-session").click()
        second = page.locator("#sessions .session").nth(1)
        fill_session(second, held_on="2024-07-20", center=OFFLINE_CENTER, place="บ้านหนองม่วง",
                     kind="landscape", counts={"center-committee": 4, "volunteer-leaders": 8,
                                               "community": 10, "partners": 2,
                                               "cd-officials": 2})
        second.locator("input.js-photos").nth(1).set_input_files([jpeg("offline.jpg", (40, 120, 40))])
        expect(second.locator(".held-photos img")).to_have_count(1)
        expect(badge).to_have_attribute("data-waiting", "2", timeout=10_000)
        expect(badge).to_contain_text("รอส่ง 2 รายการ")
        report, photos = report_of(engine)
        assert len(report.content["sessions"]) == 1 and len(photos) == 1  # nothing more arrived

        # online again: the text is saved, then the photo is sent; nothing waits
        context.set_offline(False)
        expect(second.locator(".photo-list .thumbs img")).to_have_count(1, timeout=20_000)
        expect(second.locator(".held-photos")).to_have_count(0)
        expect(badge).to_have_attribute("data-waiting", "0", timeout=10_000)
        wait_saved(page)
        report, photos = report_of(engine)
        sessions = report.content["sessions"]
        assert [s["center"] for s in sessions] == [FIRST_CENTER, OFFLINE_CENTER]
        assert [p.session_key for p in photos] == [sessions[0]["key"], sessions[1]["key"]]

        page.locator(".js-submit").click()
        expect(page.locator("#submit-refused")).to_have_count(0)
        expect(page.locator("#report-form")).to_have_attribute("data-editable", "0")
        assert report_of(engine)[0].status == ReportStatus.SUBMITTED

        # signing out leaves none of this person's pages on the device
        if page.locator(".menu-button").is_visible():  # on a phone the menu is folded
            page.locator(".menu-button").click()
        page.locator('form[action="/logout"] button').click()
        page.wait_for_url(re.compile(r".*/login$"))
        wait_until(lambda: kept_copy(page, FORM) == "", timeout=5, interval=0.2,
                   message="the signed-out person's form is still kept on the device")

        # the coordinator's board: R1 submitted (waiting for review), A3 done from the report
        sign_in(page, base_url, "coordinator")
        page.goto(f"{base_url}/directives/{SLUG}")
        row = page.locator('tr[data-district="2706"]')
        expect(row.locator('[data-step="R1"]')).to_have_count(1)
        # the R1 cell tells the report's state, and the report completes A3
        expect(row.locator('[data-step="R1"][data-report-state="submitted"]')).to_have_count(1)
        expect(row.locator('[data-step="A3"][data-state="done"]')).to_have_count(1)
        assert errors == []
    finally:
        context.close()


def test_offline_entries_refused_as_stale_are_kept_for_the_person(browser, server):
    """Someone else saved the report while this phone was offline: the phone's save is refused
    (409), the person is told, their text is shown to copy, and their entries and photo stay on
    the device until they choose; choosing theirs sends both."""
    from playwright.sync_api import expect

    base_url, engine = server
    form = FORM.replace("/2706/", "/2701/")
    phone = browser.new_context(**PHONE)
    page = phone.new_page()
    other = browser.new_context(locale="th-TH")
    try:
        sign_in(page, base_url, "staff-2701")
        page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=10_000)
        page.goto(f"{base_url}{form}")
        page.locator('[data-name="center"]').first.fill(FIRST_CENTER)
        page.locator('[data-name="center"]').first.blur()
        wait_saved(page)
        version = page.locator("#report-form").get_attribute("data-version")
        wait_until(lambda: f'data-version="{version}"' in kept_copy(page, form), timeout=10,
                   interval=0.2, message="the worker's copy of the form missed the last save")

        phone.set_offline(True)
        page.reload()
        outcome = "ผลที่กรอกตอนไม่มีสัญญาณ: ชุมชนร่วมปลูกต้นไม้ 200 ต้น"
        page.locator("#outcome-list textarea").first.fill(outcome)
        page.locator(".js-add-session").click()
        added = page.locator("#sessions .session").nth(1)
        added.locator('[data-name="center"]').fill(OFFLINE_CENTER)
        added.locator("input.js-photos").nth(1).set_input_files([jpeg("kept.jpg", (160, 40, 40))])
        badge = page.locator(".offline-badge")
        expect(badge).to_have_attribute("data-waiting", "2", timeout=10_000)

        # a colleague saves the same report meanwhile, from another device
        desk = other.new_page()
        sign_in(desk, base_url, "staff-2701")
        desk.goto(f"{base_url}{form}")
        desk.locator('[data-name="place"]').first.fill("บ้านหนองแวง")
        desk.locator('[data-name="place"]').first.blur()
        wait_saved(desk)

        # back online: refused as stale, told so, nothing lost
        phone.set_offline(False)
        expect(page.locator("#save-banner")).to_contain_text("มีผู้อื่นบันทึกรายงานนี้ไปแล้ว")
        expect(page.locator(".offline-conflict textarea")).to_have_value(re.compile(re.escape(outcome)))
        expect(added.locator(".held-photos img")).to_have_count(1)
        expect(badge).to_have_attribute("data-waiting", "2")
        report, photos = report_of_district(engine, "2701")
        assert outcome not in report.content["outcomes"] and photos == []

        # reopened, the server's copy has no such session, yet its photo waits; the person
        # chooses what they typed: the text, the session and its photo go
        page.reload()
        expect(page.locator("#sessions .session")).to_have_count(1)
        expect(badge).to_have_attribute("data-waiting", "2")
        page.get_by_role("button", name="ใช้ข้อมูลจากเครื่องนี้").click()
        expect(added.locator(".photo-list .thumbs img")).to_have_count(1, timeout=15_000)
        expect(badge).to_have_attribute("data-waiting", "0", timeout=10_000)
        report, photos = report_of_district(engine, "2701")
        assert outcome in report.content["outcomes"]
        key = report.content["sessions"][1]["key"]
        assert [(p.original_filename, p.session_key) for p in photos] == [("kept.jpg", key)]
    finally:
        other.close()
        phone.close()
