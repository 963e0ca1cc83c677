"""Marking a step done writes the same rows on both databases: on PostgreSQL in one statement
(``models.marking.write_done``), on SQLite one statement each. A lost race writes nothing.

Each check would fail if the one-statement write lost the audit row, the event, the outbox
cancel (the item's queued messages, and its step's grouped message once no district has it
open) or wrote anything when another writer had changed the item first.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlmodel import col, select

from domain.errors import Conflict
from models.audit import AuditEntry, entries_for
from models.directive import ItemStatus, TrackedItem, find_item, item_facts
from models.marking import _WRITE_DONE, session_user_and_item, write_done
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue
from models.sessions import SessionKind
from models.user import get_by_username
from tests.conftest import NOW
from tidtam.app.accounts import Limits, live_user, live_user_and_item, start_session
from tidtam.app.events import EventName, item_event_of
from tidtam.app.tracking import complete, complete_facts, mark_done
from tidtam.infra.db import autocommitting
from tidtam.infra.settings import Settings


def _message(key: str, **about) -> OutboxMessage:
    return OutboxMessage(idempotency_key=key, channel=Channel.EMAIL, recipient="a@b", subject="s",
                         body="b", next_try_at=NOW, created_at=NOW, **about)


def _status(session, key: str) -> OutboxStatus:
    return session.exec(select(OutboxMessage.status)
                        .where(OutboxMessage.idempotency_key == key)).one()


def _events(session, item_id: int) -> list[OutboxMessage]:
    return list(session.exec(select(OutboxMessage).where(
        OutboxMessage.channel == Channel.PREFECT_EVENT,
        col(OutboxMessage.idempotency_key).startswith(f"event:tidtam.item.completed:{item_id}:"))))


def _close_all_but(session, step_id: int, item_id: int) -> None:
    session.execute(update(TrackedItem).where(col(TrackedItem.step_id) == step_id,
                                              col(TrackedItem.id) != item_id)
                    .values(status=ItemStatus.DONE))


def test_the_last_open_item_of_a_step_writes_item_audit_event_and_cancels(session, launched):
    staff = get_by_username(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G1")
    other = find_item(session, launched.id, "2701", "G1")
    _close_all_but(session, item.step_id, item.id)
    enqueue(session, _message("item-queued", item_id=item.id))
    enqueue(session, _message("item-sent", item_id=item.id, status=OutboxStatus.SENT))
    enqueue(session, _message("step-grouped", step_id=item.step_id))
    enqueue(session, _message("other-item", item_id=other.id))
    facts = item_facts(session, item.id)

    marked = complete(session, staff, item.id, now=NOW, note=" ศึกษาแล้ว ", expected_version=1)

    assert (marked.version, marked.note, marked.cancelled_messages) == (2, "ศึกษาแล้ว", 2)
    session.expire_all()
    row = session.get(TrackedItem, item.id)
    assert (row.status, row.version, row.completed_by_id, row.completed_at, row.note) == \
        (ItemStatus.DONE, 2, staff.id, NOW, "ศึกษาแล้ว")
    assert [_status(session, k) for k in ("item-queued", "item-sent", "step-grouped",
                                          "other-item")] == \
        [OutboxStatus.CANCELLED, OutboxStatus.SENT, OutboxStatus.CANCELLED, OutboxStatus.QUEUED]
    [entry] = entries_for(session, "tracked_item", item.id)
    assert (entry.action, entry.actor, entry.actor_id, entry.at, entry.entity_id) == \
        ("item.done", "staff-2703", staff.id, NOW, str(item.id))
    assert entry.before == {"status": "open", "note": None, "version": 1,
                            "completed_by_id": None, "completed_at": None}
    assert list(entry.after.items()) == [  # the keys in this order, as models.audit.insert writes
        ("status", "done"), ("note", "ศึกษาแล้ว"), ("version", 2), ("completed_by_id", staff.id),
        ("completed_at", NOW.isoformat()), ("cancelled_messages", 2)]
    [event] = _events(session, item.id)
    expected = item_event_of(EventName.ITEM_COMPLETED, facts, 2, actor="staff-2703", now=NOW,
                             note="ศึกษาแล้ว")
    assert (event.idempotency_key, event.recipient, event.status, event.subject,
            event.district_code, event.directive_id, event.item_id, event.step_id,
            event.next_try_at, event.created_at, event.attempts, event.claims) == \
        (expected.key, "prefect", OutboxStatus.QUEUED, "tidtam.item.completed", "2703",
         launched.id, None, None, NOW, NOW, 0, 0)
    assert json.loads(event.body) == expected.body()


def test_the_grouped_message_stays_while_another_district_has_the_step_open(session, launched):
    item = find_item(session, launched.id, "2703", "G1")
    enqueue(session, _message("step-grouped", step_id=item.step_id))
    enqueue(session, _message("item-queued", item_id=item.id))
    marked = complete(session, get_by_username(session, "staff-2703"), item.id, now=NOW)
    assert marked.cancelled_messages == 1
    assert _status(session, "step-grouped") == OutboxStatus.QUEUED
    assert _status(session, "item-queued") == OutboxStatus.CANCELLED
    [entry] = entries_for(session, "tracked_item", item.id)
    assert entry.after["cancelled_messages"] == 1


def test_a_lost_race_writes_nothing(session, launched):
    """Facts read, then another writer marks the item: the write of the stale facts is a 409
    and adds no audit row, no event and cancels nothing more."""
    staff = get_by_username(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G1")
    _close_all_but(session, item.step_id, item.id)
    stale = item_facts(session, item.id)
    mark_done(session, staff, item.id, now=NOW, expected_version=1)  # the other writer wins
    enqueue(session, _message("item-queued-later", item_id=item.id))
    enqueue(session, _message("step-grouped-later", step_id=item.step_id))

    with pytest.raises(Conflict, match="already done"):
        complete_facts(session, staff, stale, item.id, now=NOW, expected_version=1)

    assert len(entries_for(session, "tracked_item", item.id)) == 1
    assert len(_events(session, item.id)) == 1
    assert _status(session, "item-queued-later") == OutboxStatus.QUEUED
    assert _status(session, "step-grouped-later") == OutboxStatus.QUEUED
    session.expire_all()
    assert session.get(TrackedItem, item.id).version == 2


# The one-statement write is PostgreSQL's (SQLite writes one statement each): this test runs on
# PostgreSQL only, not skipped on SQLite.
@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_write_done_on_a_changed_version_writes_nothing(session, launched):
    """PostgreSQL's one statement, called directly with a version the item no longer has."""
    assert session.get_bind().dialect.name == "postgresql"
    staff = get_by_username(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G1")
    _close_all_but(session, item.step_id, item.id)
    enqueue(session, _message("item-queued", item_id=item.id))
    enqueue(session, _message("step-grouped", step_id=item.step_id))
    audits = session.exec(select(AuditEntry)).all()
    outbox = session.exec(select(OutboxMessage)).all()

    assert write_done(session, item_id=item.id, version=7, step_id=item.step_id,
                      actor_id=staff.id, actor=staff.username, now=NOW, note=None, before={},
                      after={}, event_key="event:x", event_subject="s", event_body="{}",
                      district_code="2703", directive_id=launched.id) is None

    assert session.exec(select(AuditEntry)).all() == audits
    assert len(session.exec(select(OutboxMessage)).all()) == len(outbox)
    assert _status(session, "item-queued") == OutboxStatus.QUEUED
    assert _status(session, "step-grouped") == OutboxStatus.QUEUED
    session.expire_all()
    assert session.get(TrackedItem, item.id).status == ItemStatus.OPEN


def test_the_write_has_few_bound_parameters():
    compiled = _WRITE_DONE.compile(dialect=postgresql.dialect())
    assert len(compiled.params) < 50


def test_sign_in_and_item_in_one_query_follow_live_user(session, launched):
    staff = get_by_username(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G1")
    secret = start_session(session, staff, SessionKind.WEB, NOW, "test")
    limits = Limits.of(Settings(_env_file=None))
    found, facts = live_user_and_item(session, secret, SessionKind.WEB, NOW, limits, item.id)
    assert found == live_user(session, secret, SessionKind.WEB, NOW, limits)
    assert facts == item_facts(session, item.id)
    # No such item: still signed in, no facts; wrong kind, unknown or expired: no one.
    assert live_user_and_item(session, secret, SessionKind.WEB, NOW, limits, 10**9) == \
        (found, None)
    assert live_user_and_item(session, secret, SessionKind.API, NOW, limits, item.id) == \
        (None, None)
    assert live_user_and_item(session, "nope", SessionKind.WEB, NOW, limits, item.id) == \
        (None, None)
    later = NOW + limits.max_age
    assert live_user_and_item(session, secret, SessionKind.WEB, later, limits, item.id) == \
        (None, None) == (live_user(session, secret, SessionKind.WEB, later, limits), None)
    assert session_user_and_item(session, "0" * 64, SessionKind.WEB, item.id) is None


def test_autocommitting_is_postgresql_only(migrated_engine):
    engine = autocommitting(migrated_engine)
    if migrated_engine.dialect.name == "postgresql":
        assert engine.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
        assert autocommitting(migrated_engine) is engine and engine.pool is migrated_engine.pool
    else:
        assert engine is migrated_engine
