"""Calendar feeds (issue 15, item 7): a secret ICS address per person and per district, on
SQLite and PostgreSQL, read without signing in, parsed with ``icalendar``; a revoked address
answers 404; making and revoking are audited."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from sqlmodel import Session, select

from models.audit import AuditEntry
from models.directive import Directive as DirectiveRow
from models.directive import DirectiveStatus, DirectiveStep, ItemStatus, TrackedItem, get_directive_by_slug
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, SLUG, csrf, signed_in, user_named
from tidtam.app.tracking import mark_done


def new_feed(client: TestClient, **form: str) -> str:
    """Make an address on the profile page; the URL the page shows this once."""
    page = client.post("/profile/calendar", data={"csrftoken": csrf(client), **form})
    assert page.status_code == 200, page.text
    found = re.search(r'id="new-feed-url"[^>]*value="([^"]+)"', page.text)
    assert found, "the new address is shown on the page"
    return found.group(1)


def path_of(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def read(client: TestClient, url: str) -> Calendar:
    """The feed as a calendar app reads it: no cookie, no token."""
    with TestClient(client.app) as anonymous:
        answer = anonymous.get(path_of(url))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(answer.content)


def events(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def district_items(engine, code: str) -> list[tuple[TrackedItem, DirectiveStep]]:
    with Session(engine) as session:
        return list(session.exec(
            select(TrackedItem, DirectiveStep).join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
            .join(DirectiveRow, DirectiveRow.id == TrackedItem.directive_id)
            .where(TrackedItem.district_code == code,
                   DirectiveRow.status == DirectiveStatus.ACTIVE)))


def audit_actions(engine) -> list[str]:
    with Session(engine) as session:
        return [e.action for e in session.exec(
            select(AuditEntry).where(AuditEntry.entity == "calendar_feed").order_by(AuditEntry.id))]


def test_a_persons_feed_holds_every_deadline_in_bangkok_and_a_revoked_one_is_gone(any_engine):
    with TestClient(make_app(any_engine)) as client:
        staff = signed_in(client, "staff-2701")
        url = new_feed(staff, scope="person")
        assert re.fullmatch(r"http://127\.0\.0\.1:8000/calendar/[A-Za-z0-9_-]{43}\.ics", url)
        cal = read(client, url)

        assert str(cal["X-WR-TIMEZONE"]) == "Asia/Bangkok"
        assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Bangkok"]
        items = district_items(any_engine, "2701")
        assert items, "the demo tracks district 2701"
        found = events(cal)
        assert set(found) == {f"item-{item.id}@127.0.0.1" for item, _ in items}
        for item, step in items:
            event = found[f"item-{item.id}@127.0.0.1"]
            assert event.decoded("DTSTART") == item.due_on, "an all-day event on the due day"
            assert event.decoded("DTEND") == item.due_on + timedelta(days=1)
            assert step.code in str(event["SUMMARY"]) and "ครบกำหนด" in str(event["SUMMARY"])
            assert str(event["URL"]) == f"http://127.0.0.1:8000/items/{item.id}"
            assert str(event["SUMMARY"]).startswith("✓") == (item.status == ItemStatus.DONE)

        # A new address replaces the old one; revoking ends it: both answer 404.
        second = new_feed(staff, scope="person")
        with TestClient(client.app) as anonymous:
            assert anonymous.get(path_of(url)).status_code == 404
            assert anonymous.get(path_of(second)).status_code == 200
        feed_id = re.search(r'data-feed="(\d+)"', staff.get("/profile").text).group(1)
        answer = staff.post(f"/profile/calendar/{feed_id}/revoke", data={"csrftoken": csrf(staff)},
                            follow_redirects=False)
        assert answer.status_code == 303
        with TestClient(client.app) as anonymous:
            assert anonymous.get(path_of(second)).status_code == 404
            assert anonymous.get("/calendar/not-a-secret.ics").status_code == 404
        assert audit_actions(any_engine) == ["calendar_feed.create", "calendar_feed.revoke",
                                             "calendar_feed.create", "calendar_feed.revoke"]


def test_a_change_shows_in_the_feed_with_the_same_uid_and_a_higher_sequence(engine):
    with TestClient(make_app(engine)) as client:
        url = new_feed(signed_in(client, "staff-2702"), scope="person")
        before = events(read(client, url))
        with Session(engine) as session:
            directive = get_directive_by_slug(session, SLUG)
            item = session.exec(select(TrackedItem).where(
                TrackedItem.directive_id == directive.id, TrackedItem.district_code == "2702",
                TrackedItem.status == ItemStatus.OPEN)).first()
            mark_done(session, user_named(engine, "staff-2702"), item.id, now=CLOCK,
                      expected_version=item.version)
            session.commit()
            uid = f"item-{item.id}@127.0.0.1"
        after = events(read(client, url))
        assert set(after) == set(before)
        assert int(after[uid]["SEQUENCE"]) == int(before[uid]["SEQUENCE"]) + 1
        assert after[uid].decoded("LAST-MODIFIED") == CLOCK
        assert str(after[uid]["SUMMARY"]).startswith("✓ ")
        assert not str(before[uid]["SUMMARY"]).startswith("✓")


def test_district_feeds_follow_who_may_see_the_district(engine):
    with TestClient(make_app(engine)) as client:
        coordinator = signed_in(client, "coordinator")
        mine = events(read(client, new_feed(coordinator, scope="person")))
        with Session(engine) as session:
            steps = session.exec(select(DirectiveStep).join(
                DirectiveRow, DirectiveRow.id == DirectiveStep.directive_id).where(
                DirectiveRow.status == DirectiveStatus.ACTIVE,
                DirectiveRow.province_code == "27")).all()
        assert set(mine) == {f"step-{s.id}@127.0.0.1" for s in steps}, "one event per step"
        assert all(mine[f"step-{s.id}@127.0.0.1"].decoded("DTSTART") == s.due_on for s in steps)

        district = events(read(client, new_feed(coordinator, scope="district", district="2703")))
        assert set(district) == {f"item-{i.id}@127.0.0.1" for i, _ in district_items(engine, "2703")}

    with TestClient(make_app(engine)) as other:
        staff = signed_in(other, "staff-2701")
        refused = staff.post("/profile/calendar", data={"csrftoken": csrf(staff), "scope": "district",
                                                        "district": "2703"})
        assert refused.status_code == 403
        english = read(other, new_feed(staff, scope="district", district="2701") + "?lang=en")
        assert all(str(e["SUMMARY"]).lstrip("✓⊘ ").startswith("Due ") for e in english.walk("VEVENT"))


@pytest.mark.parametrize("path", ["/calendar/x.ics", "/calendar/" + "a" * 43 + ".ics"])
def test_an_unknown_address_is_404_without_signing_in(client, path):
    assert client.get(path).status_code == 404


def test_a_disabled_account_s_feed_is_404(engine):
    with TestClient(make_app(engine)) as client:
        url = new_feed(signed_in(client, "staff-2704"), scope="person")
        with Session(engine) as session:
            user = user_named(engine, "staff-2704")
            user.is_active = False
            session.add(user)
            session.commit()
        with TestClient(client.app) as anonymous:
            assert anonymous.get(path_of(url)).status_code == 404


def test_a_calendar_app_may_ask_head_first(engine):
    with TestClient(make_app(engine)) as client:
        url = new_feed(signed_in(client, "staff-2705"), scope="person")
        with TestClient(client.app) as anonymous:
            head = anonymous.head(path_of(url))
            assert head.status_code == 200 and head.headers["content-type"].startswith("text/calendar")
            assert head.headers["x-robots-tag"] == "noindex"
