"""A report proves steps (issue 15, item 2): submitting completes A3 from the report, on SQLite
and PostgreSQL; a step done by hand is left alone; a return keeps it; the next submit that no
longer proves it opens it again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm.attributes import flag_modified

from models.audit import entries_for
from models.directive import ItemStatus, find_item
from models.report import get_report
from tests.db.test_reporting import entry, form, jpeg, sakaeo, user
from tidtam.app import reporting
from tidtam.app.boards import board, is_overdue
from tidtam.app.tracking import mark_done, waive
from tidtam.infra.photos import PhotoStore

DISTRICT = "2701"
AUGUST = datetime(2024, 8, 5, 3, 0, tzinfo=UTC)   # A3 (due 31 July) is overdue by then
LATER = datetime(2024, 8, 6, 3, 0, tzinfo=UTC)
LATEST = datetime(2024, 8, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


def a3(session, directive):
    return find_item(session, directive.id, DISTRICT, "A3")


def file_and_submit(session, store, raw, *, now=AUGUST, version=0):
    """Save ``raw`` (a photo on its first session), submit it; the submitted report's version."""
    directive, staff = sakaeo(session), user(session, f"staff-{DISTRICT}")
    view = reporting.save_draft(session, staff, DISTRICT, raw, directive=directive,
                                expected_version=version, now=now)
    if not view.photos:
        reporting.add_photo(session, staff, DISTRICT, raw["sessions"][0]["key"], jpeg(), "a.jpg",
                            directive=directive, store=store, now=now)
        view = reporting.report_view(session, staff, DISTRICT, directive=directive)
    return reporting.submit_report(session, staff, DISTRICT, directive=directive,
                                   expected_version=view.version, now=now).version


def one_session_of_26() -> dict:
    """The issue's case: one session, 26 participants, on 20 July 2567."""
    return form(entry("s1", held_on="2024-07-20", community=11))


def test_a_report_with_26_people_on_20_july_leaves_a3_done_from_the_report(session, launched, store):
    staff = user(session, f"staff-{DISTRICT}")
    assert is_overdue(a3(session, launched), AUGUST.date())  # today: it stays overdue

    file_and_submit(session, store, one_session_of_26())

    item = a3(session, launched)
    report = get_report(session, launched.id, DISTRICT)
    assert (item.status, item.completed_by_id, item.completed_at) == (ItemStatus.DONE, staff.id,
                                                                      AUGUST)
    assert item.evidence == {"report_id": report.id, "step": "A3", "session_key": "s1",
                             "session_number": 1, "held_on": "2024-07-20", "participants": 26,
                             "qualifying_sessions": 1}
    (done,) = [e for e in entries_for(session, "tracked_item", item.id)]
    assert (done.action, done.actor, done.after["via"], done.after["evidence"]["session_key"]) == \
        ("item.done", staff.username, "report.proves", "s1")
    row = board(session, launched, AUGUST.date(), DISTRICT).rows[0]
    assert (row.report_state, row.proven_steps) == ("submitted", ["A3"])
    assert not is_overdue(item, AUGUST.date())


def test_a_step_done_by_hand_or_waived_is_left_as_it_was(session, launched, store):
    staff, coordinator = user(session, f"staff-{DISTRICT}"), user(session, "coordinator")
    item = a3(session, launched)
    mark_done(session, staff, item.id, now=LATER.replace(month=7, day=25), note="ทำแล้ว",
              expected_version=item.version)
    before = (item.version, item.completed_at, item.note)
    g3 = find_item(session, launched.id, DISTRICT, "G3")
    waive(session, coordinator, g3.id, reason="ไม่มีศูนย์", now=AUGUST)
    directive = sakaeo(session)
    directive.definition["form"]["proves"] = [{"step": "A3"}, {"step": "G3"}]
    flag_modified(directive, "definition")

    file_and_submit(session, store, one_session_of_26())

    item = a3(session, launched)
    assert (item.version, item.completed_at, item.note, item.evidence) == (*before, None)
    assert [e.action for e in entries_for(session, "tracked_item", item.id)] == ["item.done"]
    assert find_item(session, launched.id, DISTRICT, "G3").status == ItemStatus.WAIVED


def test_a_returned_report_keeps_the_step_and_the_next_submit_decides(session, launched, store):
    """Returned or reopened, the report still says what it said: A3 stays done from it. The
    next submit opens A3 again only if its report no longer proves it (here the letter asks
    for two sessions of 20 and the corrected report has one)."""
    directive, coordinator = sakaeo(session), user(session, "coordinator")
    directive.definition["form"]["proves"] = [{"step": "A3", "min_sessions": 2}]
    flag_modified(directive, "definition")
    two = form(entry("s1"), entry("s2", held_on="2024-07-22"))
    version = file_and_submit(session, store, two)
    assert a3(session, launched).evidence["qualifying_sessions"] == 2

    view = reporting.return_report(session, coordinator, DISTRICT, directive=directive,
                                   comment="ครั้งที่ 2 ซ้ำ", expected_version=version, now=LATER)
    assert (find_item(session, launched.id, DISTRICT, "R1").status, a3(session, launched).status) \
        == (ItemStatus.OPEN, ItemStatus.DONE)
    assert board(session, launched, LATER.date(), DISTRICT).rows[0].report_state == "returned"

    file_and_submit(session, store, form(entry("s1")), now=LATEST, version=view.version)

    item = a3(session, launched)
    assert (item.status, item.evidence, item.completed_at) == (ItemStatus.OPEN, None, None)
    reopened = entries_for(session, "tracked_item", item.id)[-1]
    assert (reopened.action, reopened.after["via"], reopened.before["evidence"]["session_key"]) \
        == ("item.reopen", "report.proves", "s1")
    assert is_overdue(item, LATEST.date())


def test_a_resubmitted_report_that_still_proves_the_step_moves_its_evidence(session, launched,
                                                                            store):
    directive, coordinator = sakaeo(session), user(session, "coordinator")
    version = file_and_submit(session, store, one_session_of_26())
    view = reporting.accept_report(session, coordinator, DISTRICT, directive=directive,
                                   expected_version=version, now=LATER)
    view = reporting.reopen_report(session, coordinator, DISTRICT, directive=directive,
                                   reason="วันที่ผิด", expected_version=view.version, now=LATER)
    assert a3(session, launched).evidence["session_key"] == "s1"  # reopening keeps it

    fixed = form(entry("s0", held_on="2024-07-12"), entry("s1", held_on="2024-07-21"))
    file_and_submit(session, store, fixed, now=LATEST, version=view.version)

    item = a3(session, launched)
    assert (item.status, item.completed_at) == (ItemStatus.DONE, AUGUST)  # done when first proved
    assert (item.evidence["session_key"], item.evidence["held_on"]) == ("s0", "2024-07-12")
    assert [e.action for e in entries_for(session, "tracked_item", item.id)] == [
        "item.done", "item.evidence"]
