"""Launching, marking done and the board, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from domain.directive import load_directive
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from models.audit import AuditEntry, entries_for
from models.directive import ItemStatus, TrackedItem, find_item, items_of
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue, to_people
from tests.conftest import NOW
from tidtam.app.boards import board
from tidtam.app.tracking import launch_directive, mark_done, mark_done_by_codes
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE


def user(session, username):
    from models.user import get_by_username

    return get_by_username(session, username)


def test_launch_creates_one_item_per_district_and_step(session, launched):
    items = items_of(session, launched.id)
    steps = {i.step_id for i in items}
    assert len({i.district_code for i in items}) == 9
    assert len(items) == 9 * len(steps) == 9 * 12


def test_relaunch_creates_nothing_new(session, launched):
    again = launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=NOW)
    assert (again.created_directive, again.created_items) == (False, 0)
    assert len(items_of(session, launched.id)) == 108


def test_launch_without_districts_is_refused(session):
    with pytest.raises(InvalidInput, match="no districts"):
        launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=NOW)


def test_mark_done_records_who_when_and_audits(session, launched):
    staff = user(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G1")
    done = mark_done(session, staff, item.id, now=NOW, note="ศึกษาแล้ว")
    assert (done.status, done.completed_by_id, done.completed_at, done.note, done.version) == \
        (ItemStatus.DONE, staff.id, NOW, "ศึกษาแล้ว", 2)
    [entry] = entries_for(session, "tracked_item", item.id)
    assert (entry.action, entry.actor, entry.before["status"], entry.after["status"]) == \
        ("item.done", "staff-2703", "open", "done")


def test_mark_done_by_wrong_district_is_forbidden_and_changes_nothing(session, launched):
    item = find_item(session, launched.id, "2701", "G1")
    with pytest.raises(Forbidden):
        mark_done(session, user(session, "staff-2703"), item.id, now=NOW)
    session.refresh(item)
    assert item.status == ItemStatus.OPEN
    assert entries_for(session, "tracked_item", item.id) == []


def test_stale_version_and_second_mark_are_conflicts(session, launched):
    staff = user(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G2")
    with pytest.raises(Conflict):
        mark_done(session, staff, item.id, now=NOW, expected_version=99)
    mark_done(session, staff, item.id, now=NOW, expected_version=1)
    with pytest.raises(Conflict):
        mark_done(session, staff, item.id, now=NOW)


def test_coordinator_may_mark_any_district_of_the_province(session, launched):
    item = find_item(session, launched.id, "2709", "G1")
    assert mark_done(session, user(session, "coordinator"), item.id, now=NOW).status == "done"


@pytest.mark.parametrize(("username", "district", "step", "error"), [
    ("staff-2703", "9999", "G1", NotFound),
    ("staff-2703", "2703", "Z9", NotFound),
    ("nobody", "2703", "G1", NotFound),
    ("staff-2703", "2701", "G1", Forbidden),
])
def test_mark_done_by_codes_bad_input(session, launched, username, district, step, error):
    with pytest.raises(error):
        mark_done_by_codes(session, username, district, step, now=NOW)
    assert session.exec(select(AuditEntry).where(AuditEntry.action == "item.done")).all() == []


def test_marking_done_cancels_queued_messages_for_the_item(session, launched):
    item = find_item(session, launched.id, "2703", "G1")
    enqueue(session, OutboxMessage(idempotency_key="k1", channel=Channel.EMAIL, recipient="a@b",
                                   item_id=item.id, subject="s", body="b", next_try_at=NOW,
                                   created_at=NOW))
    mark_done(session, user(session, "staff-2703"), item.id, now=NOW)
    message = session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == "k1")).one()
    assert message.status == OutboxStatus.CANCELLED


def test_enqueue_is_idempotent_by_key(session, launched):
    def message():
        return OutboxMessage(idempotency_key="same", channel=Channel.EMAIL, recipient="a@b",
                             subject="s", body="b", next_try_at=NOW, created_at=NOW)
    assert enqueue(session, message()) is True
    assert enqueue(session, message()) is False
    assert len(session.exec(select(OutboxMessage).where(to_people())).all()) == 1


def test_board_counts_overdue_open_items(session, launched):
    data = board(session, launched, date(2024, 8, 12))
    assert len(data.rows) == 9 and len(data.steps) == 12
    assert data.overdue_count == 9 * 12  # everything was due by 9 Aug and nothing is done
    mark_done(session, user(session, "staff-2701"), find_item(session, launched.id, "2701",
                                                              "G8").id, now=NOW)
    data = board(session, launched, date(2024, 8, 12))
    assert data.overdue_count == 9 * 12 - 1
    assert data.rows[0].done_count == 1


def test_timestamps_come_back_timezone_aware(session, launched):
    item = find_item(session, launched.id, "2703", "G1")
    mark_done(session, user(session, "staff-2703"), item.id, now=NOW)
    session.expire_all()
    again = session.get(TrackedItem, item.id)
    assert again.completed_at == NOW and again.completed_at.tzinfo is not None
