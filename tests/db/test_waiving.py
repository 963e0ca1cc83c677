"""Waiving a district's step (ยกเว้น: not applicable) and undoing it, on SQLite and PostgreSQL:
who may, which items, the audit entry, the outbox, and that the sweep and the digest leave a
waived item alone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.access import Role
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from models.audit import AuditEntry, entries_for
from models.directive import ItemStatus, TrackedItem, find_item
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue
from models.user import get_by_username
from tests.conftest import NOW
from tests.flows.test_escalation_sweep import messages
from tidtam.app.accounts import ensure_user
from tidtam.app.boards import board
from tidtam.app.digest import send_digests
from tidtam.app.escalation import sweep
from tidtam.app.orgtree import load_provinces
from tidtam.app.tracking import mark_done, reopen_waived, waive
from tidtam.cli.views import board_json, print_board

BKK = ZoneInfo("Asia/Bangkok")
DISTRICTS = [f"270{n}" for n in range(1, 10)]
REASON = "อำเภอนี้ไม่มีศูนย์ผู้นำจิตอาสาที่ต้องปรับปรุง"


def user(session, username):
    return get_by_username(session, username)


def item(session, directive, district, step):
    return find_item(session, directive.id, district, step)


def coordinator(session):
    return user(session, "coordinator")


def waive_it(session, directive, district="2703", step="G3", **kw):
    target = item(session, directive, district, step)
    return waive(session, coordinator(session), target.id, reason=kw.pop("reason", REASON),
                 now=kw.pop("now", NOW), **kw)


def audit_actions(session, item_id) -> list[str]:
    return [e.action for e in entries_for(session, "tracked_item", item_id)]


def queue(session, key, **about) -> OutboxMessage:
    message = OutboxMessage(idempotency_key=key, channel=Channel.EMAIL, recipient="a@b",
                            subject="s", body="b", next_try_at=NOW, created_at=NOW, **about)
    assert enqueue(session, message)
    return session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()


# --- the waiver -----------------------------------------------------------------------------------

def test_the_coordinator_waives_an_open_step_with_a_reason_and_it_is_audited(session, launched):
    target = item(session, launched, "2703", "G3")
    waived = waive(session, coordinator(session), target.id, reason=f"  {REASON}\n", now=NOW,
                   expected_version=1)
    session.expire_all()
    stored = session.get(TrackedItem, target.id)
    assert (stored.status, stored.waived_by_id, stored.waived_at, stored.waiver_reason,
            stored.version) == (ItemStatus.WAIVED, coordinator(session).id, NOW, REASON, 2)
    assert waived.status == ItemStatus.WAIVED and stored.waived_at.tzinfo is not None
    # nothing was completed: the done columns stay empty (a waiver is never "late")
    assert (stored.completed_by_id, stored.completed_at, stored.note) == (None, None, None)
    [entry] = entries_for(session, "tracked_item", target.id)
    assert (entry.action, entry.actor, entry.actor_id, entry.at) == \
        ("item.waive", "coordinator", coordinator(session).id, NOW)
    assert (entry.before["status"], entry.before["version"]) == ("open", 1)
    assert (entry.after["status"], entry.after["version"], entry.after["reason"]) == \
        ("waived", 2, REASON)
    assert entry.after["waived_by_id"] == coordinator(session).id


@pytest.mark.parametrize("username", ["staff-2703", "head-2703", "staff-2701", "province-head"])
def test_nobody_but_the_coordinator_waives(session, launched, username):
    target = item(session, launched, "2703", "G3")
    with pytest.raises(Forbidden) as refused:
        waive(session, user(session, username), target.id, reason=REASON, now=NOW)
    assert refused.value.message_th and refused.value.message_en
    session.expire_all()
    assert session.get(TrackedItem, target.id).status == ItemStatus.OPEN
    assert audit_actions(session, target.id) == []


def test_another_provinces_coordinator_and_the_department_may_not_waive(session, launched):
    load_provinces(session, ["50"])
    for username, role, province in (("coordinator-50", Role.COORDINATOR, "50"),
                                     ("department", Role.DEPARTMENT_VIEWER, None)):
        ensure_user(session, username=username, full_name=username, role=role,
                    province_code=province, district_code=None, password_hash="x", now=NOW)
    target = item(session, launched, "2703", "G3")
    for username in ("coordinator-50", "department"):
        with pytest.raises(Forbidden):
            waive(session, user(session, username), target.id, reason=REASON, now=NOW)
    waive(session, coordinator(session), target.id, reason=REASON, now=NOW)
    for username in ("coordinator-50", "department"):
        with pytest.raises(Forbidden):
            reopen_waived(session, user(session, username), target.id, now=NOW)
    assert audit_actions(session, target.id) == ["item.waive"]


def test_an_unknown_item_is_not_found(session, launched):
    with pytest.raises(NotFound):
        waive(session, coordinator(session), 999_999, reason=REASON, now=NOW)
    with pytest.raises(NotFound):
        reopen_waived(session, coordinator(session), 999_999, now=NOW)


def test_only_an_open_item_is_waived(session, launched):
    done = item(session, launched, "2701", "G1")
    mark_done(session, user(session, "staff-2701"), done.id, now=NOW)
    with pytest.raises(Conflict, match="already done"):
        waive(session, coordinator(session), done.id, reason=REASON, now=NOW)
    waived = waive_it(session, launched)
    with pytest.raises(Conflict) as again:
        waive(session, coordinator(session), waived.id, reason=REASON, now=NOW)
    assert "ยกเว้นแล้ว" in again.value.message_th
    # and a waived step cannot then be marked done by the district
    with pytest.raises(Conflict) as marked:
        mark_done(session, user(session, "staff-2703"), waived.id, now=NOW)
    assert "ยกเว้นแล้ว" in marked.value.message_th
    assert audit_actions(session, waived.id) == ["item.waive"]


def test_the_report_step_is_refused_in_thai_and_english(session, launched):
    r1 = item(session, launched, "2703", "R1")
    with pytest.raises(Conflict) as refused:
        waive(session, coordinator(session), r1.id, reason=REASON, now=NOW)
    assert "report form" in refused.value.message_en and "แบบรายงาน" in refused.value.message_th
    with pytest.raises(Conflict):
        reopen_waived(session, coordinator(session), r1.id, now=NOW)
    assert item(session, launched, "2703", "R1").status == ItemStatus.OPEN
    assert audit_actions(session, r1.id) == []


def test_a_stale_version_is_a_conflict_and_changes_nothing(session, launched):
    target = item(session, launched, "2703", "G3")
    with pytest.raises(Conflict, match="someone else changed this item"):
        waive(session, coordinator(session), target.id, reason=REASON, now=NOW,
              expected_version=target.version + 1)
    waived = waive(session, coordinator(session), target.id, reason=REASON, now=NOW,
                   expected_version=target.version)
    with pytest.raises(Conflict, match="someone else changed this item"):
        reopen_waived(session, coordinator(session), target.id, now=NOW,
                      expected_version=waived.version - 1)
    assert item(session, launched, "2703", "G3").status == ItemStatus.WAIVED
    assert audit_actions(session, target.id) == ["item.waive"]


def test_the_database_refuses_a_write_on_a_version_changed_since_it_was_read(session, launched):
    """Two people waiving at once: the second, holding the same version, gets a conflict."""
    from models.directive import update_item

    target = item(session, launched, "2703", "G3")
    assert update_item(session, target.id, expected_version=1, expected_status=ItemStatus.OPEN,
                       status=ItemStatus.WAIVED)
    assert not update_item(session, target.id, expected_version=1,
                           expected_status=ItemStatus.OPEN, status=ItemStatus.WAIVED)
    assert not update_item(session, target.id, expected_version=2,
                           expected_status=ItemStatus.OPEN, status=ItemStatus.WAIVED)


@pytest.mark.parametrize(("reason", "message_en", "message_th"), [
    ("", "say why", "ต้องระบุเหตุผล"),
    ("   \n\t ", "say why", "ต้องระบุเหตุผล"),
    (None, "say why", "ต้องระบุเหตุผล"),
    ("ก" * 2001, "at most 2000 characters", "ไม่เกิน 2000 ตัวอักษร"),
])
def test_a_reason_is_required_and_at_most_2000_characters(session, launched, reason, message_en,
                                                          message_th):
    target = item(session, launched, "2703", "G3")
    with pytest.raises(InvalidInput) as refused:
        waive(session, coordinator(session), target.id, reason=reason, now=NOW)
    assert message_en in refused.value.message_en and message_th in refused.value.message_th
    assert item(session, launched, "2703", "G3").status == ItemStatus.OPEN
    assert audit_actions(session, target.id) == []


def test_a_reason_of_exactly_2000_characters_is_kept(session, launched):
    waived = waive_it(session, launched, reason="ก" * 2000)
    assert waived.waiver_reason == "ก" * 2000


def test_waiving_cancels_what_is_queued_about_the_item_as_marking_done_does(session, launched):
    target = item(session, launched, "2703", "G8")
    queued = queue(session, "item-queued", item_id=target.id, step_id=target.step_id)
    sent = queue(session, "item-sent", item_id=target.id, step_id=target.step_id)
    sent.status = OutboxStatus.SENT
    session.add(sent)
    grouped = queue(session, "step-grouped", step_id=target.step_id)  # lists every late district
    other = queue(session, "other-item", item_id=item(session, launched, "2704", "G8").id)
    for code in DISTRICTS:
        if code != "2703":
            mark_done(session, user(session, f"staff-{code}"), item(session, launched, code, "G8").id,
                      now=NOW)
    session.expire_all()
    assert session.get(OutboxMessage, grouped.id).status == OutboxStatus.QUEUED  # 2703 still open
    waived = waive(session, coordinator(session), target.id, reason=REASON, now=NOW)
    session.expire_all()
    assert session.get(OutboxMessage, queued.id).status == OutboxStatus.CANCELLED
    assert session.get(OutboxMessage, grouped.id).status == OutboxStatus.CANCELLED  # step settled
    assert session.get(OutboxMessage, sent.id).status == OutboxStatus.SENT
    assert session.get(OutboxMessage, other.id).status == OutboxStatus.CANCELLED  # 2704 was done
    [entry] = [e for e in entries_for(session, "tracked_item", waived.id)]
    assert entry.after["cancelled_messages"] == 2


# --- undoing a waiver -----------------------------------------------------------------------------

def test_the_coordinator_undoes_a_waiver_and_the_item_is_open_again(session, launched):
    waived = waive_it(session, launched)
    later = datetime(2024, 7, 17, 4, 0, tzinfo=BKK)
    opened = reopen_waived(session, coordinator(session), waived.id, now=later,
                           reason="  ยกเว้นผิดอำเภอ ", expected_version=waived.version)
    session.expire_all()
    stored = session.get(TrackedItem, waived.id)
    assert opened.status == stored.status == ItemStatus.OPEN and stored.version == 3
    assert (stored.waived_by_id, stored.waived_at, stored.waiver_reason) == (None, None, None)
    entries = entries_for(session, "tracked_item", waived.id)
    assert [e.action for e in entries] == ["item.waive", "item.unwaive"]
    unwaive = entries[1]
    assert (unwaive.actor, unwaive.before["status"], unwaive.after["status"],
            unwaive.after["reason"]) == ("coordinator", "waived", "open", "ยกเว้นผิดอำเภอ")
    assert entries[0].after["reason"] == REASON  # who waived it and why: still in the log
    # the district can now mark it done like any open step
    done = mark_done(session, user(session, "staff-2703"), waived.id, now=later)
    assert done.status == ItemStatus.DONE


def test_undoing_needs_no_reason_but_a_waived_item(session, launched):
    target = item(session, launched, "2703", "G3")
    with pytest.raises(Conflict, match="not waived"):
        reopen_waived(session, coordinator(session), target.id, now=NOW)
    waive_it(session, launched)
    with pytest.raises(Forbidden):
        reopen_waived(session, user(session, "staff-2703"), target.id, now=NOW)
    with pytest.raises(InvalidInput):
        reopen_waived(session, coordinator(session), target.id, now=NOW, reason="x" * 2001)
    opened = reopen_waived(session, coordinator(session), target.id, now=NOW, reason="   ")
    assert opened.status == ItemStatus.OPEN
    assert entries_for(session, "tracked_item", target.id)[-1].after["reason"] is None


# --- never chased: the sweep and the digest read open items only -----------------------------------

def run_sweep(session, when):
    return sweep(session, when, tz=BKK, base_url="http://tidtam.test")


def test_the_sweep_never_enqueues_for_a_waived_item(session, launched):
    waived = waive_it(session, launched, step="G8")  # due 9 Aug, like the report
    for day in (6, 8, 9, 12, 14, 19, 21):  # reminders, the due day, the head's rung and repeats
        run_sweep(session, datetime(2024, 8, day, 9, 0, tzinfo=BKK))
    assert messages(session, item_id=waived.id) == []
    assert messages(session, item_id=item(session, launched, "2704", "G8").id) != []
    # the provincial head's list of late districts on G8 leaves the waived one out
    head = user(session, "province-head")
    listings = [m for m in messages(session, user_id=head.id, rung="provincial-head")
                if m.step_id == waived.step_id]
    assert listings
    assert all("วังน้ำเย็น" in m.body and "ตาพระยา" not in m.body for m in listings)


def test_the_sweep_cancels_what_was_queued_before_an_item_was_waived(session, launched):
    run_sweep(session, datetime(2024, 8, 9, 8, 30, tzinfo=BKK))
    target = item(session, launched, "2705", "G8")
    assert messages(session, item_id=target.id, status=OutboxStatus.QUEUED)
    waive(session, coordinator(session), target.id, reason=REASON,
          now=datetime(2024, 8, 9, 8, 0, tzinfo=BKK))
    assert messages(session, item_id=target.id, status=OutboxStatus.QUEUED) == []
    for day in (12, 13, 14, 15, 16, 19, 20):
        run_sweep(session, datetime(2024, 8, day, 8, 30, tzinfo=BKK))
    assert messages(session, item_id=target.id, status=OutboxStatus.QUEUED) == []


def test_an_undone_waiver_is_chased_again(session, launched):
    waived = waive_it(session, launched, step="G8")
    run_sweep(session, datetime(2024, 8, 9, 9, 0, tzinfo=BKK))
    assert messages(session, item_id=waived.id) == []
    reopen_waived(session, coordinator(session), waived.id, now=datetime(2024, 8, 9, 10, 0, tzinfo=BKK))
    run_sweep(session, datetime(2024, 8, 9, 11, 0, tzinfo=BKK))
    assert {m.rung for m in messages(session, item_id=waived.id)} == {"due-today"}


def test_the_digest_never_lists_a_waived_item(session, launched):
    coordinator_user = coordinator(session)
    waive(session, coordinator_user, item(session, launched, "2703", "G1").id, reason=REASON,
          now=NOW)
    send_digests(session, datetime(2024, 7, 18, 8, 0, tzinfo=BKK), tz=BKK,
                 base_url="http://tidtam.test")
    [email] = messages(session, rung="digest", channel="email")
    g1 = email.body.split("- G1 ")[1].split("\n")[1]
    a1 = email.body.split("- A1 ")[1].split("\n")[1]
    assert "ตาพระยา" not in g1 and "เมืองสระแก้ว" in g1 and "ทุกอำเภอ" not in g1
    assert a1.startswith("ทุกอำเภอ")  # A1 was not waived: everyone is still late on it
    assert "เลยกำหนด 17 รายการ" in email.subject  # 9 × 2 late, less the waived one


# --- counted as settled: the board, the CLI and the national rates --------------------------------

def test_the_board_shows_a_waived_cell_settled_and_never_overdue(session, launched):
    today = date(2024, 7, 18)  # G1 and A1, due 17 Jul, are overdue
    before = board(session, launched, today)
    waive_it(session, launched, step="G1")
    waive_it(session, launched, step="G3")
    mark_done(session, user(session, "staff-2703"), item(session, launched, "2703", "G2").id, now=NOW)
    after = board(session, launched, today)
    row = next(r for r in after.rows if r.district.code == "2703")
    states = {c.step.code: c.state for c in row.cells}
    assert (states["G1"], states["G2"], states["G3"], states["A1"], states["G4"]) == \
        ("waived", "done", "waived", "overdue", "open")
    assert (row.done_count, row.waived_count, row.overdue_count) == (3, 2, 1)
    assert after.overdue_count == before.overdue_count - 1 and after.waived_count == 2


def test_the_cli_status_shows_a_waived_item(session, launched, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich fits the table to the terminal: one line a row
    waived = waive_it(session, launched, step="G1")
    data = board_json(session, launched, date(2024, 7, 18))
    row = next(d for d in data["districts"] if d["code"] == "2703")
    assert row["items"]["G1"] == "waived" and row["items"]["A1"] == "overdue"
    assert row["done"] == 1 and row["item_ids"]["G1"] == waived.id
    print_board(data)
    out = capsys.readouterr().out
    line = next(text for text in out.splitlines() if "ตาพระยา" in text)
    assert "–" in line and "1/12" in line


def test_no_audit_entry_for_any_refused_waiver(session, launched):
    before = len(session.exec(select(AuditEntry)).all())
    target = item(session, launched, "2703", "G3")
    for attempt in (lambda: waive(session, user(session, "staff-2703"), target.id, reason=REASON, now=NOW),
                    lambda: waive(session, coordinator(session), target.id, reason="", now=NOW),
                    lambda: waive(session, coordinator(session), target.id, reason=REASON, now=NOW,
                                  expected_version=7),
                    lambda: reopen_waived(session, coordinator(session), target.id, now=NOW)):
        with pytest.raises((Forbidden, InvalidInput, Conflict)):
            attempt()
    assert len(session.exec(select(AuditEntry)).all()) == before
