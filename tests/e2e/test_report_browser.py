"""The report form in a real browser, as a new user would try it (issue 3's first Done-when line).

staff-2706 files a report with three sessions and photos; a session with 15 participants is
refused with a Thai message naming the field; fixed, it is submitted; the coordinator returns it
with a comment; the district sees the comment, corrects and resubmits; the coordinator accepts;
the board shows R1 done for 2706 and nothing is left in the outbox chasing it.

Headless Chromium through Playwright against the real app under uvicorn, its clock fixed at
10:00 on Tuesday 6 August 2567 (three working days before R1 is due: the sweep reminds then).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from PIL import Image
from sqlmodel import Session, select

from models.directive import ItemStatus, find_item, get_directive_by_slug
from models.outbox import OutboxMessage, OutboxStatus
from tests.conftest import NOW
from tests.e2e.conftest import served, sign_in
from tests.web.helpers import SLUG
from tidtam.app.escalation import sweep
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app

pytestmark = pytest.mark.browser

CLOCK = datetime(2024, 8, 6, 3, 0, tzinfo=UTC)     # Tue 6 Aug 2567, 10:00 in Bangkok
LATER = datetime(2024, 8, 14, 3, 0, tzinfo=UTC)    # past R1's due date: the sweep would chase
SETTINGS = dict(demo=True, _env_file=None)
TOO_FEW = "ครั้งที่ 2 · จำนวนผู้เข้าร่วมรวม: มีผู้เข้าร่วม 15 คน ต้องไม่น้อยกว่า 20 คนต่อครั้ง"
D = f"/directives/{SLUG}"  # the Sa Kaeo FY 2567 directive's pages
COMMENT = "ครั้งที่ 3 ระบุหมู่บ้านให้ครบ (หมู่ที่ และตำบล)"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, object]]:
    """The app over a fresh demo database, the sweep already run on 6 August; yields (url, engine)."""
    folder = tmp_path_factory.mktemp("e2e-report")
    engine = db.engine_for(f"sqlite:///{folder / 'demo.db'}")
    initialise(engine, demo=True, now=NOW)
    settings = Settings(data_dir=folder, **SETTINGS)
    with Session(engine) as session:  # the reminders R1 gets three working days before it is due
        sweep(session, CLOCK, tz=settings.tz, base_url=settings.base_url)
        session.commit()
    with served(create_app(settings, engine, clock=FixedClock(CLOCK)), "uvicorn-e2e-report") as url:
        yield url, engine
    engine.dispose()


def jpeg(name: str, colour: tuple[int, int, int]) -> dict:
    """A real photo as a phone would send it (Playwright's file payload)."""
    out = io.BytesIO()
    Image.new("RGB", (800, 600), colour).save(out, "JPEG", quality=85)
    return {"name": name, "mimeType": "image/jpeg", "buffer": out.getvalue()}


def r1_of(engine, district: str = "2706"):
    with Session(engine) as session:
        directive = get_directive_by_slug(session, SLUG)
        return find_item(session, directive.id, district, "R1")


def chasing(engine, item_id: int) -> list[OutboxMessage]:
    """Messages about the item still waiting to go out."""
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.item_id == item_id,
            OutboxMessage.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING]))))


def fill_session(card, *, held_on: str, center: str, place: str, kind: str,
                 counts: dict[str, int]) -> None:
    year, month, day = (int(part) for part in held_on.split("-"))  # day, Thai month, B.E. year
    card.locator('.js-date-part[data-part="d"]').select_option(str(day))
    card.locator('.js-date-part[data-part="m"]').select_option(str(month))
    card.locator('.js-date-part[data-part="y"]').select_option(str(year + 543))
    card.locator('[data-name="center"]').fill(center)
    card.locator('[data-name="place"]').fill(place)
    card.locator('[data-name="kind"]').select_option(kind)
    for code, count in counts.items():
        card.locator(f'[data-category="{code}"]').fill(str(count))


def add_photos(card, *files: dict) -> None:
    """Pick photos with the "choose photos" button; they upload at once."""
    from playwright.sync_api import expect

    before = card.locator(".thumbs img").count()
    card.locator("input.js-photos").nth(1).set_input_files(list(files))
    expect(card.locator(".thumbs img")).to_have_count(before + len(files))


def wait_saved(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#save-status")).to_have_attribute("data-state", "saved", timeout=15000)


def sign_out(page) -> None:
    if page.locator(".menu-button").is_visible():  # on a phone the menu is folded
        page.locator(".menu-button").click()
    page.locator("form.logout button").click()
    page.wait_for_url(re.compile(r".*/login$"))


def test_a_district_files_its_report_and_the_coordinator_returns_then_accepts_it(
        phone_page, server, screenshot):
    from playwright.sync_api import expect

    base_url, engine = server
    r1 = r1_of(engine)
    assert chasing(engine, r1.id), "the sweep on 6 August queued a reminder for R1"
    page = phone_page

    # staff-2706 fills three sessions, one with only 15 participants, with photos and an outcome
    sign_in(page, base_url, "staff-2706")
    expect(page).to_have_url(re.compile(rf"{base_url}/(districts/2706|my)$"))  # their work
    page.locator("a.report-link").first.click()
    expect(page).to_have_url(f"{base_url}{D}/districts/2706/report")
    page.wait_for_load_state()  # report.js is deferred: a click before it runs posts the form
    expect(page.locator("h1")).to_contain_text("แบบรายงาน อำเภอ")
    sessions = page.locator("#sessions .session")
    expect(sessions).to_have_count(1)
    fill_session(sessions.nth(0), held_on="2024-07-10", center="ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลโคกสูง",
                 place="บ้านโคกสูง ต.โคกสูง", kind="tree-planting",
                 counts={"center-committee": 5, "volunteer-leaders": 10, "community": 12,
                         "partners": 3, "cd-officials": 2})
    page.locator(".js-add-session").click()
    expect(sessions).to_have_count(2)
    fill_session(sessions.nth(1), held_on="2024-07-17", center="ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลหนองม่วง",
                 place="บ้านหนองม่วง ต.หนองม่วง", kind="landscape",
                 counts={"center-committee": 3, "volunteer-leaders": 5, "community": 5,
                         "partners": 1, "cd-officials": 1})
    page.locator(".js-add-session").click()
    fill_session(sessions.nth(2), held_on="2024-07-24", center="ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลโคกสูง",
                 place="บ้านหนองแวง", kind="community-kitchen",
                 counts={"center-committee": 4, "volunteer-leaders": 8, "community": 20,
                         "partners": 2, "cd-officials": 1})
    add_photos(sessions.nth(0), jpeg("tree-1.jpg", (40, 120, 40)), jpeg("tree-2.jpg", (60, 140, 60)))
    add_photos(sessions.nth(1), jpeg("landscape.jpg", (120, 120, 40)))
    add_photos(sessions.nth(2), jpeg("kitchen.jpg", (40, 40, 160)))
    page.locator("#outcome-list textarea").first.fill(
        "ศูนย์ฯ มีแปลงผักและต้นไม้เพิ่มขึ้น ชุมชนใช้เป็นแหล่งอาหารร่วมกัน")
    page.locator("#outcome-list textarea").first.blur()
    wait_saved(page)
    expect(page.locator("#summary [data-sum=centers]")).to_have_text("2")  # item 1, derived
    expect(page.locator("#summary [data-sum=total]")).to_have_text(str(32 + 15 + 35))
    expect(sessions.nth(1).locator('[data-msgs="sessions[1].participants"]')).to_contain_text(
        "ต้องไม่น้อยกว่า 20 คน")

    # submitting is refused, naming the field, and nothing typed is lost
    page.locator(".js-submit").click()
    expect(page.locator("#submit-refused")).to_contain_text("ยังส่งรายงานไม่ได้")
    expect(page.locator("#findings")).to_contain_text(TOO_FEW)
    expect(sessions).to_have_count(3)
    expect(sessions.nth(2).locator('[data-name="place"]')).to_have_value("บ้านหนองแวง")
    expect(page.locator("#report-status")).to_have_text("ร่าง")
    screenshot(page, "report-refused.png", full_page=True)

    # fixed, it goes
    sessions.nth(1).locator('[data-category="community"]').fill("12")
    sessions.nth(1).locator('[data-category="community"]').blur()
    wait_saved(page)
    expect(page.locator("#findings .findings.ok")).to_be_visible()
    page.locator(".js-submit").click()
    expect(page.locator(".flash").first).to_contain_text("ส่งรายงานให้จังหวัดแล้ว")
    expect(page.locator("#report-status")).to_have_text("ส่งแล้ว รอจังหวัดตรวจ")
    assert r1_of(engine).status == ItemStatus.DONE
    assert chasing(engine, r1.id) == []  # submitting cancelled the queued reminder
    sign_out(page)

    # the coordinator returns it with a comment
    sign_in(page, base_url, "coordinator")
    page.goto(f"{base_url}{D}/reports")
    row = page.locator('tr[data-district="2706"]')
    expect(row).to_have_attribute("data-status", "submitted")
    row.locator("a").first.click()
    page.locator("#return-comment").fill(COMMENT)
    page.locator(".js-return").click()
    expect(page.locator(".flash").first).to_contain_text("ส่งรายงานกลับให้อำเภอแก้ไขแล้ว")
    expect(page.locator("#report-status")).to_have_text("ส่งกลับให้แก้ไข")
    sign_out(page)

    # the district sees the comment, corrects and resubmits
    sign_in(page, base_url, "staff-2706")
    page.goto(f"{base_url}{D}/districts/2706/report")
    expect(page.locator(".review-comment")).to_contain_text(COMMENT)
    screenshot(page, "report-returned.png")
    place = sessions.nth(2).locator('[data-name="place"]')
    place.fill("บ้านหนองแวง หมู่ที่ 4 ต.โคกสูง")
    place.blur()
    wait_saved(page)
    page.locator(".js-submit").click()
    expect(page.locator("#report-status")).to_have_text("ส่งแล้ว รอจังหวัดตรวจ")
    sign_out(page)

    # the coordinator accepts; the board shows R1 done for 2706
    sign_in(page, base_url, "coordinator")
    page.goto(f"{base_url}{D}/districts/2706/report")
    page.locator(".js-accept").click()
    expect(page.locator("#report-status")).to_have_text("จังหวัดรับแล้ว")
    page.goto(f"{base_url}/board")
    expect(page.locator('tr[data-district="2706"] td[data-step="R1"]')).to_have_attribute(
        "data-state", "done")
    page.goto(f"{base_url}{D}/reports")
    expect(page.locator('tr[data-district="2706"]')).to_have_attribute("data-status", "accepted")
    expect(page.locator('[data-total="total"]')).to_have_text(str(32 + 22 + 35))
    screenshot(page, "reports-accepted.png", full_page=True)

    # and nothing chases it: no queued message now, none after a sweep past its due date
    assert r1_of(engine).status == ItemStatus.DONE
    with Session(engine) as session:
        sweep(session, LATER, tz=Settings(**SETTINGS).tz, base_url="http://127.0.0.1")
        session.commit()
    assert chasing(engine, r1.id) == []


def test_nothing_typed_is_lost_offline_and_a_stale_tab_never_overwrites(phone_page_without_worker,
                                                                          server):
    """The phone drops the connection mid-form; later a second tab saves first."""
    from playwright.sync_api import expect

    base_url, engine = server
    page = phone_page_without_worker
    context = page.context
    sign_in(page, base_url, "staff-2705")
    page.goto(f"{base_url}{D}/districts/2705/report")
    card = page.locator("#sessions .session").first
    card.locator('[data-name="center"]').fill("ศูนย์ฯ ตำบลหนองหว้า")
    card.locator('[data-name="center"]').blur()
    wait_saved(page)

    context.set_offline(True)
    card.locator('[data-name="place"]').fill("บ้านหนองหว้า หมู่ 2")
    card.locator('[data-name="place"]').blur()
    expect(page.locator("#save-status")).to_have_attribute("data-state", "offline")
    page.close()  # the tab is gone before the connection comes back
    context.set_offline(False)

    page = context.new_page()
    page.goto(f"{base_url}{D}/districts/2705/report")
    expect(page.locator("#save-banner")).to_contain_text("กู้คืนข้อมูลที่ยังไม่ได้บันทึก")
    wait_saved(page)
    place = page.locator('#sessions .session [data-name="place"]').first
    expect(place).to_have_value("บ้านหนองหว้า หมู่ 2")
    assert stored_place(engine, "2705") == "บ้านหนองหว้า หมู่ 2"

    other = context.new_page()  # a second tab, same version, saves first
    other.goto(f"{base_url}{D}/districts/2705/report")
    other.locator('#sessions .session [data-name="place"]').first.fill("จากแท็บที่สอง")
    other.locator('#sessions .session [data-name="place"]').first.blur()
    wait_saved(other)
    place.fill("จากแท็บแรก")
    place.blur()
    expect(page.locator("#save-banner")).to_contain_text("มีผู้อื่นบันทึกรายงานนี้ไปแล้ว")
    expect(page.locator("#save-status")).to_have_attribute("data-state", "failed")
    assert stored_place(engine, "2705") == "จากแท็บที่สอง"


def stored_place(engine, district: str) -> str:
    from models.report import get_report

    with Session(engine) as session:
        directive = get_directive_by_slug(session, SLUG)
        return get_report(session, directive.id, district).content["sessions"][0]["place"]
