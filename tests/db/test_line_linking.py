"""LINE linking's use cases on SQLite and PostgreSQL: codes, webhook events, groups, unlinking."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, select

from domain.errors import Forbidden, NotFound
from models.audit import AuditEntry, entries_for
from models.line import (
    CodePurpose,
    LineContact,
    LineGroup,
    LineLinkCode,
    LineWebhookEvent,
    claim_code,
    get_contact,
    get_group,
    groups_by_district,
)
from models.org import District, Province
from models.user import get_by_username
from tests.conftest import NOW
from tidtam.app.line_linking import (
    CODE_ALPHABET,
    CODE_LENGTH,
    CODE_LIFETIME,
    handle_events,
    mask_line_id,
    new_group_code,
    new_link_code,
    normalise_code,
    profile_view,
    unlink,
)

SOMCHAI = "U" + "4af4980629" * 3 + "ab"
MALEE = "U" + "0123456789" * 3 + "cd"
GROUP_2703 = "C" + "a1b2c3d4e5" * 3 + "f6"
OTHER_GROUP = "C" + "0f0e0d0c0b" * 3 + "0a"
_ids = itertools.count(1)


# --- LINE's event objects, as the webhook delivers them -----------------------------------------

def event(kind: str, source: dict, *, at: datetime = NOW, event_id: str | None = None,
          redelivery: bool = False, **extra) -> dict:
    return {"type": kind, "mode": "active", "timestamp": int(at.timestamp() * 1000),
            "source": source, "webhookEventId": event_id or f"01J{next(_ids):023d}",
            "deliveryContext": {"isRedelivery": redelivery}, **extra}


def from_user(line_id: str) -> dict:
    return {"type": "user", "userId": line_id}


def in_group(group_id: str, line_id: str | None = SOMCHAI) -> dict:
    return {"type": "group", "groupId": group_id, **({"userId": line_id} if line_id else {})}


def text(source: dict, words: str, **kwargs) -> dict:
    return event("message", source, replyToken="b60d432864f44d079f6d8efe86cf404b",
                 message={"id": str(next(_ids)), "type": "text", "text": words,
                          "quoteToken": "q3Plxr4AgKd"}, **kwargs)


def user(session, username):
    return get_by_username(session, username)


def actions(session, entity: str, entity_id) -> list[str]:
    """The LINE-related audit actions on one entity, in order."""
    return [e.action for e in entries_for(session, entity, entity_id)
            if "line" in e.action]


# --- codes ---------------------------------------------------------------------------------------

def test_a_link_code_is_short_unambiguous_one_per_person_and_audited(session, launched):
    staff = user(session, "staff-2703")
    first = new_link_code(session, staff, NOW)
    second = new_link_code(session, staff, NOW + timedelta(minutes=1))
    for code in (first, second):
        assert len(code.code) == CODE_LENGTH and set(code.code) <= set(CODE_ALPHABET)
        assert not set(code.code) & set("01OIL")
    assert (second.purpose, second.user_id, second.created_by_id) == (CodePurpose.USER, staff.id,
                                                                       staff.id)
    assert second.expires_at == NOW + timedelta(minutes=1) + CODE_LIFETIME
    session.refresh(first)
    assert first.expires_at == NOW + timedelta(minutes=1)  # the newer code ended the older one
    assert actions(session, "user", staff.id) == ["user.line_code", "user.line_code"]
    assert profile_view(session, staff, NOW + timedelta(minutes=2)).code.id == second.id


def test_only_the_coordinator_makes_group_codes_and_only_for_their_province(session, launched):
    coordinator = user(session, "coordinator")
    code = new_group_code(session, coordinator, "2703", NOW)
    assert (code.purpose, code.district_code, code.user_id) == (CodePurpose.GROUP, "2703", None)
    assert actions(session, "district", "2703") == ["district.line_group_code"]
    with pytest.raises(Forbidden):
        new_group_code(session, user(session, "staff-2703"), "2703", NOW)
    with pytest.raises(Forbidden):
        new_group_code(session, user(session, "province-head"), "2703", NOW)
    session.add(Province(code="10", name_th="กรุงเทพมหานคร", name_en="Bangkok"))
    session.flush()
    session.add(District(code="1001", province_code="10", name_th="พระนคร", name_en="Phra Nakhon"))
    session.flush()
    with pytest.raises(Forbidden):
        new_group_code(session, coordinator, "1001", NOW)
    with pytest.raises(NotFound):
        new_group_code(session, coordinator, "2799", NOW)


@pytest.mark.parametrize(("typed", "code"), [
    ("ABCD2345", "ABCD2345"),
    ("  abcd2345\n", "ABCD2345"),
    ("ABCD-2345", "ABCD2345"),
    ("abcd 2345", "ABCD2345"),
    ("ABCD234", None),          # too short
    ("ABCD23456", None),        # too long
    ("ABCD0345", None),         # 0 is not in the alphabet
    ("สวัสดีครับ", None),
    ("code ABCD2345", None),    # the whole message must be the code
    ("", None),
])
def test_codes_are_read_as_people_type_them(typed, code):
    assert normalise_code(typed) == code


def test_mask_line_id_keeps_enough_to_recognise():
    assert mask_line_id(SOMCHAI) == "U4a…" + SOMCHAI[-4:]
    assert mask_line_id(None) is None


# --- linking a person ----------------------------------------------------------------------------

def test_a_valid_code_sent_to_the_bot_links_that_line_account(session, launched):
    staff = user(session, "staff-2703")
    staff.line_route_error = "400 The user hasn't added the LINE Official Account as a friend."
    code = new_link_code(session, staff, NOW)
    later = NOW + timedelta(minutes=5)
    assert handle_events(session, [text(from_user(SOMCHAI), code.code.lower())], later) == ["linked"]
    session.refresh(staff)
    assert (staff.line_user_id, staff.line_route_error) == (SOMCHAI, None)
    session.refresh(code)
    assert (code.used_at, code.used_by) == (later, SOMCHAI)
    [link] = [e for e in entries_for(session, "user", staff.id) if e.action == "user.line_link"]
    assert (link.actor, link.actor_id, link.after["line_user_id"]) == ("staff-2703", staff.id, SOMCHAI)
    assert link.before["line_route_error"].startswith("400")
    assert profile_view(session, staff, later).line_masked == mask_line_id(SOMCHAI)


def test_an_expired_code_links_nothing(session, launched):
    staff = user(session, "staff-2703")
    code = new_link_code(session, staff, NOW)
    too_late = NOW + CODE_LIFETIME
    assert handle_events(session, [text(from_user(SOMCHAI), code.code)], too_late) == ["invalid_code"]
    session.refresh(staff)
    assert staff.line_user_id is None
    assert session.get(LineLinkCode, code.id).used_at is None


def test_a_used_code_links_nobody_else(session, launched):
    staff = user(session, "staff-2703")
    code = new_link_code(session, staff, NOW)
    assert handle_events(session, [text(from_user(SOMCHAI), code.code)], NOW) == ["linked"]
    assert handle_events(session, [text(from_user(MALEE), code.code)], NOW) == ["invalid_code"]
    session.refresh(staff)
    assert staff.line_user_id == SOMCHAI
    assert not claim_code(session, code.id, MALEE, NOW)  # the conditional update refuses too


def test_a_person_code_sent_in_a_group_or_a_group_code_sent_alone_does_nothing(session, launched):
    staff, coordinator = user(session, "staff-2703"), user(session, "coordinator")
    person_code = new_link_code(session, staff, NOW)
    group_code = new_group_code(session, coordinator, "2703", NOW)
    outcomes = handle_events(session, [text(in_group(GROUP_2703), person_code.code),
                                       text(from_user(SOMCHAI), group_code.code)], NOW)
    assert outcomes == ["invalid_code", "invalid_code"]
    session.refresh(staff)
    assert staff.line_user_id is None and bound_group(session, "2703") is None


def test_chat_that_is_not_a_code_is_ignored_and_not_recorded(session, launched):
    before = session.exec(select(LineWebhookEvent)).all()
    outcomes = handle_events(session, [
        text(from_user(SOMCHAI), "สวัสดีครับ"),
        event("message", from_user(SOMCHAI), message={"id": "1", "type": "sticker",
                                                       "packageId": "1", "stickerId": "1"}),
        event("postback", from_user(SOMCHAI), postback={"data": "x"}),
        {"type": "follow"},  # no webhookEventId: not LINE's shape
    ], NOW)
    assert outcomes == ["ignored", "ignored", "ignored", "malformed"]
    assert session.exec(select(LineWebhookEvent)).all() == before


def test_a_disabled_account_cannot_be_linked(session, launched):
    staff = user(session, "staff-2703")
    code = new_link_code(session, staff, NOW)
    staff.is_active = False
    session.add(staff)
    assert handle_events(session, [text(from_user(SOMCHAI), code.code)], NOW) == ["invalid_code"]
    session.refresh(staff)
    assert staff.line_user_id is None


# --- follow / unfollow ---------------------------------------------------------------------------

def test_follow_then_unfollow_records_the_contact_and_stops_pushes(session, launched):
    staff, head = user(session, "staff-2703"), user(session, "head-2703")
    staff.line_user_id = SOMCHAI
    head.line_user_id = MALEE
    session.add_all([staff, head])
    assert handle_events(session, [event("follow", from_user(SOMCHAI), replyToken="r",
                                         follow={"isUnblocked": False})], NOW) == ["followed"]
    contact = get_contact(session, SOMCHAI)
    assert (contact.followed_at, contact.unfollowed_at) == (NOW, None)
    later = NOW + timedelta(hours=1)
    assert handle_events(session, [event("unfollow", from_user(SOMCHAI), at=later)],
                         later) == ["unfollowed"]
    session.refresh(contact)
    session.refresh(staff)
    session.refresh(head)
    assert contact.unfollowed_at == later
    assert staff.line_user_id is None and head.line_user_id == MALEE
    [unlinked] = [e for e in entries_for(session, "user", staff.id) if e.action == "user.line_unlink"]
    assert (unlinked.actor, unlinked.before["line_user_id"], unlinked.after["reason"]) == \
        ("system:line-webhook", SOMCHAI, "unfollow")
    assert actions(session, "line_contact", SOMCHAI) == ["line_contact.follow",
                                                         "line_contact.unfollow"]


def test_following_again_clears_the_unfollow(session, launched):
    handle_events(session, [event("unfollow", from_user(SOMCHAI))], NOW)
    later = NOW + timedelta(days=1)
    handle_events(session, [event("follow", from_user(SOMCHAI), at=later)], later)
    contact = get_contact(session, SOMCHAI)
    assert (contact.followed_at, contact.unfollowed_at) == (later, None)


def test_a_redelivered_event_changes_nothing_twice(session, launched):
    staff = user(session, "staff-2703")
    follow = event("follow", from_user(SOMCHAI), event_id="01JREDELIVERED0000000000AA")
    assert handle_events(session, [follow], NOW) == ["followed"]
    unfollow_at = NOW + timedelta(minutes=10)
    handle_events(session, [event("unfollow", from_user(SOMCHAI), at=unfollow_at)], unfollow_at)
    code = new_link_code(session, staff, NOW)
    message = text(from_user(MALEE), code.code)
    assert handle_events(session, [message], NOW) == ["linked"]
    again = [{**follow, "deliveryContext": {"isRedelivery": True}},
             {**message, "deliveryContext": {"isRedelivery": True}}]
    assert handle_events(session, again, unfollow_at + timedelta(minutes=1)) == ["duplicate",
                                                                                 "duplicate"]
    assert get_contact(session, SOMCHAI).unfollowed_at == unfollow_at  # still unfollowed
    assert actions(session, "line_contact", SOMCHAI).count("line_contact.follow") == 1
    assert [e.action for e in entries_for(session, "user", staff.id)].count("user.line_link") == 1
    assert len(session.exec(select(LineWebhookEvent).where(
        LineWebhookEvent.webhook_event_id == follow["webhookEventId"])).all()) == 1


def test_an_event_older_than_what_was_applied_is_stale(session, launched):
    """A follow first delivered late (after the unfollow that followed it) must not re-follow."""
    unfollow_at = NOW + timedelta(minutes=10)
    handle_events(session, [event("unfollow", from_user(SOMCHAI), at=unfollow_at)], unfollow_at)
    assert handle_events(session, [event("follow", from_user(SOMCHAI), at=NOW)],
                         unfollow_at) == ["stale"]
    assert get_contact(session, SOMCHAI).unfollowed_at == unfollow_at


# --- groups --------------------------------------------------------------------------------------

def test_join_records_an_unbound_group_and_a_coordinator_code_binds_it(session, launched):
    coordinator = user(session, "coordinator")
    assert handle_events(session, [event("join", in_group(GROUP_2703, None), replyToken="r")],
                         NOW) == ["joined"]
    group = get_group(session, GROUP_2703)
    assert (group.joined_at, group.district_code, group.left_at) == (NOW, None, None)
    assert bound_group(session, "2703") is None
    code = new_group_code(session, coordinator, "2703", NOW)
    bound_at = NOW + timedelta(minutes=3)
    assert handle_events(session, [text(in_group(GROUP_2703), f" {code.code} ")],
                         bound_at) == ["bound"]
    session.refresh(group)
    assert (group.district_code, group.bound_by_id, group.bound_at) == ("2703", coordinator.id,
                                                                        bound_at)
    assert bound_group(session, "2703") == GROUP_2703
    assert actions(session, "line_group", GROUP_2703) == ["line_group.join", "line_group.bind"]
    [bind] = [e for e in entries_for(session, "line_group", GROUP_2703) if e.action == "line_group.bind"]
    assert (bind.actor, bind.after["district_code"]) == ("coordinator", "2703")
    view = profile_view(session, coordinator, bound_at)
    row = next(r for r in view.districts if r.district.code == "2703")
    assert row.group.group_id == GROUP_2703 and row.code is None  # the code was used


def test_a_group_bound_without_a_join_seen_is_still_recorded(session, launched):
    """The bot may have been in the group before the webhook was switched on."""
    code = new_group_code(session, user(session, "coordinator"), "2701", NOW)
    assert handle_events(session, [text(in_group(GROUP_2703, None), code.code)], NOW) == ["bound"]
    assert bound_group(session, "2701") == GROUP_2703


def test_binding_another_group_to_the_district_releases_the_first(session, launched):
    coordinator = user(session, "coordinator")
    first = new_group_code(session, coordinator, "2703", NOW)
    handle_events(session, [text(in_group(GROUP_2703), first.code)], NOW)
    later = NOW + timedelta(minutes=1)
    second = new_group_code(session, coordinator, "2703", later)
    assert handle_events(session, [text(in_group(OTHER_GROUP), second.code)], later) == ["bound"]
    assert bound_group(session, "2703") == OTHER_GROUP
    assert get_group(session, GROUP_2703).district_code is None
    assert "line_group.unbind" in actions(session, "line_group", GROUP_2703)


def test_leave_unbinds_the_group_and_stops_pushes_to_it(session, launched):
    code = new_group_code(session, user(session, "coordinator"), "2703", NOW)
    handle_events(session, [event("join", in_group(GROUP_2703, None)),
                            text(in_group(GROUP_2703), code.code)], NOW)
    left_at = NOW + timedelta(days=2)
    assert handle_events(session, [event("leave", in_group(GROUP_2703, None), at=left_at)],
                         left_at) == ["left"]
    group = get_group(session, GROUP_2703)
    assert (group.left_at, group.district_code) == (left_at, None)
    assert bound_group(session, "2703") is None
    [leave] = [e for e in entries_for(session, "line_group", GROUP_2703) if e.action == "line_group.leave"]
    assert leave.before == {"district_code": "2703"}


def test_a_multi_person_chat_counts_as_a_group(session, launched):
    room = "R" + "9" * 32
    code = new_group_code(session, user(session, "coordinator"), "2705", NOW)
    source = {"type": "room", "roomId": room, "userId": SOMCHAI}
    assert handle_events(session, [text(source, code.code)], NOW) == ["bound"]
    assert bound_group(session, "2705") == room


def test_a_group_code_from_someone_no_longer_coordinator_binds_nothing(session, launched):
    coordinator = user(session, "coordinator")
    code = new_group_code(session, coordinator, "2703", NOW)
    coordinator.is_active = False
    session.add(coordinator)
    assert handle_events(session, [text(in_group(GROUP_2703), code.code)], NOW) == ["invalid_code"]
    assert bound_group(session, "2703") is None


# --- unlinking -----------------------------------------------------------------------------------

def test_unlink_removes_the_line_id_and_its_error_and_is_audited(session, launched):
    staff = user(session, "staff-2703")
    staff.line_user_id, staff.line_route_error = SOMCHAI, "403 forbidden"
    session.add(staff)
    assert unlink(session, staff, NOW)
    session.refresh(staff)
    assert (staff.line_user_id, staff.line_route_error) == (None, None)
    [entry] = [e for e in entries_for(session, "user", staff.id) if e.action == "user.line_unlink"]
    assert (entry.actor, entry.before["line_user_id"], entry.after["reason"]) == \
        ("staff-2703", SOMCHAI, "user")
    assert not unlink(session, staff, NOW)  # nothing to unlink: no second entry
    assert [e.action for e in entries_for(session, "user", staff.id)].count("user.line_unlink") == 1


def test_the_profile_shows_a_broken_route(session, launched):
    staff = user(session, "staff-2703")
    staff.line_user_id, staff.line_route_error = SOMCHAI, "400 invalid user"
    view = profile_view(session, staff, NOW)
    assert (view.line_masked, view.route_error, view.districts) == (mask_line_id(SOMCHAI),
                                                                    "400 invalid user", [])
    coordinator_view = profile_view(session, user(session, "coordinator"), NOW)
    assert [r.district.code for r in coordinator_view.districts] == [f"270{i}" for i in range(1, 10)]


def test_an_empty_event_list_changes_nothing(session, launched):
    before = session.exec(select(AuditEntry)).all()
    handle_events(session, [], NOW)
    assert session.exec(select(AuditEntry)).all() == before
    assert session.exec(select(LineContact)).all() == []
    assert session.exec(select(LineGroup)).all() == []


# --- the migration matches the models ------------------------------------------------------------

def test_migration_0003_matches_the_line_tables(migrated_engine):
    line_tables = {"line_link_code", "line_contact", "line_group", "line_webhook_event"}
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert [d for d in diff if line_tables & _tables_in(d)] == []


def _tables_in(change) -> set[str]:
    """The table names a (possibly nested) autogenerate diff entry mentions."""
    if isinstance(change, list):
        return set().union(*(_tables_in(c) for c in change)) if change else set()
    names = set()
    for part in change:
        name = getattr(part, "name", None) if not isinstance(part, str) else part
        table = getattr(part, "table", None)
        names |= {n for n in (name, getattr(table, "name", None)) if isinstance(n, str)}
    return names


def bound_group(session, district_code: str) -> str | None:
    """The id of the LINE group the district's reminders go to (the sweep's own look-up)."""
    group = groups_by_district(session, [district_code]).get(district_code)
    return group.group_id if group else None
