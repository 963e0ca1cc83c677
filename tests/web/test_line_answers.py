"""Answering from LINE: a reminder's "ทำแล้ว" postback and "งาน", signed as LINE signs them.

The webhook runs in-process (TestClient); the LINE stand-in runs as the LINE API on a real
port, so each reply is an HTTP request to its reply endpoint with the event's reply token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from models.audit import AuditEntry
from models.directive import ItemStatus
from models.line import LineGroup, LineWebhookEvent
from models.user import User, get_by_username
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, item_of
from tidtam.demo.line_standin import RunningFakeLine, fake_line

SECRET = "8c570fa6dd201bb328f1c1eac23a96d8"
TOKEN = "answer-test-channel-token"
STAFF_LINE = "U" + "5a" * 16  # staff-2703's LINE account
HEAD_2701_LINE = "U" + "7c" * 16  # head-2701's: another district's person
STRANGER = "U" + "e1" * 16  # nobody in tidtam
GROUP = "C" + "9d" * 16  # a LINE group bound to district 2703
_ids = itertools.count(1)


# --- what LINE sends -----------------------------------------------------------------------------

def line_signature(body: bytes) -> str:
    """x-line-signature: base64(HMAC-SHA256(channel secret, raw body)), as LINE computes it."""
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def event(kind: str, source: dict, *, event_id: str | None = None, redelivery: bool = False,
          reply_token: str | None = None, **content) -> dict:
    return {"type": kind, "mode": "active", "timestamp": int(CLOCK.timestamp() * 1000),
            "source": source, "webhookEventId": event_id or f"01HX{next(_ids):022d}",
            "deliveryContext": {"isRedelivery": redelivery},
            "replyToken": reply_token or uuid.uuid4().hex, **content}


def postback(source: dict, data: str, **kwargs) -> dict:
    return event("postback", source, postback={"data": data}, **kwargs)


def said(source: dict, words: str, **kwargs) -> dict:
    return event("message", source, message={"id": str(next(_ids)), "type": "text",
                                              "text": words}, **kwargs)


def user(line_id: str) -> dict:
    return {"type": "user", "userId": line_id}


def in_group(line_id: str) -> dict:
    return {"type": "group", "groupId": GROUP, "userId": line_id}


def deliver(client: TestClient, *events: dict) -> None:
    body = json.dumps({"destination": "U" + "0" * 32, "events": list(events)},
                      ensure_ascii=False).encode()
    response = client.post("/line/webhook", content=body, headers={
        "content-type": "application/json; charset=utf-8", "x-line-signature": line_signature(body)})
    assert response.status_code == 200, response.text


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def line_api() -> Iterator[RunningFakeLine]:
    with fake_line(TOKEN) as running:
        yield running


@pytest.fixture
def line(line_api) -> RunningFakeLine:
    line_api.state.reset()
    return line_api


def _linked(engine) -> None:
    """staff-2703 and head-2701 linked to LINE; a LINE group bound to district 2703."""
    with Session(engine) as session:
        for name, line_id in (("staff-2703", STAFF_LINE), ("head-2701", HEAD_2701_LINE)):
            person = get_by_username(session, name)
            person.line_user_id = line_id
            session.add(person)
        session.add(LineGroup(group_id=GROUP, district_code="2703", joined_at=CLOCK))
        session.commit()


@pytest.fixture
def client(engine, line) -> Iterator[TestClient]:
    _linked(engine)
    app = make_app(engine, line_channel_secret=SECRET, line_channel_access_token=TOKEN,
                   line_api_base=line.base_url)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def any_client(any_engine, line) -> Iterator[TestClient]:
    _linked(any_engine)
    app = make_app(any_engine, line_channel_secret=SECRET, line_channel_access_token=TOKEN,
                   line_api_base=line.base_url)
    with TestClient(app) as c:
        yield c


def snapshot(engine) -> tuple:
    """What answering could change: items, audit entries (the events' ids are recorded apart)."""
    with Session(engine) as session:
        audits = session.exec(select(func.count()).select_from(AuditEntry)).one()
        done = session.exec(select(func.count()).select_from(LineWebhookEvent)).one()
        from models.directive import TrackedItem
        items = tuple(session.exec(select(TrackedItem.id, TrackedItem.status, TrackedItem.version)
                                   .order_by(TrackedItem.id)).all())
    return audits, items, done


def replies(line: RunningFakeLine) -> list[dict]:
    return [dict(r) for r in line.state.replies]


def reply_text(reply: dict) -> str:
    return "\n".join(m.get("text", "") for m in reply["messages"])


# --- "ทำแล้ว" ------------------------------------------------------------------------------------

def test_done_is_confirmed_then_marked_as_the_person_and_a_replay_changes_nothing(
        any_client, any_engine, line):
    item = item_of(any_engine, "2703", "G1")
    assert item.status == ItemStatus.OPEN
    ask = postback(user(STAFF_LINE), f"action=done&item={item.id}")
    deliver(any_client, ask)
    [confirm] = replies(line)
    assert confirm["reply_token"] == ask["replyToken"]
    assert confirm["headers"]["authorization"] == f"Bearer {TOKEN}"
    [message] = confirm["messages"]
    assert message["type"] == "template" and message["template"]["type"] == "confirm"
    assert message["template"]["text"].startswith("ยืนยันว่า")
    asked = message["template"]["text"]
    assert "ศึกษาแนวทางการดำเนินงาน" in asked and "ของอำเภอ" in asked
    yes, no = message["template"]["actions"]
    assert (yes["label"], yes["data"]) == ("ยืนยัน", f"action=done-confirm&item={item.id}")
    assert (no["label"], no["data"]) == ("ยกเลิก", f"action=cancel&item={item.id}")
    assert item_of(any_engine, "2703", "G1").status == ItemStatus.OPEN  # asking changes nothing

    press = postback(user(STAFF_LINE), yes["data"])
    deliver(any_client, press)
    done = item_of(any_engine, "2703", "G1")
    staff = _user(any_engine, "staff-2703")
    assert done.status == ItemStatus.DONE and done.completed_by_id == staff.id
    with Session(any_engine) as session:
        [entry] = session.exec(select(AuditEntry).where(
            AuditEntry.action == "item.done", AuditEntry.entity_id == str(item.id))).all()
    assert (entry.actor, entry.actor_id) == ("staff-2703", staff.id)
    answer = replies(line)[-1]
    assert answer["reply_token"] == press["replyToken"]
    text = reply_text(answer)
    assert text.startswith("✅ บันทึกแล้ว") and "Done:" in text
    assert "งานที่ยังค้างของอำเภอ" in text and "Still open" in text
    assert "ศึกษาแนวทางการดำเนินงาน" not in text.split("งานที่ยังค้าง")[1]  # G1 is no longer open
    assert "จัดประชุมกลไก" in text  # G2 still is

    before, calls = snapshot(any_engine), line.state.stats()["reply_requests"]
    assert calls == 2
    deliver(any_client, dict(press, deliveryContext={"isRedelivery": True}))
    deliver(any_client, dict(ask, deliveryContext={"isRedelivery": True}))
    assert snapshot(any_engine) == before
    assert line.state.stats()["reply_requests"] == calls  # not even an attempt at a second reply


def test_pressing_done_on_a_done_item_says_so(client, engine, line):
    item = item_of(engine, "2703", "G1")
    deliver(client, postback(user(STAFF_LINE), f"action=done-confirm&item={item.id}"))
    before = snapshot(engine)
    deliver(client, postback(user(STAFF_LINE), f"action=done-confirm&item={item.id}"))
    assert "รายการนี้ทำเสร็จแล้ว" in reply_text(replies(line)[-1])
    assert snapshot(engine)[:2] == before[:2]


@pytest.mark.parametrize("action", ["done", "done-confirm"])
def test_another_districts_item_and_the_report_step_are_refused_with_why(any_client, any_engine,
                                                                         line, action):
    other = item_of(any_engine, "2709", "G1")
    report = item_of(any_engine, "2703", "R1")
    before = snapshot(any_engine)
    deliver(any_client, postback(user(STAFF_LINE), f"action={action}&item={other.id}"),
            postback(user(STAFF_LINE), f"action={action}&item={report.id}"))
    elsewhere, form_only = replies(line)
    # the web's own refusal: district staff may not even see another district
    assert reply_text(elsewhere).startswith("❌ ไม่ได้บันทึก: คุณไม่มีสิทธิ์ดูข้อมูลอำเภอวังสมบูรณ์")
    assert "Not recorded: you may not see district 2709" in reply_text(elsewhere)
    assert reply_text(form_only).startswith("❌ ไม่ได้บันทึก: ส่งแบบรายงาน")
    assert "submit the report form" in reply_text(form_only)
    audits, items, _ = snapshot(any_engine)
    assert (audits, items) == before[:2]


def test_an_unlinked_user_a_bad_postback_and_cancel_change_nothing(client, engine, line):
    item = item_of(engine, "2703", "G2")
    before = snapshot(engine)
    deliver(client, postback(user(STRANGER), f"action=done-confirm&item={item.id}"),
            said(user(STRANGER), "งาน"),
            postback(user(STAFF_LINE), "action=delete&item=1"),
            postback(user(STAFF_LINE), f"action=done-confirm&item={item.id}&item=2"),
            postback(user(STAFF_LINE), f"action=cancel&item={item.id}"))
    texts = [reply_text(r) for r in replies(line)]
    assert texts[0].startswith("❌ บัญชี LINE นี้ยังไม่ได้เชื่อมกับ tidtam")
    assert "not linked to tidtam" in texts[0]
    assert texts[1] == texts[0]
    assert texts[2].startswith("❌ ไม่เข้าใจคำสั่งนี้") and texts[3] == texts[2]
    assert texts[4].startswith("ยกเลิกแล้ว ไม่มีการเปลี่ยนแปลง")
    assert snapshot(engine)[:2] == before[:2]


# --- "งาน" ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("words", ["งาน", " งานค้าง ", "Tasks"])
def test_typing_tasks_lists_the_persons_open_items(client, engine, line, words):
    before = snapshot(engine)
    deliver(client, said(user(STAFF_LINE), words))
    [answer] = replies(line)
    text = reply_text(answer)
    assert text.startswith("งานที่ยังค้างของอำเภอ")
    assert "ศึกษาแนวทางการดำเนินงาน" in text and "(เลยกำหนด / late)" in text  # G1 was due on the 17th
    assert "…และอีก" in text  # more than eight open: the rest counted, not listed
    assert snapshot(engine)[:2] == before[:2]


def test_other_chat_is_left_alone(client, line):
    deliver(client, said(user(STAFF_LINE), "สวัสดีครับ"))
    assert replies(line) == []


# --- a group bound to a district -----------------------------------------------------------------

def test_a_group_answers_for_its_district_as_the_member_who_pressed(any_client, any_engine, line):
    item = item_of(any_engine, "2703", "G2")
    deliver(any_client, postback(in_group(HEAD_2701_LINE), f"action=done-confirm&item={item.id}"),
            postback(in_group(STRANGER), f"action=done-confirm&item={item.id}"))
    for answer in replies(line):
        assert reply_text(answer).startswith("❌ ผู้กดยังไม่ได้เชื่อมบัญชี LINE เป็นเจ้าหน้าที่ของอำเภอ")
    assert item_of(any_engine, "2703", "G2").status == ItemStatus.OPEN

    deliver(any_client, postback(in_group(STAFF_LINE), f"action=done-confirm&item={item.id}"),
            said(in_group(STAFF_LINE), "งาน"))
    staff = _user(any_engine, "staff-2703")
    assert item_of(any_engine, "2703", "G2").completed_by_id == staff.id
    with Session(any_engine) as session:
        entry = session.exec(select(AuditEntry).where(
            AuditEntry.action == "item.done", AuditEntry.entity_id == str(item.id))).one()
    assert entry.actor == "staff-2703"
    done, tasks = replies(line)[-2:]
    assert reply_text(done).startswith("✅ บันทึกแล้ว") and "staff-2703" in reply_text(done)
    assert reply_text(tasks).startswith("งานที่ยังค้างของอำเภอ")


def test_a_group_member_cannot_mark_another_districts_item(client, engine, line):
    other = item_of(engine, "2701", "G3")
    deliver(client, postback(in_group(STAFF_LINE), f"action=done-confirm&item={other.id}"))
    assert "คุณไม่มีสิทธิ์ดูข้อมูลอำเภอ" in reply_text(replies(line)[0])
    assert item_of(engine, "2701", "G3").status == ItemStatus.OPEN


# --- the reply is sent after the commit, and its failure undoes nothing ---------------------------

def test_a_refused_reply_leaves_the_change_in_place(client, engine, line):
    used = uuid.uuid4().hex
    deliver(client, said(user(STAFF_LINE), "งาน", reply_token=used))
    item = item_of(engine, "2703", "G4")
    # LINE answers 400 "Invalid reply token" to a token used before; the mark stands.
    deliver(client, postback(user(STAFF_LINE), f"action=done-confirm&item={item.id}",
                             reply_token=used))
    assert item_of(engine, "2703", "G4").status == ItemStatus.DONE
    assert len(replies(line)) == 1
    assert line.state.reply_requests[-1]["status"] == 400  # it was tried, and refused


def test_with_lines_api_down_the_change_stands(engine, line):
    _linked(engine)
    app = make_app(engine, line_channel_secret=SECRET, line_channel_access_token=TOKEN,
                   line_api_base="http://127.0.0.1:9")  # nothing listens there
    item = item_of(engine, "2703", "G3")
    with TestClient(app) as c:
        deliver(c, postback(user(STAFF_LINE), f"action=done-confirm&item={item.id}"))
    assert item_of(engine, "2703", "G3").status == ItemStatus.DONE


def _user(engine, username: str) -> User:
    with Session(engine) as session:
        return get_by_username(session, username)


def test_a_waived_item_is_refused_as_on_the_web(client, engine, line):
    from tidtam.app.tracking import waive

    item = item_of(engine, "2703", "G5")
    with Session(engine) as session:
        waive(session, get_by_username(session, "coordinator"), item.id, reason="ไม่มีศูนย์ในอำเภอ",
              now=CLOCK)
        session.commit()
    before = snapshot(engine)
    deliver(client, postback(user(STAFF_LINE), f"action=done&item={item.id}"))
    assert "รายการนี้ได้รับการยกเว้นแล้ว" in reply_text(replies(line)[0])
    assert snapshot(engine)[:2] == before[:2]
