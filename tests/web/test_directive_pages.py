"""A province's directives side by side: the directives page, each directive's board and district
pages under its slug, closing one, งานของฉัน across letters, and the old links."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from domain.directive import load_directive
from models.directive import Directive, DirectiveStatus, ItemStatus, TrackedItem, get_directive_by_slug
from models.outbox import Channel, OutboxMessage, OutboxStatus
from tests.conftest import NOW
from tests.db.test_national import NATIONAL
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, csrf, signed_in
from tidtam.app.national import launch_national

PROVINCIAL = "fy2567-sakaeo-volunteer-centers"
COPY = "fy2567-national-volunteer-centers-p27"  # Sa Kaeo's copy of the Department's letter
TODAY = date(2024, 7, 18)  # CLOCK in Bangkok


@pytest.fixture
def engine2(any_engine):
    """The demo (the provincial letter, with progress) plus the Department's letter launched:
    two active directives in Sa Kaeo."""
    with Session(any_engine) as session:
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
    return any_engine


@pytest.fixture
def client2(engine2):
    with TestClient(make_app(engine2)) as c:
        yield c


def directive(engine, slug: str) -> Directive:
    with Session(engine) as session:
        return get_directive_by_slug(session, slug)


def counts(engine, slug: str, district: str | None = None) -> dict[str, int]:
    """Straight from the table: expected, settled (not open), overdue."""
    with Session(engine) as session:
        d = get_directive_by_slug(session, slug)
        query = select(TrackedItem).where(TrackedItem.directive_id == d.id)
        if district:
            query = query.where(TrackedItem.district_code == district)
        items = session.exec(query).all()
    return {"expected": len(items),
            "settled": sum(i.status != ItemStatus.OPEN for i in items),
            "overdue": sum(i.status == ItemStatus.OPEN and i.due_on < TODAY for i in items),
            "open": sum(i.status == ItemStatus.OPEN for i in items)}


def card(html: str, slug: str) -> str:
    return re.search(rf'<li class="directive-card[^"]*" data-directive="{slug}"(.*?)</li>\n',
                     html, re.S).group(1)


def close(client: TestClient, slug: str, reason: str = "สิ้นปีงบประมาณ"):
    return client.post(f"/directives/{slug}/close", data={"reason": reason, "csrftoken": csrf(client)},
                       follow_redirects=False)


def test_the_directives_page_lists_both_active_letters_with_their_own_counts(client2, engine2):
    signed_in(client2, "coordinator")
    assert client2.get("/", follow_redirects=False).headers["location"] == "/provinces/27/directives"
    page = client2.get("/provinces/27/directives")
    assert page.status_code == 200
    assert "กำลังติดตาม (2 ฉบับ)" in page.text
    provincial, copy = counts(engine2, PROVINCIAL), counts(engine2, COPY)
    assert provincial["settled"] > 0 and copy["settled"] == 0  # the demo's progress is the provincial's
    for slug, c in ((PROVINCIAL, provincial), (COPY, copy)):
        html = card(page.text, slug)
        assert f"เสร็จ {c['settled']} จาก {c['expected']} รายการ" in html, slug
        assert f"เลยกำหนด {c['overdue']} รายการ" in html, slug
        assert f'href="/directives/{slug}"' in html
        assert f'href="/directives/{slug}/reports"' in html
        assert f'href="/outbox?directive={slug}"' in html
        assert f'action="/directives/{slug}/close"' in html
        assert "ครบกำหนด" in html and "อำเภอยังไม่เสร็จ" in html  # what falls due next
    assert "สก ๐๐๑๙/ว ๒๕๒" in card(page.text, PROVINCIAL)
    assert "2567" in card(page.text, PROVINCIAL)  # B.E. dates
    # The Department's viewer may open the province's page; a district's staff may not.
    with TestClient(client2.app) as staff:
        signed_in(staff, "staff-2703")
        refused = staff.get("/provinces/27/directives")
        assert refused.status_code == 403 and "คุณไม่มีสิทธิ์" in refused.text


def test_closing_a_directive_moves_it_below_and_its_board_is_read_only(client2, engine2):
    signed_in(client2, "coordinator")
    missing = close(client2, COPY, reason="  ")
    assert missing.status_code == 422 and "ระบุเหตุผล" in missing.text
    assert directive(engine2, COPY).status == DirectiveStatus.ACTIVE
    done = close(client2, COPY)
    assert done.status_code == 303 and done.headers["location"] == "/provinces/27/directives"
    closed = directive(engine2, COPY)
    assert closed.status == DirectiveStatus.CLOSED and closed.closed_by == "coordinator"
    assert closed.close_reason == "สิ้นปีงบประมาณ"
    page = client2.get("/provinces/27/directives").text
    assert "ปิดหนังสือสั่งการ ตัวอย่าง กรมฯ ๒๕๖๗ (demo) แล้ว" in page  # the flash
    assert "กำลังติดตาม (1 ฉบับ)" in page
    active_part, closed_part = page.split('id="closed-title"')
    assert f'data-directive="{COPY}"' in closed_part and f'data-directive="{COPY}"' not in active_part
    assert "สิ้นปีงบประมาณ" in card(closed_part, COPY)
    assert f'href="/directives/{COPY}"' in card(closed_part, COPY)  # still readable
    assert "/close" not in card(closed_part, COPY)
    board = client2.get(f"/directives/{COPY}")
    assert board.status_code == 200 and 'data-directive-status="closed"' in board.text
    assert "ดูได้อย่างเดียว" in board.text
    district = client2.get(f"/directives/{COPY}/districts/2703").text
    assert 'action="/items/' not in district  # no mark or waive on a closed letter
    assert "ปิดแล้วเมื่อ" in district and "การบันทึกทำโดยเจ้าหน้าที่ของอำเภอ" not in district
    with Session(engine2) as session:
        item = session.exec(select(TrackedItem).where(
            TrackedItem.directive_id == closed.id, TrackedItem.status == ItemStatus.OPEN)).first()
    assert 'action="/items/' not in client2.get(f"/items/{item.id}").text
    again = close(client2, COPY)
    assert again.status_code == 409 and "ปิดไปแล้ว" in again.text


def test_district_staff_and_the_head_may_not_close(client2, engine2):
    for username, th, en in (
            ("staff-2703", "คุณไม่มีสิทธิ์ดูหนังสือสั่งการ", "you may not see directive"),
            ("province-head", "เฉพาะผู้ประสานงานของจังหวัด", "only the province&#39;s coordinator")):
        with TestClient(client2.app) as c:
            signed_in(c, username)
            refused = close(c, PROVINCIAL)
            assert refused.status_code == 403, username
            assert th in refused.text and en in refused.text, username
    assert directive(engine2, PROVINCIAL).status == DirectiveStatus.ACTIVE


def test_each_board_and_district_page_shows_only_its_directives_items(client2, engine2):
    signed_in(client2, "coordinator")
    for slug in (PROVINCIAL, COPY):
        d = directive(engine2, slug)
        with Session(engine2) as session:
            ids = set(session.exec(select(TrackedItem.id).where(TrackedItem.directive_id == d.id)))
        board = client2.get(f"/directives/{slug}")
        assert board.status_code == 200
        assert d.reference_no in board.text
        shown = {int(i) for i in re.findall(r'href="/items/(\d+)"', board.text)}
        assert shown == ids, slug
        assert board.text.count('data-state="overdue"') == counts(engine2, slug)["overdue"]
        assert f'href="/directives/{slug}/districts/2703"' in board.text
        assert f'href="/directives/{slug}/districts/2703/report"' in board.text
        district = client2.get(f"/directives/{slug}/districts/2703")
        assert district.status_code == 200
        mine = {int(i) for i in re.findall(r'id="item-(\d+)"', district.text)}
        with Session(engine2) as session:
            expected = set(session.exec(select(TrackedItem.id).where(
                TrackedItem.directive_id == d.id, TrackedItem.district_code == "2703")))
        assert mine == expected and len(mine) == 12
        assert f'href="/directives/{slug}/districts/2703/report"' in district.text
    assert client2.get("/directives/no-such-letter").status_code == 404


def test_old_links_redirect_to_the_one_active_directive_or_to_the_list(client2, engine2):
    signed_in(client2, "coordinator")
    # Two active: the list to choose from.
    for old in ("/board", "/provinces/27"):
        assert client2.get(old, follow_redirects=False).headers["location"] == "/provinces/27/directives"
    close(client2, COPY)
    # One active: straight to its board.
    for old in ("/board", "/provinces/27"):
        response = client2.get(old, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/directives/{PROVINCIAL}", old
    with TestClient(client2.app) as staff:
        signed_in(staff, "staff-2703")
        assert staff.get("/board", follow_redirects=False).headers["location"] == \
            f"/directives/{PROVINCIAL}/districts/2703"
        assert staff.get("/provinces/27", follow_redirects=False).status_code == 403


def test_my_work_lists_open_items_of_both_letters_overdue_first(client2, engine2):
    signed_in(client2, "staff-2703")
    assert client2.get("/", follow_redirects=False).headers["location"] == "/my"
    page = client2.get("/my")
    assert page.status_code == 200 and "งานของฉัน" in page.text
    rows = re.findall(r'<li id="item-(\d+)" class="item (\w+)" data-step="(\w+)" data-directive="([\w-]+)"',
                      page.text)
    total_open = counts(engine2, PROVINCIAL, "2703")["open"] + counts(engine2, COPY, "2703")["open"]
    assert len(rows) == total_open
    assert {r[3] for r in rows} == {PROVINCIAL, COPY}
    with Session(engine2) as session:
        due = dict(session.exec(select(TrackedItem.id, TrackedItem.due_on).where(
            col(TrackedItem.id).in_([int(r[0]) for r in rows]))).all())
    order = [(state != "overdue", due[int(i)]) for i, state, _, _ in rows]
    assert order == sorted(order)  # overdue first, then by due date
    assert rows[0][1] == "overdue"
    overdue = counts(engine2, PROVINCIAL, "2703")["overdue"] + counts(engine2, COPY, "2703")["overdue"]
    assert sum(r[1] == "overdue" for r in rows) == overdue
    assert "สก ๐๐๑๙/ว ๒๕๒" in page.text and "ตัวอย่าง กรมฯ ๒๕๖๗ (demo)" in page.text
    # Each letter's report form owed, with its status, linking to that letter's report.
    for slug in (PROVINCIAL, COPY):
        assert f'href="/directives/{slug}/districts/2703/report"' in page.text
    assert re.search(rf'data-directive="{COPY}" data-report-status="none"', page.text)
    # Marking done from /my returns to /my.
    first = next(r for r in rows if r[2] != "R1")
    with Session(engine2) as session:
        item = session.get(TrackedItem, int(first[0]))
    answer = client2.post(f"/items/{item.id}/done",
                          data={"version": item.version, "next": "/my#items-title",
                                "csrftoken": csrf(client2)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/my#items-title"
    assert f'id="item-{item.id}"' not in client2.get("/my").text
    with Session(engine2) as session:
        assert session.get(TrackedItem, item.id).status == ItemStatus.DONE


def test_my_work_of_another_district_is_refused_and_the_province_may_look(client2, engine2):
    signed_in(client2, "staff-2703")
    refused = client2.get("/districts/2701")
    assert refused.status_code == 403
    assert client2.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2701").status_code == 403
    assert client2.get(f"/directives/{PROVINCIAL}").status_code == 403  # the province's board
    with TestClient(client2.app) as coordinator:
        signed_in(coordinator, "coordinator")
        page = coordinator.get("/districts/2703")
        assert page.status_code == 200 and 'data-directive="' in page.text
        with Session(engine2) as session:
            n = session.exec(select(func.count()).select_from(TrackedItem).where(
                TrackedItem.district_code == "2703", TrackedItem.status == ItemStatus.OPEN)).one()
        assert len(re.findall(r'<li id="item-\d+"', page.text)) == n


def test_the_outbox_filters_by_directive(client2, engine2):
    with Session(engine2) as session:
        for slug in (PROVINCIAL, COPY):
            d = get_directive_by_slug(session, slug)
            item = session.exec(select(TrackedItem).where(TrackedItem.directive_id == d.id,
                                                          TrackedItem.district_code == "2703")).first()
            session.add(OutboxMessage(idempotency_key=f"test:{slug}", channel=Channel.EMAIL,
                                      recipient="staff-2703@demo.tidtam.local", district_code="2703",
                                      item_id=item.id, rung="overdue", status=OutboxStatus.QUEUED,
                                      subject=f"แจ้งเตือน test:{slug}", body="…",
                                      created_at=CLOCK, next_try_at=CLOCK))
        session.commit()
    signed_in(client2, "coordinator")
    everything = client2.get("/outbox").text
    assert f"test:{PROVINCIAL}" in everything and f"test:{COPY}" in everything
    page = client2.get(f"/outbox?directive={COPY}")
    assert page.status_code == 200
    assert f"test:{COPY}" in page.text and f"test:{PROVINCIAL}" not in page.text
    assert f'<option value="{COPY}" selected>' in page.text
    assert f'<option value="{PROVINCIAL}">' in page.text
    assert f'data-directive="{COPY}"' in page.text
    assert client2.get("/outbox?directive=no-such").status_code == 404


def test_a_loaded_directive_is_shown_as_not_yet_tracked(client2, engine2):
    from tidtam.app.tracking import load_directive as store_directive
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

    spec = load_directive(DEFAULT_DIRECTIVE)
    with Session(engine2) as session:
        store_directive(session, spec.model_copy(update={"slug": "fy2568-sakaeo-next",
                                                         "reference_no": "สก ๐๐๑๙/ว ๙๙๙"}), now=NOW)
        session.commit()
    signed_in(client2, "coordinator")
    page = client2.get("/provinces/27/directives").text
    assert "กำลังติดตาม (2 ฉบับ)" in page  # still two active: the loaded one tracks nothing
    loaded = card(page.split('id="loaded-title"')[1], "fy2568-sakaeo-next")
    assert "นำเข้าแล้ว ยังไม่เริ่มติดตาม" in loaded and "สก ๐๐๑๙/ว ๙๙๙" in loaded
    assert "/close" not in loaded
    client2.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client2)})
    english = client2.get("/provinces/27/directives").text
    assert "Active (2)" in english and "loaded, not yet tracked" in english


def test_a_board_that_names_no_directive_is_a_409_listing_the_active_ones(client2, engine2):
    """The older API board names no directive: with two active it never guesses "the newest"."""
    from tests.web.helpers import api_token

    for username in ("coordinator", "staff-2703"):
        answer = client2.get("/api/v1/board", headers=api_token(client2, username))
        assert answer.status_code == 409, username
        assert PROVINCIAL in answer.text and COPY in answer.text
