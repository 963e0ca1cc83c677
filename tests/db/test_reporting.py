"""The report's lifecycle, rights, version check, lock, photos and compilation, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import event, text, update
from sqlmodel import Session, select

from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.report import ReportInvalid
from models.audit import entries_for
from models.directive import Directive, ItemStatus, active_directives, find_item
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue
from models.report import Report, ReportPhoto, ReportStatus, get_report
from models.user import get_by_username
from tests.conftest import NOW
from tests.helpers.poll import wait_until
from tidtam.app import reporting
from tidtam.app.reporting import get_photo_for, remove_photo
from tidtam.app.tracking import mark_done
from tidtam.infra import db
from tidtam.infra.photos import PhotoStore

LATER = NOW + timedelta(hours=1)
DISTRICT = "2706"


# --- the use cases, on Sa Kaeo's one active directive (``launched``, or its national copy) -------

def sakaeo(session) -> Directive:
    (directive,) = active_directives(session, "27")
    return directive


def _on_sakaeo(use_case):
    """``use_case`` with ``directive=`` Sa Kaeo's one active directive unless a test names one."""
    def call(session, *args, directive=None, **kwargs):
        return use_case(session, *args, directive=directive or sakaeo(session), **kwargs)
    return call


report_view = _on_sakaeo(reporting.report_view)
save_draft = _on_sakaeo(reporting.save_draft)
add_photo = _on_sakaeo(reporting.add_photo)
submit_report = _on_sakaeo(reporting.submit_report)
return_report = _on_sakaeo(reporting.return_report)
accept_report = _on_sakaeo(reporting.accept_report)
reopen_report = _on_sakaeo(reporting.reopen_report)
compile_for = _on_sakaeo(reporting.compile_for)


# --- factories ----------------------------------------------------------------------------

def user(session, username):
    return get_by_username(session, username)


def entry(key, *, kind="tree-planting", held_on="2024-07-20", center="ศูนย์ฯ บ้านหนองบอน",
          place="บ้านหนองบอน ต.ทัพราช", **counts):
    """One valid activity session: 23 participants, in July 2567."""
    participants = {"center-committee": 5, "volunteer-leaders": 5, "community": 8,
                    "partners": 3, "cd-officials": 2}
    participants.update({code.replace("_", "-"): n for code, n in counts.items()})
    return {"key": key, "held_on": held_on, "center": center, "place": place, "kind": kind,
            "participants": participants}


def form(*sessions, outcomes=("ปลูกต้นไม้ 300 ต้น ริมถนนเข้าหมู่บ้าน",)):
    sessions = sessions or (
        entry("s1"),
        entry("s2", kind="landscape", held_on="2024-07-22"),
        entry("s3", center="ศูนย์ฯ บ้านคลองน้ำใส", place="บ้านคลองน้ำใส ต.คลองน้ำใส",
              held_on="2024-07-25"))
    return {"sessions": list(sessions), "outcomes": list(outcomes)}


def jpeg(color="green", size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


def files_in(store: PhotoStore) -> list[str]:
    return sorted(p.name for p in store.root.glob("*")) if store.root.exists() else []


def filed(session, store, district=DISTRICT, raw=None, directive=None) -> int:
    """A valid draft with a photo for each kind; returns the report's version."""
    staff = user(session, f"staff-{district}")
    on = {"directive": directive}
    save_draft(session, staff, district, raw or form(), expected_version=0, now=NOW, **on)
    add_photo(session, staff, district, "s1", jpeg(), "IMG_0001.jpg", store=store, now=NOW, **on)
    add_photo(session, staff, district, "s2", jpeg("blue"), "IMG_0002.jpg", store=store, now=NOW,
              **on)
    return report_view(session, staff, district, **on).version


def submitted(session, store, district=DISTRICT, directive=None) -> int:
    version = filed(session, store, district, directive=directive)
    return submit_report(session, user(session, f"staff-{district}"), district,
                         expected_version=version, now=NOW, directive=directive).version


def accepted(session, store, district=DISTRICT, directive=None) -> int:
    """``directive``: Sa Kaeo's one active directive unless named."""
    version = submitted(session, store, district, directive)
    return accept_report(session, user(session, "coordinator"), district,
                         expected_version=version, now=LATER, directive=directive).version


def r1(session, directive, district=DISTRICT):
    return find_item(session, directive.id, district, "R1")


def actions(session, report_id) -> list[str]:
    return [e.action for e in entries_for(session, "report", report_id)]


# --- the lifecycle --------------------------------------------------------------------------

def test_draft_submit_return_resubmit_accept(session, launched, store):
    staff, coordinator = user(session, "staff-2706"), user(session, "coordinator")
    empty = report_view(session, staff, DISTRICT)
    assert (empty.report, empty.version, empty.can_edit, empty.can_review) == (None, 0, True, False)
    assert not empty.checked.ok

    version = filed(session, store)
    report = get_report(session, launched.id, DISTRICT)
    assert (report.status, version) == (ReportStatus.DRAFT, 3)  # a save and two photos
    assert r1(session, launched).status == ItemStatus.OPEN

    view = submit_report(session, staff, DISTRICT, expected_version=version, now=NOW)
    assert (view.report.status, view.report.submitted_at, view.report.submitted_by_id) == \
        (ReportStatus.SUBMITTED, NOW, staff.id)
    assert (view.can_edit, report_view(session, coordinator, DISTRICT).can_review) == (False, True)
    item = r1(session, launched)
    assert (item.status, item.completed_by_id, item.completed_at, item.version) == \
        (ItemStatus.DONE, staff.id, NOW, 2)

    view = return_report(session, coordinator, DISTRICT, comment="  ครั้งที่ 2 ขาดภาพหน้างาน  ",
                         expected_version=view.version, now=LATER)
    assert (view.report.status, view.report.review_comment, view.report.reviewed_by_id) == \
        (ReportStatus.RETURNED, "ครั้งที่ 2 ขาดภาพหน้างาน", coordinator.id)
    assert (r1(session, launched).status, r1(session, launched).completed_at) == \
        (ItemStatus.OPEN, None)

    seen = report_view(session, staff, DISTRICT)
    assert seen.can_edit and seen.report.review_comment == "ครั้งที่ 2 ขาดภาพหน้างาน"
    fixed = form(entry("s1"), entry("s2", kind="landscape", held_on="2024-07-23"))
    view = save_draft(session, staff, DISTRICT, fixed, expected_version=seen.version, now=LATER)
    view = submit_report(session, staff, DISTRICT, expected_version=view.version, now=LATER)
    assert view.report.status == ReportStatus.SUBMITTED
    assert r1(session, launched).status == ItemStatus.DONE

    view = accept_report(session, coordinator, DISTRICT, expected_version=view.version, now=LATER)
    assert (view.report.status, view.report.accepted_at, view.can_edit) == \
        (ReportStatus.ACCEPTED, LATER, False)
    assert report_view(session, coordinator, DISTRICT).can_review  # to reopen
    assert (r1(session, launched).status, r1(session, launched).version) == (ItemStatus.DONE, 4)

    log = entries_for(session, "report", report.id)
    assert [e.action for e in log] == [
        "report.save", "report.photo.add", "report.photo.add", "report.submit", "report.return",
        "report.save", "report.submit", "report.accept"]
    assert [(e.after["status"], e.after["version"]) for e in log] == [
        ("draft", 1), ("draft", 2), ("draft", 3), ("submitted", 4), ("returned", 5),
        ("returned", 6), ("submitted", 7), ("accepted", 8)]
    assert log[4].after["comment"] == "ครั้งที่ 2 ขาดภาพหน้างาน" and log[4].actor == "coordinator"
    assert view.history == log
    item_log = entries_for(session, "tracked_item", r1(session, launched).id)
    assert [(e.action, e.after["via"]) for e in item_log] == [
        ("item.done", "report.submit"), ("item.reopen", "report.return"),
        ("item.done", "report.submit")]


def test_draft_with_errors_is_kept_as_typed_and_the_view_names_the_field(session, launched):
    staff = user(session, "staff-2706")
    raw = form(entry("s1", community=3, partners="สาม"), entry("s2", held_on="2024-08-02"))
    view = save_draft(session, staff, DISTRICT, raw, expected_version=0, now=NOW)
    stored = get_report(session, launched.id, DISTRICT).content
    assert stored["sessions"][0]["participants"]["partners"] == "สาม"
    assert stored["sessions"][1]["held_on"] == "2024-08-02"
    fields = {f.field for f in view.checked.errors}
    assert {"sessions[0].participants.partners", "sessions[1].held_on"} <= fields
    assert any("ครั้งที่ 2" in f.th() and "วันที่" in f.th() for f in view.checked.errors)


def test_a_session_with_15_participants_is_refused_at_submit_with_the_field_named(
        session, launched, store):
    staff = user(session, "staff-2706")
    version = filed(session, store, raw=form(entry("s1", community=0), entry("s2", kind="landscape")))
    with pytest.raises(ReportInvalid) as refused:
        submit_report(session, staff, DISTRICT, expected_version=version, now=NOW)
    [finding] = refused.value.findings
    assert finding.field == "sessions[0].participants" and "15" in finding.th()
    assert "ครั้งที่ 1" in refused.value.message_th


def test_submit_with_errors_raises_and_changes_nothing(session, launched):
    staff = user(session, "staff-2706")
    view = save_draft(session, staff, DISTRICT, form(), expected_version=0, now=NOW)  # no photos
    with pytest.raises(ReportInvalid) as refused:
        submit_report(session, staff, DISTRICT, expected_version=view.version, now=NOW)
    assert {f.field for f in refused.value.findings} == {"photos.tree-planting", "photos.landscape"}
    report = get_report(session, launched.id, DISTRICT)
    assert (report.status, report.version) == (ReportStatus.DRAFT, 1)
    assert r1(session, launched).status == ItemStatus.OPEN
    assert actions(session, report.id) == ["report.save"]
    assert entries_for(session, "tracked_item", r1(session, launched).id) == []


def test_submit_cancels_the_messages_queued_for_the_report_step(session, launched, store):
    item = r1(session, launched)
    enqueue(session, OutboxMessage(idempotency_key="r1-overdue", channel=Channel.EMAIL,
                                   recipient="staff-2706@demo.tidtam.local", item_id=item.id,
                                   district_code=DISTRICT, subject="s", body="b",
                                   next_try_at=NOW, created_at=NOW))
    submitted(session, store)
    message = session.exec(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == "r1-overdue")).one()
    assert message.status == OutboxStatus.CANCELLED
    [done] = entries_for(session, "tracked_item", item.id)
    assert (done.action, done.after["via"], done.after["cancelled_messages"]) == \
        ("item.done", "report.submit", 1)


def test_the_report_step_cannot_be_marked_done_by_hand(session, launched):
    for username in ("staff-2706", "coordinator"):
        with pytest.raises(Conflict, match="submit the report form") as refused:
            mark_done(session, user(session, username), r1(session, launched).id, now=NOW)
        assert refused.value.message_th == "ส่งแบบรายงานเพื่อทำขั้นตอนนี้ให้เสร็จ"
    assert r1(session, launched).status == ItemStatus.OPEN


# --- the version check ----------------------------------------------------------------------

def test_a_stale_save_is_refused_and_the_newer_one_kept(session, launched):
    staff = user(session, "staff-2706")
    save_draft(session, staff, DISTRICT, form(), expected_version=0, now=NOW)
    newer = form(outcomes=["ฉบับใหม่"])
    save_draft(session, staff, DISTRICT, newer, expected_version=1, now=NOW)
    for stale in (0, 1, 7):
        with pytest.raises(Conflict, match="someone else saved this report") as refused:
            save_draft(session, staff, DISTRICT, form(outcomes=["ฉบับเก่า"]),
                       expected_version=stale, now=NOW)
        assert "มีผู้อื่นบันทึก" in refused.value.message_th
    report = get_report(session, launched.id, DISTRICT)
    assert (report.version, report.content["outcomes"]) == (2, ["ฉบับใหม่"])


@pytest.fixture
def committed(fresh_engine):
    """A committed database other connections can see (SQLite and PostgreSQL), launched.

    Tests that commit or roll back use it: the ``session`` fixture's transaction must stay open.
    """
    from tidtam.app.orgtree import load_provinces
    from tidtam.app.tracking import launch_directive
    from tidtam.demo.province import create_demo_accounts
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    db.migrate(fresh_engine.url.render_as_string(hide_password=False))
    with Session(fresh_engine) as session:
        load_provinces(session, ["27"])
        launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=NOW)
        create_demo_accounts(session, NOW)
        session.commit()
    return fresh_engine


@pytest.fixture
def shared_db(committed):
    """The committed database with 2706's draft saved (version 1)."""
    with Session(committed) as session:
        save_draft(session, user(session, "staff-2706"), DISTRICT, form(), expected_version=0,
                   now=NOW)
        session.commit()
    return committed


def saved_outcomes(engine) -> tuple[int, list[str]]:
    with Session(engine) as session:
        report = session.exec(select(Report)).one()
        return report.version, report.content["outcomes"]


SECOND = "second-writer"  # the thread's name: its statements are the ones watched


@contextmanager
def watching_writes(engine) -> Iterator[threading.Event]:
    """Set when the thread named SECOND sends its first INSERT or UPDATE."""
    sent = threading.Event()

    def before(_conn, _cursor, statement, *_args) -> None:
        if (threading.current_thread().name == SECOND
                and statement.lstrip().upper().startswith(("INSERT", "UPDATE"))):
            sent.set()

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", before)


def waits_on_the_first(engine, sent: threading.Event, thread: threading.Thread) -> None:
    """Before the first writer commits: the second has sent its write and is waiting for the
    first's lock (not a fixed pause hoping it got there)."""
    wait_until(sent.is_set, timeout=30, message="the second writer never sent its write")
    if engine.dialect.name == "postgresql":
        query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                     "AND datname = current_database()")
        with engine.connect() as conn:
            wait_until(lambda: conn.execute(query).scalar(), timeout=30,
                       message="the second writer's write never waited on a lock")
    else:  # SQLite's busy wait is not visible from outside: the write must just not finish
        thread.join(timeout=0.2)
    assert thread.is_alive(), "the second writer waits on the first writer's lock"


def test_two_sessions_that_loaded_the_same_version_cannot_both_save(shared_db):
    with Session(shared_db) as first, Session(shared_db) as second:
        views = [report_view(s, user(s, name), DISTRICT)
                 for s, name in ((first, "staff-2706"), (second, "head-2706"))]
        assert [v.version for v in views] == [1, 1]
        save_draft(first, user(first, "staff-2706"), DISTRICT, form(outcomes=["จากโทรศัพท์"]),
                   expected_version=1, now=NOW)
        first.commit()
        with pytest.raises(Conflict, match="someone else saved"):
            save_draft(second, user(second, "head-2706"), DISTRICT,
                       form(outcomes=["จากคอมพิวเตอร์"]), expected_version=1, now=LATER)
        second.rollback()
    assert saved_outcomes(shared_db) == (2, ["จากโทรศัพท์"])


def test_a_save_waiting_on_a_concurrent_one_is_refused_when_it_commits(shared_db):
    """The second writer blocks on the first's row (PostgreSQL) or write lock (SQLite), then the
    database re-checks the version: 0 rows, Conflict, not a silent overwrite."""
    outcome: list[BaseException | None] = []
    first = Session(shared_db)
    save_draft(first, user(first, "staff-2706"), DISTRICT, form(outcomes=["ก่อน"]),
               expected_version=1, now=NOW)  # holds the row until it commits

    def second_writer():
        with Session(shared_db) as second:
            try:
                save_draft(second, user(second, "head-2706"), DISTRICT, form(outcomes=["หลัง"]),
                           expected_version=1, now=LATER)
                second.commit()
                outcome.append(None)
            except Exception as error:  # noqa: BLE001 - handed to the test thread
                second.rollback()
                outcome.append(error)

    thread = threading.Thread(target=second_writer, name=SECOND)
    with watching_writes(shared_db) as sent:
        thread.start()
        waits_on_the_first(shared_db, sent, thread)
    first.commit()
    first.close()
    thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    assert saved_outcomes(shared_db) == (2, ["ก่อน"])


def test_two_first_saves_racing_make_one_report(committed):
    first, second = Session(committed), Session(committed)
    try:
        assert report_view(second, user(second, "head-2706"), DISTRICT).version == 0
        save_draft(first, user(first, "staff-2706"), DISTRICT, form(outcomes=["ก่อน"]),
                   expected_version=0, now=NOW)
        outcome: list[BaseException | None] = []

        def second_writer():
            try:
                save_draft(second, user(second, "head-2706"), DISTRICT,
                           form(outcomes=["หลัง"]), expected_version=0, now=LATER)
                second.commit()
                outcome.append(None)
            except Exception as error:  # noqa: BLE001 - handed to the test thread
                second.rollback()
                outcome.append(error)

        thread = threading.Thread(target=second_writer, name=SECOND)
        with watching_writes(committed) as sent:
            thread.start()
            waits_on_the_first(committed, sent, thread)
        first.commit()
        thread.join(timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    finally:
        first.close()
        second.close()
    assert saved_outcomes(committed) == (1, ["ก่อน"])


# --- the lock after acceptance, and reopening -----------------------------------------------

def test_an_accepted_report_is_locked(session, launched, store):
    version = accepted(session, store)
    staff = user(session, "staff-2706")
    photo = report_view(session, staff, DISTRICT).photos[0]
    attempts = [
        lambda: save_draft(session, staff, DISTRICT, form(), expected_version=version, now=LATER),
        lambda: add_photo(session, staff, DISTRICT, "s1", jpeg(), "x.jpg", store=store, now=LATER),
        lambda: remove_photo(session, staff, photo.id, store=store, now=LATER),
        lambda: submit_report(session, staff, DISTRICT, expected_version=version, now=LATER),
        lambda: accept_report(session, user(session, "coordinator"), DISTRICT,
                              expected_version=version, now=LATER),
        lambda: return_report(session, user(session, "coordinator"), DISTRICT, comment="แก้",
                              expected_version=version, now=LATER),
    ]
    before = files_in(store)
    for attempt in attempts:
        with pytest.raises(Conflict):
            attempt()
    report = get_report(session, launched.id, DISTRICT)
    assert (report.status, report.version) == (ReportStatus.ACCEPTED, version)
    assert files_in(store) == before and len(before) == 6


def test_only_the_coordinator_reopens_and_the_reason_is_logged(session, launched, store):
    version = accepted(session, store)
    for username in ("staff-2706", "head-2706", "province-head"):
        with pytest.raises(Forbidden):
            reopen_report(session, user(session, username), DISTRICT, reason="แก้ตัวเลข",
                          expected_version=version, now=LATER)
    coordinator = user(session, "coordinator")
    for reason in ("", "   ", "ก" * 2001):
        with pytest.raises(InvalidInput, match="reason"):
            reopen_report(session, coordinator, DISTRICT, reason=reason,
                          expected_version=version, now=LATER)
    view = reopen_report(session, coordinator, DISTRICT, reason="จำนวนภาคีเครือข่ายไม่ตรงกับภาพ",
                         expected_version=version, now=LATER)
    assert (view.report.status, view.report.review_comment, view.report.accepted_at) == \
        (ReportStatus.RETURNED, "จำนวนภาคีเครือข่ายไม่ตรงกับภาพ", None)
    last = view.history[-1]
    assert (last.action, last.actor, last.after["reason"], last.before["status"]) == \
        ("report.reopen", "coordinator", "จำนวนภาคีเครือข่ายไม่ตรงกับภาพ", "accepted")
    assert r1(session, launched).status == ItemStatus.OPEN
    reopened = entries_for(session, "tracked_item", r1(session, launched).id)[-1]
    assert (reopened.action, reopened.after["via"]) == ("item.reopen", "report.reopen")
    staff = user(session, "staff-2706")
    assert save_draft(session, staff, DISTRICT, form(), expected_version=view.version,
                      now=LATER).report.status == ReportStatus.RETURNED


def test_review_needs_a_submitted_report_and_a_comment(session, launched, store):
    coordinator = user(session, "coordinator")
    with pytest.raises(NotFound):
        accept_report(session, coordinator, DISTRICT, expected_version=0, now=NOW)
    version = filed(session, store)
    with pytest.raises(Conflict, match="only a submitted report"):
        return_report(session, coordinator, DISTRICT, comment="แก้", expected_version=version,
                      now=NOW)
    version = submit_report(session, user(session, "staff-2706"), DISTRICT,
                            expected_version=version, now=NOW).version
    for comment in ("", "  ", "ก" * 2001):
        with pytest.raises(InvalidInput, match="comment") as refused:
            return_report(session, coordinator, DISTRICT, comment=comment,
                          expected_version=version, now=NOW)
        assert "ความเห็น" in refused.value.message_th
    for username in ("staff-2706", "province-head"):
        with pytest.raises(Forbidden):
            accept_report(session, user(session, username), DISTRICT, expected_version=version,
                          now=NOW)
    with pytest.raises(Conflict, match="someone else"):
        accept_report(session, coordinator, DISTRICT, expected_version=version - 1, now=NOW)
    assert get_report(session, launched.id, DISTRICT).status == ReportStatus.SUBMITTED


def test_a_submitted_report_waits_for_the_province(session, launched, store):
    version = submitted(session, store)
    staff = user(session, "staff-2706")
    with pytest.raises(Conflict, match="waiting for the province") as refused:
        save_draft(session, staff, DISTRICT, form(), expected_version=version, now=LATER)
    assert "รอจังหวัดตรวจ" in refused.value.message_th


# --- who may do what --------------------------------------------------------------------------

def test_staff_of_another_district_are_refused(session, launched, store):
    filed(session, store)
    photo = report_view(session, user(session, "staff-2706"), DISTRICT).photos[0]
    neighbour = user(session, "staff-2703")
    attempts = [
        lambda: report_view(session, neighbour, DISTRICT),
        lambda: save_draft(session, neighbour, DISTRICT, form(), expected_version=3, now=NOW),
        lambda: add_photo(session, neighbour, DISTRICT, "s1", jpeg(), "x.jpg", store=store,
                          now=NOW),
        lambda: remove_photo(session, neighbour, photo.id, store=store, now=NOW),
        lambda: get_photo_for(session, neighbour, photo.id),
        lambda: submit_report(session, neighbour, DISTRICT, expected_version=3, now=NOW),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()
    assert get_report(session, launched.id, DISTRICT).version == 3
    with pytest.raises(NotFound):
        report_view(session, neighbour, "9999")


def test_the_coordinator_reviews_but_does_not_write_the_draft(session, launched, store):
    coordinator = user(session, "coordinator")
    with pytest.raises(Forbidden, match="only the staff of district 2706") as refused:
        save_draft(session, coordinator, DISTRICT, form(), expected_version=0, now=NOW)
    assert "อำเภอ" in refused.value.message_th
    assert get_report(session, launched.id, DISTRICT) is None
    assert report_view(session, coordinator, DISTRICT).can_edit is False
    # the district head may write it, like the staff
    head = user(session, "head-2706")
    assert save_draft(session, head, DISTRICT, form(), expected_version=0, now=NOW).version == 1
    photo = add_photo(session, head, DISTRICT, "s1", jpeg(), "a.jpg", store=store, now=NOW)
    assert get_photo_for(session, coordinator, photo.id).id == photo.id
    with pytest.raises(Forbidden):
        remove_photo(session, coordinator, photo.id, store=store, now=NOW)


# --- photos -----------------------------------------------------------------------------------

def test_photo_is_stored_recorded_and_audited(session, launched, store):
    staff = user(session, "staff-2706")
    save_draft(session, staff, DISTRICT, form(), expected_version=0, now=NOW)
    photo = add_photo(session, staff, DISTRICT, "s2", jpeg(size=(80, 60)), "../../etc/ภาพ.jpg",
                      store=store, now=NOW)
    assert (photo.session_key, photo.original_filename, photo.content_type, photo.width,
            photo.height, photo.uploaded_by_id) == ("s2", "ภาพ.jpg", "image/jpeg", 80, 60, staff.id)
    assert files_in(store) == sorted([photo.stored_name, photo.display_name, photo.thumb_name])
    view = report_view(session, staff, DISTRICT)
    assert [p.id for p in view.photos] == [photo.id] and view.version == 2
    last = view.history[-1]
    assert (last.action, last.after["photo_id"], last.after["session_key"]) == \
        ("report.photo.add", photo.id, "s2")


def test_photo_for_an_unsaved_session_or_a_bad_file_is_refused_and_nothing_is_written(
        session, launched, store):
    staff = user(session, "staff-2706")
    with pytest.raises(InvalidInput, match="save the session first"):
        add_photo(session, staff, DISTRICT, "s1", jpeg(), "a.jpg", store=store, now=NOW)
    save_draft(session, staff, DISTRICT, form(), expected_version=0, now=NOW)
    with pytest.raises(InvalidInput, match="save the session first"):
        add_photo(session, staff, DISTRICT, "s9", jpeg(), "a.jpg", store=store, now=NOW)
    with pytest.raises(InvalidInput, match="not a photo"):
        add_photo(session, staff, DISTRICT, "s1", b"#!/bin/sh\nrm -rf /\n", "a.jpg", store=store,
                  now=NOW)
    assert files_in(store) == []
    assert session.exec(select(ReportPhoto)).all() == []
    assert get_report(session, launched.id, DISTRICT).version == 1


def _bomb() -> bytes:
    """A 20000 × 20000 black PNG: about 50 KB on disk, 400 megapixels once decoded."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(("data", "name", "reason"), [
    (b"#!/bin/sh\nrm -rf /\n", "holiday.jpg", "not a photo"),
    (b"<html><script>alert(1)</script></html>", "index.jpg", "not a photo"),
    (b"\xff\xd8\xff\xe0" + bytes(50_000_000), "big.jpg", "at most 10 MB"),
    (None, "bomb.png", "megapixels"),
    (None, "../../../../etc/cron.d/evil.jpg", None),
], ids=["script renamed .jpg", "html renamed .jpg", "50 MB", "decompression bomb",
        "path in the file name"])
def test_hostile_uploads_through_the_use_case(session, launched, store, data, name, reason):
    """Each hostile upload is refused with its reason and leaves no row and no file, on both
    databases; a path in the name is only ever a display name."""
    staff = user(session, "staff-2706")
    save_draft(session, staff, DISTRICT, form(), expected_version=0, now=NOW)
    if reason is None:
        photo = add_photo(session, staff, DISTRICT, "s1", jpeg(), name, store=store, now=NOW)
        assert photo.original_filename == "evil.jpg"
        assert all(store.path(n).parent == store.root
                   for n in (photo.stored_name, photo.display_name, photo.thumb_name))
        assert not (store.root.parent / "etc").exists()
        return
    data = data if data is not None else _bomb()
    with pytest.raises(InvalidInput, match=reason) as refused:
        add_photo(session, staff, DISTRICT, "s1", data, name, store=store, now=NOW)
    assert refused.value.message_th  # a Thai reason for the person who sent it
    assert files_in(store) == []
    assert session.exec(select(ReportPhoto)).all() == []
    assert get_report(session, launched.id, DISTRICT).version == 1


def test_files_are_deleted_when_the_row_cannot_be_written(session, launched, store):
    """A submit lands between the photo's checks and its row: the files written go again."""
    staff = user(session, "staff-2706")
    save_draft(session, staff, DISTRICT, form(), expected_version=0, now=NOW)
    session.execute(update(Report).values(status=ReportStatus.SUBMITTED)
                    .execution_options(synchronize_session=False))  # behind the ORM's back
    with pytest.raises(Conflict, match="submitted"):
        add_photo(session, staff, DISTRICT, "s1", jpeg(), "a.jpg", store=store, now=NOW)
    assert files_in(store) == []
    assert session.exec(select(ReportPhoto)).all() == []


def test_removing_a_photo_deletes_its_files_only_once_committed(shared_db, store):
    with Session(shared_db) as session:
        staff = user(session, "staff-2706")
        photo = add_photo(session, staff, DISTRICT, "s1", jpeg(), "a.jpg", store=store, now=NOW)
        session.commit()
        remove_photo(session, staff, photo.id, store=store, now=NOW)
        assert len(files_in(store)) == 3  # the row's deletion could still be rolled back
        session.rollback()
        assert len(files_in(store)) == 3 and session.get(ReportPhoto, photo.id) is not None
        remove_photo(session, staff, photo.id, store=store, now=NOW)
        view = report_view(session, staff, DISTRICT)
        assert (view.version, view.history[-1].action) == (3, "report.photo.remove")
        session.commit()
    assert files_in(store) == []


def test_a_rolled_back_photo_leaves_no_files_and_a_committed_one_stays(shared_db, store):
    with Session(shared_db) as session:
        staff = user(session, "staff-2706")
        add_photo(session, staff, DISTRICT, "s1", jpeg(), "a.jpg", store=store, now=NOW)
        assert len(files_in(store)) == 3
        session.rollback()
        assert files_in(store) == []
        kept = add_photo(session, staff, DISTRICT, "s1", jpeg(), "b.jpg", store=store, now=NOW)
        names = sorted([kept.stored_name, kept.display_name, kept.thumb_name])
        session.commit()
        save_draft(session, staff, DISTRICT, form(), expected_version=2, now=NOW)
        session.rollback()  # a later, unrelated rollback leaves the committed photo alone
    assert files_in(store) == names


def test_audit_entries_share_the_change_s_transaction(shared_db):
    with Session(shared_db) as session:
        save_draft(session, user(session, "staff-2706"), DISTRICT, form(outcomes=["x"]),
                   expected_version=1, now=LATER)
        session.rollback()
        report = session.exec(select(Report)).one()
        assert (report.version, actions(session, report.id)) == (1, ["report.save"])


# --- the provincial compilation ---------------------------------------------------------------

def test_compilation_adds_up_accepted_reports_and_lists_the_missing(session, launched, store):
    accepted(session, store, "2706")
    two_sessions = form(entry("s1", community=10), entry("s2", kind="landscape", partners=0),
                        outcomes=["ก", "ข"])
    filed(session, store, "2701", raw=two_sessions)
    submit_report(session, user(session, "staff-2701"), "2701",
                  expected_version=report_view(session, user(session, "staff-2701"),
                                               "2701").version, now=NOW)
    version = report_view(session, user(session, "coordinator"), "2701").version
    accept_report(session, user(session, "coordinator"), "2701", expected_version=version, now=NOW)
    submitted(session, store, "2703")  # not accepted yet: missing

    compiled = compile_for(session, user(session, "province-head"))
    assert [d.code for d in compiled.accepted] == ["2701", "2706"]
    assert len(compiled.missing) == 7
    assert {d.code: d.status for d in compiled.missing}["2703"] == "submitted"
    assert {d.code: d.status for d in compiled.missing}["2709"] == "none"
    # 2706: 3 sessions of 23; 2701: 25 and 20 → by category, by hand
    assert compiled.totals.participants == {
        "center-committee": 5 * 5, "volunteer-leaders": 5 * 5, "community": 8 * 3 + 10 + 8,
        "partners": 3 * 3 + 3 + 0, "cd-officials": 2 * 5}
    assert compiled.totals.total_participants == 23 * 3 + 25 + 20
    assert (compiled.totals.sessions, compiled.totals.centers) == (5, 3)
    for username in ("staff-2706", "head-2701"):
        with pytest.raises(Forbidden):
            compile_for(session, user(session, username))


def test_a_session_left_out_of_the_new_draft_takes_its_photos_with_it(session, launched, store):
    """The API and the page save the same way: no photo stays behind for a session removed."""
    staff = user(session, "staff-2706")
    version = filed(session, store)
    without_s2 = form(entry("s1"))
    view = save_draft(session, staff, DISTRICT, without_s2, expected_version=version, now=LATER,
                      store=store)
    assert [p.session_key for p in view.photos] == ["s1"]
    assert view.version == version + 2  # the save, then the photo's removal
    assert actions(session, view.report.id)[-2:] == ["report.save", "report.photo.remove"]
    kept = save_draft(session, staff, DISTRICT, without_s2, expected_version=view.version,
                      now=LATER)  # without a store, photos are left alone
    assert [p.session_key for p in kept.photos] == ["s1"]


# --- which directive ----------------------------------------------------------------------------

def test_a_report_belongs_to_the_directive_it_is_asked_of(session, launched, store):
    """Two active directives in Sa Kaeo: each has its own report per district; a call that names
    none is asked which (409 listing them); a directive of another province has no such district."""
    from domain.directive import load_directive
    from tidtam.app.tracking import launch_directive
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

    staff = user(session, "staff-2706")
    assert reporting.directive_for_report(session, staff, DISTRICT, None).id == launched.id
    filed(session, store)
    spec = load_directive(DEFAULT_DIRECTIVE)
    second = launch_directive(session, spec.model_copy(update={"slug": "fy2567-sakaeo-follow-up"}),
                              now=NOW).directive
    assert reporting.report_view(session, staff, DISTRICT, directive=second).report is None
    assert reporting.report_view(session, staff, DISTRICT, directive=launched).report is not None
    with pytest.raises(Conflict) as asked:
        reporting.directive_for_report(session, staff, DISTRICT, None)
    assert "fy2567-sakaeo-volunteer-centers" in asked.value.message_en
    assert "fy2567-sakaeo-follow-up" in asked.value.message_en
    assert "fy2567-sakaeo-follow-up" in asked.value.message_th
    assert reporting.directive_for_report(session, staff, DISTRICT,
                                          "fy2567-sakaeo-follow-up").id == second.id
    with pytest.raises(NotFound):
        reporting.directive_named(session, staff, "no-such-letter")
    coordinator = user(session, "coordinator")
    assert reporting.directive_for_province(session, coordinator, second.slug).id == second.id
    with pytest.raises(Conflict):
        reporting.directive_for_province(session, coordinator, None)


def test_a_closed_directive_keeps_its_reports_readable_and_refuses_changes(session, launched,
                                                                          store):
    from tidtam.app.directives import close_directive

    version = submitted(session, store)
    coordinator, staff = user(session, "coordinator"), user(session, "staff-2701")
    save_draft(session, staff, "2701", form(), expected_version=0, now=NOW)
    photo = add_photo(session, staff, "2701", "s1", jpeg(), "a.jpg", store=store, now=NOW)
    close_directive(session, coordinator, launched.slug, reason="ครบกำหนด", now=LATER)
    on = {"directive": launched}  # closed: no longer Sa Kaeo's active one
    view = report_view(session, staff, "2701", **on)
    assert view.closed and not view.can_edit and view.report.version == 2
    assert not report_view(session, coordinator, DISTRICT, **on).can_review
    refusals = [
        lambda: save_draft(session, staff, "2701", form(entry("s9")), expected_version=2, now=LATER,
                           **on),
        lambda: add_photo(session, staff, "2701", "s1", jpeg(), "b.jpg", store=store, now=LATER,
                          **on),
        lambda: remove_photo(session, staff, photo.id, store=store, now=LATER),
        lambda: submit_report(session, staff, "2701", expected_version=2, now=LATER, **on),
        lambda: accept_report(session, coordinator, DISTRICT, expected_version=version, now=LATER,
                              **on),
        lambda: return_report(session, coordinator, DISTRICT, comment="x",
                              expected_version=version, now=LATER, **on)]
    for refused in refusals:
        with pytest.raises(Conflict, match="closed") as caught:
            refused()
        assert "ปิดแล้ว" in caught.value.message_th
    assert get_photo_for(session, staff, photo.id).id == photo.id
    assert [d.code for d in compile_for(session, coordinator, **on).missing][:1] == ["2701"]
