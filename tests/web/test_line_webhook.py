"""POST /line/webhook signed the way LINE signs it, and the profile page that hands out the codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from models.audit import AuditEntry
from models.line import LineContact, LineGroup, LineLinkCode, LineWebhookEvent, groups_by_district
from models.user import User, get_by_username
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, csrf, signed_in, user_named
from tidtam.app.line_linking import CODE_LIFETIME
from tidtam.infra.clock import FixedClock

SECRET = "8c570fa6dd201bb328f1c1eac23a96d8"  # a test channel secret (32 hex, like LINE's)
BOT = "U" + "b" * 32
SOMCHAI = "U" + "4af4980629" * 3 + "ab"
MALEE = "U" + "0123456789" * 3 + "cd"
GROUP = "C" + "a1b2c3d4e5" * 3 + "f6"
_ids = itertools.count(1)


# --- what LINE sends -----------------------------------------------------------------------------

def line_signature(body: bytes, secret: str = SECRET) -> str:
    """x-line-signature: base64 of the HMAC-SHA256 digest of the raw body, keyed by the secret."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def body_of(*events: dict) -> bytes:
    return json.dumps({"destination": BOT, "events": list(events)}, ensure_ascii=False).encode()


def deliver(client: TestClient, body: bytes, signature: str | bytes | None = "sign"):
    headers = {"content-type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["x-line-signature"] = line_signature(body) if signature == "sign" else signature
    return client.post("/line/webhook", content=body, headers=headers)


def event(kind: str, source: dict, *, at: datetime = CLOCK, event_id: str | None = None,
          redelivery: bool = False, **extra) -> dict:
    return {"type": kind, "mode": "active", "timestamp": int(at.timestamp() * 1000),
            "source": source, "webhookEventId": event_id or f"01J{next(_ids):023d}",
            "deliveryContext": {"isRedelivery": redelivery}, **extra}


def from_user(line_id: str) -> dict:
    return {"type": "user", "userId": line_id}


def in_group(group_id: str = GROUP, line_id: str | None = SOMCHAI) -> dict:
    return {"type": "group", "groupId": group_id, **({"userId": line_id} if line_id else {})}


def text(source: dict, words: str, **kwargs) -> dict:
    return event("message", source, replyToken="nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
                 message={"id": str(next(_ids)), "type": "text", "text": words,
                          "quoteToken": "q3Plxr4AgKd"}, **kwargs)


# --- fixtures and reading the database -----------------------------------------------------------

@pytest.fixture
def app(engine):
    return make_app(engine, line_channel_secret=SECRET, line_channel_access_token="t" * 40)


@pytest.fixture
def any_line_client(any_engine):
    with TestClient(make_app(any_engine, line_channel_secret=SECRET)) as c:
        yield c


def snapshot(engine) -> tuple:
    """Everything the webhook could change."""
    with Session(engine) as session:
        counts = tuple(session.exec(select(func.count()).select_from(table)).one()
                       for table in (AuditEntry, LineContact, LineGroup, LineWebhookEvent))
        used = session.exec(select(func.count()).select_from(LineLinkCode)
                            .where(LineLinkCode.used_at.is_not(None))).one()
        links = tuple(session.exec(select(User.id, User.line_user_id).order_by(User.id)).all())
    return counts, used, links


def code_on_profile(client: TestClient) -> str:
    page = client.get("/profile")
    assert page.status_code == 200
    return re.search(r'id="line-code".*?data-code="([A-Z0-9]{8})"', page.text, re.S).group(1)


def get_code(client: TestClient, username: str) -> str:
    signed_in(client, username)
    response = client.post("/profile/line-code", data={"csrftoken": csrf(client)},
                           follow_redirects=False)
    assert response.status_code == 303
    return code_on_profile(client)


# --- the signature -------------------------------------------------------------------------------

def test_a_forged_signature_is_refused_and_changes_nothing(client, engine):
    code = get_code(client, "staff-2703")
    body = body_of(event("follow", from_user(SOMCHAI)), text(from_user(SOMCHAI), code))
    before = snapshot(engine)
    forged = [line_signature(body, secret="not-the-channel-secret"),
              line_signature(body + b" "),          # signed over other bytes
              line_signature(body)[:-4] + "AAA=",   # tampered
              "", "not base64 at all", "ÿ✓".encode()]
    for signature in forged:
        assert deliver(client, body, signature).status_code == 401
    assert deliver(client, body, signature=None).status_code == 401  # no header at all
    assert snapshot(engine) == before
    assert user_named(engine, "staff-2703").line_user_id != SOMCHAI


def test_the_signature_covers_the_raw_bytes_not_the_parsed_json(client, engine):
    raw = body_of(event("follow", from_user(SOMCHAI)))
    reformatted = json.dumps(json.loads(raw), indent=2, ensure_ascii=True).encode()
    assert deliver(client, reformatted, line_signature(raw)).status_code == 401
    assert deliver(client, reformatted, line_signature(reformatted)).status_code == 200


def test_without_a_channel_secret_every_call_is_refused(engine):
    with TestClient(make_app(engine)) as plain:
        body = body_of(event("follow", from_user(SOMCHAI)))
        assert deliver(plain, body).status_code == 401
        assert deliver(plain, body, line_signature(body, secret="")).status_code == 401


def test_lines_verify_call_with_no_events_gets_200(client):
    response = deliver(client, body_of())
    assert response.status_code == 200


def test_a_signed_body_that_is_not_lines_shape_is_a_400(client):
    for body in (b"not json", b"[]", b'{"events": {}}'):
        assert deliver(client, body).status_code == 400


def test_an_oversized_body_is_refused_before_it_is_checked(client):
    assert deliver(client, b"{" + b" " * 1_000_001 + b"}").status_code == 413


def test_the_webhook_needs_no_csrf_token_even_from_a_browser_with_cookies(client):
    signed_in(client, "staff-2703")  # the client now carries session and CSRF cookies
    assert client.cookies.get("csrftoken")
    assert deliver(client, body_of(event("follow", from_user(SOMCHAI)))).status_code == 200


# --- events --------------------------------------------------------------------------------------

def test_follow_and_unfollow(client, engine):
    assert deliver(client, body_of(event("follow", from_user(SOMCHAI), replyToken="r",
                                         follow={"isUnblocked": False}))).status_code == 200
    with Session(engine) as session:
        contact = session.exec(select(LineContact)).one()
    assert (contact.line_user_id, contact.followed_at, contact.unfollowed_at) == (SOMCHAI, CLOCK, None)
    code = get_code(client, "staff-2703")
    deliver(client, body_of(text(from_user(SOMCHAI), code)))
    assert user_named(engine, "staff-2703").line_user_id == SOMCHAI
    later = CLOCK + timedelta(hours=2)
    assert deliver(client, body_of(event("unfollow", from_user(SOMCHAI), at=later))).status_code == 200
    assert user_named(engine, "staff-2703").line_user_id is None  # pushes to it stop
    with Session(engine) as session:
        assert session.exec(select(LineContact)).one().unfollowed_at == later


def test_join_and_leave(client, engine):
    deliver(client, body_of(event("join", in_group(line_id=None), replyToken="r")))
    with Session(engine) as session:
        group = session.exec(select(LineGroup)).one()
    assert (group.group_id, group.district_code, group.joined_at) == (GROUP, None, CLOCK)
    later = CLOCK + timedelta(days=1)
    deliver(client, body_of(event("leave", in_group(line_id=None), at=later)))
    with Session(engine) as session:
        assert session.exec(select(LineGroup)).one().left_at == later


def test_a_person_links_their_line_account_with_the_code_from_their_profile(client, engine):
    code = get_code(client, "staff-2703")
    page = client.get("/profile").text
    assert "เพิ่มเพื่อน LINE Official Account ของสำนักงาน แล้วส่งรหัสนี้ในแชต" in page
    assert "LINE Official Account as a friend, then send this code in the chat." in page  # English too
    response = deliver(client, body_of(text(from_user(SOMCHAI), code)))
    assert response.status_code == 200 and response.json() == {}
    staff = user_named(engine, "staff-2703")
    assert (staff.line_user_id, staff.line_route_error) == (SOMCHAI, None)
    with Session(engine) as session:
        [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "user.line_link")).all()
    assert (entry.actor, entry.entity_id) == ("staff-2703", str(staff.id))
    page = client.get("/profile").text
    assert 'data-line-status="linked"' in page and SOMCHAI[-4:] in page
    assert SOMCHAI not in page  # masked
    assert 'id="line-code"' not in page  # the code was used up


def test_an_expired_code_does_nothing(client, app, engine):
    code = get_code(client, "staff-2703")
    app.state.clock = FixedClock(CLOCK + CODE_LIFETIME + timedelta(seconds=1))
    before = snapshot(engine)
    assert deliver(client, body_of(text(from_user(SOMCHAI), code))).status_code == 200
    assert snapshot(engine)[2] == before[2]  # nobody linked
    assert user_named(engine, "staff-2703").line_user_id != SOMCHAI


def test_a_reused_code_does_nothing(client, engine):
    code = get_code(client, "staff-2703")
    deliver(client, body_of(text(from_user(SOMCHAI), code)))
    before = snapshot(engine)
    assert deliver(client, body_of(text(from_user(MALEE), code))).status_code == 200
    assert snapshot(engine)[2] == before[2]
    assert user_named(engine, "staff-2703").line_user_id == SOMCHAI


def test_a_redelivered_event_does_nothing_twice(client, engine):
    code = get_code(client, "staff-2703")
    message = text(from_user(SOMCHAI), code)
    deliver(client, body_of(message))
    deliver(client, body_of(event("unfollow", from_user(SOMCHAI), at=CLOCK + timedelta(minutes=1))))
    before = snapshot(engine)
    again = {**message, "deliveryContext": {"isRedelivery": True}}
    assert deliver(client, body_of(again)).status_code == 200
    assert snapshot(engine) == before
    assert user_named(engine, "staff-2703").line_user_id is None  # the unfollow still stands


def test_a_coordinator_binds_a_line_group_to_a_district(client, engine):
    signed_in(client, "coordinator")
    response = client.post("/profile/line-group-code",
                           data={"district": "2703", "csrftoken": csrf(client)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/profile#group-2703"
    page = client.get("/profile").text
    row = re.search(r'<tr id="group-2703".*?</tr>', page, re.S).group(0)
    code = re.search(r'data-code="([A-Z0-9]{8})"', row).group(1)
    deliver(client, body_of(event("join", in_group(line_id=None)), text(in_group(), code)))
    with Session(engine) as session:
        assert bound_group(session, "2703") == GROUP
        group = session.exec(select(LineGroup)).one()
    assert group.bound_by_id == user_named(engine, "coordinator").id
    row = re.search(r'<tr id="group-2703".*?</tr>', client.get("/profile").text, re.S).group(0)
    assert GROUP[-4:] in row and "data-code" not in row


def test_only_the_coordinator_gets_group_codes(client):
    signed_in(client, "staff-2703")
    response = client.post("/profile/line-group-code", data={"district": "2703",
                                                             "csrftoken": csrf(client)})
    assert response.status_code == 403
    profile = client.get("/profile")
    assert profile.status_code == 200 and 'id="groups"' not in profile.text


def test_unlink_from_the_profile(client, engine):
    code = get_code(client, "head-2701")
    deliver(client, body_of(text(from_user(MALEE), code)))
    assert user_named(engine, "head-2701").line_user_id == MALEE
    response = client.post("/profile/line-unlink", data={"csrftoken": csrf(client)},
                           follow_redirects=False)
    assert response.status_code == 303
    assert user_named(engine, "head-2701").line_user_id is None
    assert 'data-line-status="none"' in client.get("/profile").text


def test_a_broken_route_shows_why_on_the_profile(client, engine):
    with Session(engine) as session:
        staff = get_by_username(session, "staff-2705")
        staff.line_user_id, staff.line_route_error = SOMCHAI, "400 Failed to send messages"
        session.add(staff)
        session.commit()
    signed_in(client, "staff-2705")
    page = client.get("/profile").text
    assert 'data-line-status="broken"' in page and "400 Failed to send messages" in page


def test_profile_forms_need_the_csrf_token_and_a_signed_in_user(client):
    response = client.get("/profile", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    signed_in(client, "staff-2703")
    assert client.post("/profile/line-code", data={}).status_code == 403
    assert client.post("/profile/line-unlink", data={"csrftoken": "forged"}).status_code == 403


def test_the_profile_is_in_the_menu(client):
    signed_in(client, "staff-2703")
    assert 'href="/profile"' in client.get("/districts/2703").text


def test_linking_on_postgresql_too(any_line_client, any_engine):
    code = get_code(any_line_client, "staff-2709")
    body = body_of(event("follow", from_user(SOMCHAI)), text(from_user(SOMCHAI), code))
    assert deliver(any_line_client, body, line_signature(body, "forged")).status_code == 401
    assert deliver(any_line_client, body).status_code == 200
    assert deliver(any_line_client, body).status_code == 200  # the same delivery again
    assert user_named(any_engine, "staff-2709").line_user_id == SOMCHAI
    with Session(any_engine) as session:
        assert session.exec(select(func.count()).select_from(LineWebhookEvent)).one() == 2
        links = session.exec(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "user.line_link")).one()
    assert links == 1


def bound_group(session, district_code: str) -> str | None:
    """The id of the LINE group the district's reminders go to (the sweep's own look-up)."""
    group = groups_by_district(session, [district_code]).get(district_code)
    return group.group_id if group else None
