"""The outbox page for people: each filter narrows the rows (as GET parameters, and on the API),
pages of 50 with the total, names and roles instead of LINE ids, reasons in Thai with the
pump's English kept, the province boundary, a bad filter value a bilingual 422 (never a 500),
a layout that fits a phone; and the API's and the CLI's new fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from models.directive import get_directive_by_slug
from models.outbox import Channel, OutboxMessage, OutboxStatus
from tests.web.helpers import CLOCK, api_token, csrf, item_of, signed_in, user_named

SLUG = "fy2567-sakaeo-volunteer-centers"
STAFF_LINE = "U" + "0123456789abcdef" * 2
GROUP_LINE = "C" + "fedcba9876543210" * 2
# 18 July 2567 00:30 in Bangkok, still the 17th in UTC: the date filters are the office's days.
JUST_AFTER_MIDNIGHT = datetime(2024, 7, 17, 17, 30, tzinfo=UTC)


def seed(engine) -> None:
    """Six messages of Sa Kaeo, one of Bangkok's."""
    from tidtam.app.orgtree import load_provinces

    staff, head = user_named(engine, "staff-2703"), user_named(engine, "head-2705")
    coordinator = user_named(engine, "coordinator")
    item = item_of(engine, "2703", "G1")
    with Session(engine) as session:
        directive_id = get_directive_by_slug(session, SLUG).id
    rows = [
        dict(idempotency_key="k1-staff-email", channel=Channel.EMAIL,
             recipient="staff-2703@demo.tidtam.local", user_id=staff.id, district_code="2703",
             item_id=item.id, rung="reminder-3", status=OutboxStatus.SENT,
             created_at=CLOCK - timedelta(days=2), sent_at=CLOCK - timedelta(days=2)),
        dict(idempotency_key="k2-staff-line", channel=Channel.LINE, recipient=STAFF_LINE,
             user_id=staff.id, district_code="2703", item_id=item.id, rung="overdue",
             status=OutboxStatus.FAILED, attempts=3, created_at=CLOCK - timedelta(days=1),
             last_error=f"gave up after 3 attempts: LINE 400: bad request for {STAFF_LINE}"),
        dict(idempotency_key="k3-head-email", channel=Channel.EMAIL,
             recipient="head-2705@demo.tidtam.local", user_id=head.id, district_code="2705",
             rung="overdue", status=OutboxStatus.NOT_SENT_NO_CHANNEL, created_at=CLOCK,
             last_error="no transport configured for channel email"),
        dict(idempotency_key="k4-group-line", channel=Channel.LINE, recipient=GROUP_LINE,
             district_code="2703", rung="reminder-1", status=OutboxStatus.QUEUED,
             created_at=JUST_AFTER_MIDNIGHT),
        dict(idempotency_key="k5-coordinator-digest", channel=Channel.EMAIL,
             recipient="coordinator@demo.tidtam.local", user_id=coordinator.id, rung="digest",
             directive_id=directive_id, status=OutboxStatus.CANCELLED,
             created_at=CLOCK - timedelta(days=3), last_error="directive closed before sending"),
        dict(idempotency_key="k6-review-returned", channel=Channel.EMAIL,
             recipient="staff-2703@demo.tidtam.local", user_id=staff.id, district_code="2703",
             rung="report-returned", directive_id=directive_id, status=OutboxStatus.QUEUED,
             created_at=CLOCK, body="สิ่งที่ต้องแก้ไข:\nเพิ่มรูปกิจกรรมครั้งที่ 3"),
        dict(idempotency_key="bkk-1", channel=Channel.EMAIL, recipient="bkk@example.org",
             district_code="1001", rung="overdue", status=OutboxStatus.FAILED, created_at=CLOCK),
    ]
    with Session(engine) as session:
        load_provinces(session, ["10"])  # Bangkok: khet 1001 พระนคร
        for row in rows:
            values = {"subject": f"เรื่อง {row['idempotency_key']}", "body": "…",
                      "next_try_at": CLOCK, **row}
            session.add(OutboxMessage(**values))
        session.commit()


def keys(html: str, engine) -> set[str]:
    """The idempotency keys of the messages a page lists (it shows their numbers, not keys)."""
    found = [int(i) for i in re.findall(r'<details data-message="(\d+)"', html)]
    assert html.count("<tr data-status=") == len(found)
    with Session(engine) as session:
        return set(session.exec(select(OutboxMessage.idempotency_key)
                                .where(col(OutboxMessage.id).in_(found))))


@pytest.fixture
def seeded(any_client, any_engine):
    seed(any_engine)
    return signed_in(any_client, "coordinator")


FILTERS = [
    ("status=failed", {"k2-staff-line"}),
    ("channel=line", {"k2-staff-line", "k4-group-line"}),
    ("district=2705", {"k3-head-email"}),
    (f"directive={SLUG}", {"k1-staff-email", "k2-staff-line", "k5-coordinator-digest",
                           "k6-review-returned"}),
    ("rung=overdue", {"k2-staff-line", "k3-head-email"}),
    ("from=2024-07-18", {"k3-head-email", "k4-group-line", "k6-review-returned"}),
    ("to=2024-07-17", {"k1-staff-email", "k2-staff-line", "k5-coordinator-digest"}),
    ("from=2024-07-17&to=2024-07-17", {"k2-staff-line"}),
    ("channel=email&district=2703&status=queued", {"k6-review-returned"}),
]


def test_each_filter_narrows_the_rows_on_the_page_and_the_api(seeded, any_engine):
    client = seeded
    everything = keys(client.get("/outbox").text, any_engine)
    assert everything == {f"k{n}-{rest}" for n, rest in enumerate(
        ["staff-email", "staff-line", "head-email", "group-line", "coordinator-digest",
         "review-returned"], start=1)}  # and not Bangkok's
    headers = api_token(client, "coordinator")
    for query, expected in FILTERS:
        page = client.get(f"/outbox?{query}")
        assert page.status_code == 200, query
        assert keys(page.text, any_engine) == expected, query
        api = client.get(f"/api/v1/outbox?{query}", headers=headers)
        assert {m["key"] for m in api.json()} == expected, query
    chosen = client.get("/outbox?status=failed&district=2703").text
    assert '<option value="failed" selected>' in chosen
    assert '<option value="2703" selected>' in chosen
    assert client.get("/outbox?rung=ops-alert").text.count("<tr data-status=") == 0
    assert "ไม่มีข้อความที่ตรงกับตัวกรองนี้" in client.get("/outbox?rung=ops-alert").text


def test_recipients_are_names_and_roles_not_line_ids_and_reasons_are_thai(seeded):
    page = seeded.get("/outbox").text
    assert "เจ้าหน้าที่ อ.ตาพระยา (สาธิต)" in page and "เจ้าหน้าที่อำเภอ" in page
    assert "พัฒนาการอำเภอวัฒนานคร (สาธิต)" in page and "พัฒนาการอำเภอ</span>" in page
    assert "กลุ่ม LINE ของอำเภอตาพระยา" in page  # a group by its district's name
    assert STAFF_LINE not in page and GROUP_LINE not in page  # not even in the English error
    assert "U0123…cdef" in page and "Cfedc…3210" in page  # masked, enough to tell apart
    # The rung by its meaning, the district and the letter by name.
    assert "แจ้งอำเภอ: จังหวัดส่งรายงานกลับให้แก้ไข" in page and "เตือนล่วงหน้า 3 วัน" in page
    assert "วัฒนานคร" in page
    # Reasons in Thai, the pump's English kept, second and small.
    reasons = dict(re.findall(r'data-reason="([a-z_]+)">([^<]+)</span>', page))
    assert reasons == {
        "gave_up": "หยุดส่งหลังพยายาม 3 ครั้ง: LINE ไม่รับข้อความนี้ (เช่น ผู้รับบล็อกหรือยังไม่ได้เพิ่มเพื่อน)",
        "no_transport": "ระบบยังไม่ได้ตั้งค่าการส่งทางอีเมล",
        "directive_closed": "ยกเลิก: ปิดการติดตามหนังสือสั่งการก่อนถึงเวลาส่ง"}
    assert '<small class="reason-original" lang="en">ข้อความจากระบบ: no transport configured for ' \
           'channel email</small>' in page
    # The rendered message opens on a tap, with no script.
    assert "<summary>เรื่อง k6-review-returned</summary>" in page
    assert '<pre class="message-body">สิ่งที่ต้องแก้ไข:\nเพิ่มรูปกิจกรรมครั้งที่ 3</pre>' in page
    assert "<script>" not in page.split("<main", 1)[1]
    seeded.post("/lang", data={"lang": "en", "next": "/outbox", "csrftoken": csrf(seeded)})
    english = seeded.get("/outbox").text
    assert "Sending by Email is not set up" in english and "District staff" in english
    assert "LINE group of Ta Phraya" in english


BAD = [
    ("status=lost", "สถานะ", "status: 'lost' is not one of"),
    ("channel=fax", "ช่องทาง", "channel: 'fax' is not one of"),
    ("district=27x3", "อำเภอ: ต้องเป็นรหัสอำเภอ 4 หลัก", "district: a 4-digit district code"),
    ("district=1001", "ไม่อยู่ในจังหวัดของคุณ", "district 1001 is not in your province"),
    ("rung=%3Cscript%3E", "ขั้นการแจ้ง", "rung: letters, digits and '-'"),
    ("from=2024-13-01", "ตั้งแต่วันที่", "from: '2024-13-01' is not a date"),
    ("to=18%2F07%2F2567", "ถึงวันที่", "to: '18/07/2567' is not a date"),
    ("from=2024-07-18&to=2024-07-17", "วันเริ่มต้องไม่อยู่หลังวันสุดท้าย", "'from' is after 'to'"),
    ("page=0", "หน้า: ต้องเป็นจำนวนเต็ม", "page: a whole number"),
    ("page=abc", "หน้า: ต้องเป็นจำนวนเต็ม", "page: a whole number"),
]


@pytest.mark.parametrize(("query", "thai", "english"), BAD)
def test_a_bad_filter_value_is_a_bilingual_422_not_a_500(client, engine, query, thai, english):
    seed(engine)
    signed_in(client, "coordinator")
    page = client.get(f"/outbox?{query}")
    assert page.status_code == 422
    assert thai in page.text and english.replace("'", "&#39;") in page.text
    if "page=" in query:
        return  # the API has no pages: it lists at most 500
    api = client.get(f"/api/v1/outbox?{query}", headers=api_token(client, "coordinator"))
    assert api.status_code == 422
    assert thai in api.json()["detail"]["th"] and english in api.json()["detail"]["en"]


def test_pages_of_fifty_with_the_total_newest_first_keeping_the_filters(client, engine):
    staff = user_named(engine, "staff-2703")
    with Session(engine) as session:
        for n in range(120):
            session.add(OutboxMessage(
                idempotency_key=f"p{n:03d}", channel=Channel.EMAIL, recipient="s@x.org",
                user_id=staff.id, district_code="2703", rung="reminder-3", subject=f"s{n}",
                body="…", created_at=CLOCK - timedelta(minutes=n), next_try_at=CLOCK))
        session.add(OutboxMessage(idempotency_key="other-rung", channel=Channel.EMAIL,
                                  recipient="s@x.org", user_id=staff.id, rung="digest",
                                  subject="s", body="…", created_at=CLOCK, next_try_at=CLOCK))
        session.commit()
    signed_in(client, "coordinator")
    first = client.get("/outbox?rung=reminder-3").text
    assert keys(first, engine) == {f"p{n:03d}" for n in range(50)}  # the newest fifty
    assert "ข้อความที่ 1–50 จากทั้งหมด 120 ข้อความ" in first and "หน้า 1 จาก 3" in first
    assert 'href="/outbox?rung=reminder-3&amp;page=2"' in first and 'rel="prev"' not in first
    last = client.get("/outbox?rung=reminder-3&page=3").text
    assert keys(last, engine) == {f"p{n:03d}" for n in range(100, 120)}
    assert "ข้อความที่ 101–120 จากทั้งหมด 120 ข้อความ" in last and 'rel="next"' not in last
    assert 'href="/outbox?rung=reminder-3&amp;page=2"' in last
    beyond = client.get("/outbox?rung=reminder-3&page=9")
    assert beyond.status_code == 200 and keys(beyond.text, engine) == set()
    assert "ไม่มีข้อความที่ตรงกับตัวกรองนี้" in beyond.text
    assert "จากทั้งหมด 121 ข้อความ" in client.get("/outbox").text


def test_the_province_boundary_and_who_may_look(seeded, any_engine):
    client = seeded
    assert "bkk-1" not in client.get("/outbox").text
    assert client.get("/outbox?district=1001").status_code == 422
    headers = api_token(client, "coordinator")
    assert "bkk-1" not in {m["key"] for m in client.get("/api/v1/outbox", headers=headers).json()}
    signed_in(client, "staff-2703")
    refused = client.get("/outbox?status=failed")
    assert refused.status_code == 403 and "เฉพาะผู้ประสานงานจังหวัด" in refused.text


def test_the_page_fits_a_phone_as_cards(seeded):
    """Render check (tests/e2e/test_outbox_phone.py measures it in Chromium): every cell says
    what it is, for the card layout below 48rem, and the stylesheet turns rows into cards."""
    page = seeded.get("/outbox").text
    table = page[page.index('<table class="outbox-messages">'):]
    cells = re.findall(r"<td( [^>]*)?>", table[:table.index("</table>")])
    assert cells and all("data-label=" in attrs for attrs in cells)
    css = seeded.get("/static/tidtam.css").text
    phone = css[css.index("@media (max-width: 48rem)"):]
    phone = phone[:phone.index("\n}\n")]
    assert "table.outbox-messages tr, table.outbox-messages td { display: block" in phone
    assert "td::before { content: attr(data-label)" in phone
    assert '<header class="outbox-header">' in page  # where the push quota goes


def test_the_api_and_the_cli_show_creation_time_subject_and_body(seeded, any_engine):
    from tidtam.cli.views import outbox_json

    client = seeded
    listed = client.get("/api/v1/outbox?rung=report-returned",
                        headers=api_token(client, "coordinator")).json()
    assert len(listed) == 1
    (message,) = listed
    assert message["subject"] == "เรื่อง k6-review-returned"
    assert message["body"] == "สิ่งที่ต้องแก้ไข:\nเพิ่มรูปกิจกรรมครั้งที่ 3"
    assert datetime.fromisoformat(message["created_at"].replace("Z", "+00:00")) == CLOCK
    schema = client.get("/openapi.json").json()
    params = {p["name"] for p in schema["paths"]["/api/v1/outbox"]["get"]["parameters"]}
    assert {"status", "channel", "district", "rung", "from", "to", "directive"} <= params
    fields = schema["components"]["schemas"]["OutboxMessagePublic"]["properties"]
    assert {"created_at", "subject", "body"} <= set(fields)
    with Session(any_engine) as session:
        rows = {r["key"]: r for r in outbox_json(session)}
    assert rows["k6-review-returned"]["subject"] == "เรื่อง k6-review-returned"
    assert rows["k6-review-returned"]["body"].endswith("เพิ่มรูปกิจกรรมครั้งที่ 3")
    assert datetime.fromisoformat(rows["k6-review-returned"]["created_at"]) == CLOCK


def test_e_mail_addresses_are_masked_like_line_ids_and_no_key_is_shown(seeded, any_engine):
    with Session(any_engine) as session:
        session.add(OutboxMessage(
            idempotency_key="late|2024-07-19|item:1|user:9|email", channel=Channel.EMAIL,
            recipient="somchai.k@district.example.go.th", rung="late", district_code="2703",
            status=OutboxStatus.FAILED, subject="เลยกำหนด", body="…", created_at=CLOCK,
            next_try_at=CLOCK, last_error="SMTP recipient refused: somchai.k@district.example"
                                          ".go.th: 550 no such user — permanent"))
        session.commit()
        numbers = {m.idempotency_key: m.id for m in session.exec(select(OutboxMessage))}
    page = seeded.get("/outbox").text
    for address in ("staff-2703@demo.tidtam.local", "head-2705@demo.tidtam.local",
                    "coordinator@demo.tidtam.local", "somchai.k@district.example.go.th"):
        assert address not in page, address  # not in the list, the details, nor the reasons
    assert "st…3@demo.tidtam.local" in page and "he…5@demo.tidtam.local" in page
    assert "so…k@district.example.go.th: 550" in page  # the pump's English, masked too
    assert "U0123…cdef" in page
    # The details give the message's number and tries, never its idempotency key.
    assert "data-key=" not in page and "late|2024-07-19|item:1" not in page
    tech = re.findall(r'<p class="tech"><small>([^<]*)</small></p>', page)
    assert f"ข้อความเลขที่ {numbers['k2-staff-line']} · ครั้งที่ส่ง: 3" in tech
    assert not [t for t in tech if "|" in t or "k1-staff-email" in t]


def test_mask_addresses_keeps_enough_to_tell_apart():
    from tidtam.app.outbox import mask_addresses

    assert mask_addresses("to staff-2703@demo.tidtam.local and ab@x.org") == \
        "to st…3@demo.tidtam.local and a…@x.org"
    assert mask_addresses("U" + "0123456789abcdef" * 2) == "U0123…cdef"
    assert mask_addresses("no address here: 10 @ 3") == "no address here: 10 @ 3"


def test_the_api_pages_with_limit_and_offset_and_says_the_total(client, engine):
    staff = user_named(engine, "staff-2703")
    with Session(engine) as session:
        for n in range(120):
            session.add(OutboxMessage(
                idempotency_key=f"p{n:03d}", channel=Channel.EMAIL, recipient="s@x.org",
                user_id=staff.id, district_code="2703", rung="reminder-3", subject=f"s{n}",
                body="…", created_at=CLOCK - timedelta(minutes=n), next_try_at=CLOCK))
        session.add(OutboxMessage(idempotency_key="other-rung", channel=Channel.EMAIL,
                                  recipient="s@x.org", user_id=staff.id, rung="digest",
                                  subject="s", body="…", created_at=CLOCK, next_try_at=CLOCK))
        session.commit()
    headers = api_token(client, "coordinator")
    got, url = [], "/api/v1/outbox?rung=reminder-3&limit=50"
    while url:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200 and answer.headers["X-Total-Count"] == "120"
        got.append([m["key"] for m in answer.json()])
        link = re.search(r'<([^>]+)>; rel="next"', answer.headers.get("Link", ""))
        url = link.group(1) if link else None
    assert [len(page) for page in got] == [50, 50, 20]
    assert sum(got, []) == [f"p{n:03d}" for n in range(120)]  # newest first, none twice
    middle = client.get("/api/v1/outbox?rung=reminder-3&limit=50&offset=50", headers=headers)
    assert 'rel="prev"' in middle.headers["Link"] and "offset=0" in middle.headers["Link"]
    assert "rung=reminder-3" in middle.headers["Link"]  # the filters kept
    beyond = client.get("/api/v1/outbox?limit=10&offset=500", headers=headers)
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "121"
    for bad in ("limit=0", "limit=501", "offset=-1", "limit=x"):
        refused = client.get(f"/api/v1/outbox?{bad}", headers=headers)
        assert refused.status_code == 422 and refused.json()["detail"]["th"], bad
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/outbox"]["get"]
    assert {"limit", "offset"} <= {p["name"] for p in operation["parameters"]}
    assert {"X-Total-Count", "Link"} <= set(operation["responses"]["200"]["headers"])


def test_the_cli_takes_the_pages_filters(seeded, any_engine, monkeypatch):
    """`tidtam outbox --json` with --status, --channel, --district, --rung, --from, --to: the
    same rows as the page's filters, each with its creation time, subject and body. The
    command is the operator's: every province's rows (Bangkok's failed one too)."""
    from typer.testing import CliRunner

    from tidtam.cli import app
    from tidtam.infra import db

    monkeypatch.setattr(db, "get_engine", lambda: any_engine)
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(app, ["outbox", "--json", *args])

    for query, expected in FILTERS:
        args = [part for pair in query.split("&") for part in (f"--{pair.split('=')[0]}",
                                                               pair.split("=")[1])]
        done = cli(*args)
        assert done.exit_code == 0, (query, done.output)
        rows = json.loads(done.output)
        bangkok = {"bkk-1"} if query in ("status=failed", "rung=overdue", "from=2024-07-18") \
            else set()
        assert {r["key"] for r in rows} == expected | bangkok, query
        assert all({"created_at", "subject", "body"} <= set(r) for r in rows)
    refused = cli("--status", "lost")
    assert refused.exit_code == 2 and "สถานะ" in refused.output
