"""Every step an event (issue 12, item 4): each of the nine actions leaves one Prefect event in the
outbox, in the action's own transaction, with the contract's resource, related resources and
payload; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from domain.errors import Conflict
from models.directive import find_item
from models.org import districts_of
from models.outbox import Channel, OutboxMessage, OutboxStatus, to_people
from models.user import get_by_username
from notifications.base import delivery_key
from tests.conftest import NOW
from tests.db import test_reporting as reports
from tidtam.app.directives import close_directive
from tidtam.app.events import EventName
from tidtam.app.tracking import launch_directive, mark_done, reopen_waived, waive
from tidtam.infra.photos import PhotoStore
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

SLUG = "fy2567-sakaeo-volunteer-centers"
LATER = NOW + timedelta(hours=2)


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


def event_rows(session: Session, name: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.channel == Channel.PREFECT_EVENT)
    if name:
        query = query.where(OutboxMessage.subject == name)
    return list(session.exec(query.order_by(OutboxMessage.id)))


def only_event(session: Session, name: str) -> dict:
    [row] = event_rows(session, name)
    assert (row.status, row.recipient, row.next_try_at) == (OutboxStatus.QUEUED, "prefect", row.created_at)
    body = json.loads(row.body)
    assert body["id"] == str(delivery_key(row.idempotency_key))  # a redelivery is the same event
    assert body["event"] == name
    return body


def roles(event: dict) -> dict[str, tuple[str, str]]:
    return {r["prefect.resource.role"]: (r["prefect.resource.id"], r["prefect.resource.name"])
            for r in event["related"]}


DIRECTIVE_NAME = ("สก ๐๐๑๙/ว ๒๕๒ การขับเคลื่อนการดำเนินงานศูนย์ผู้นำจิตอาสาพัฒนาชุมชน "
                  "ประจำปีงบประมาณ พ.ศ. ๒๕๖๗")
PROVINCE = ("tidtam.province.27", "สระแก้ว")
DIRECTIVE = (f"tidtam.directive.{SLUG}", DIRECTIVE_NAME)


def test_a_launch_is_one_event_for_the_whole_directive_and_a_relaunch_none(session, launched):
    event = only_event(session, EventName.DIRECTIVE_LAUNCHED)
    assert event["resource"] == {
        "prefect.resource.id": f"tidtam.directive.{SLUG}",
        "prefect.resource.name": DIRECTIVE_NAME,
        "tidtam.directive": SLUG, "tidtam.province": "27"}
    assert event["related"] == [
        {"prefect.resource.id": DIRECTIVE[0], "prefect.resource.role": "directive",
         "prefect.resource.name": DIRECTIVE_NAME},
        {"prefect.resource.id": PROVINCE[0], "prefect.resource.role": "province",
         "prefect.resource.name": PROVINCE[1]}]
    items = len(districts_of(session, "27")) * 12  # 9 districts × 12 steps
    assert event["payload"] == {"actor": "system:launch-directive", "revision": 1,
                                "items": items, "districts": 9}
    assert event["occurred"] == NOW.isoformat()
    launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=LATER)
    assert len(event_rows(session)) == 1


def test_marking_done_is_item_completed_with_district_step_directive_and_province(session,
                                                                                 launched):
    staff = get_by_username(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G3")
    mark_done(session, staff, item.id, now=LATER, note="ประชุมแล้ว")
    event = only_event(session, EventName.ITEM_COMPLETED)
    assert event["resource"] == {
        "prefect.resource.id": f"tidtam.item.{item.id}",
        "prefect.resource.name": "ตาพระยา · G3 " + item_step_title(session, item),
        "tidtam.directive": SLUG, "tidtam.province": "27", "tidtam.district": "2703"}
    assert [r["prefect.resource.role"] for r in event["related"]] == [
        "district", "step", "directive", "province"]
    assert roles(event) == {
        "district": ("tidtam.district.2703", "ตาพระยา"),
        "step": (f"tidtam.step.{SLUG}.G3", item_step_title(session, item)),
        "directive": DIRECTIVE, "province": PROVINCE}
    assert event["payload"] == {"actor": "staff-2703", "version": 2, "note": "ประชุมแล้ว"}
    assert event["occurred"] == LATER.isoformat()
    [row] = event_rows(session, EventName.ITEM_COMPLETED)
    assert row.idempotency_key == f"event:tidtam.item.completed:{item.id}:2"
    assert (row.district_code, row.directive_id, row.item_id, row.step_id) == (
        "2703", launched.id, None, None)


def item_step_title(session, item) -> str:
    from models.directive import DirectiveStep
    return session.get(DirectiveStep, item.step_id).title_th


def test_waiving_and_undoing_it_are_two_events_of_the_item(session, launched):
    coordinator = get_by_username(session, "coordinator")
    item = find_item(session, launched.id, "2705", "G4")
    waive(session, coordinator, item.id, reason="ไม่มีศูนย์ในอำเภอ", now=LATER)
    reopen_waived(session, coordinator, item.id, now=LATER + timedelta(minutes=5))
    waived = only_event(session, EventName.ITEM_WAIVED)
    reopened = only_event(session, EventName.ITEM_REOPENED)
    assert waived["resource"]["prefect.resource.id"] == reopened["resource"]["prefect.resource.id"]
    assert waived["payload"] == {"actor": "coordinator", "version": 2, "reason": "ไม่มีศูนย์ในอำเภอ"}
    assert reopened["payload"] == {"actor": "coordinator", "version": 3, "reason": None}
    assert roles(reopened)["step"][0] == f"tidtam.step.{SLUG}.G4"


def test_a_refused_action_leaves_no_event(session, launched):
    staff = get_by_username(session, "staff-2703")
    item = find_item(session, launched.id, "2703", "G3")
    with pytest.raises(Conflict):
        mark_done(session, staff, item.id, now=LATER, expected_version=item.version + 1)
    assert event_rows(session, EventName.ITEM_COMPLETED) == []


def test_the_four_report_events_name_the_report_its_district_and_directive(session, launched,
                                                                          store):
    coordinator = get_by_username(session, "coordinator")
    district = reports.DISTRICT
    version = reports.submitted(session, store)
    version = reports.return_report(session, coordinator, district, comment="เพิ่มรูปถ่าย",
                                    expected_version=version, now=LATER).version
    version = reports.submit_report(session, get_by_username(session, f"staff-{district}"),
                                    district, expected_version=version, now=LATER).version
    version = reports.accept_report(session, coordinator, district, expected_version=version,
                                    now=LATER).version
    reports.reopen_report(session, coordinator, district, reason="ตัวเลขผิด",
                          expected_version=version, now=LATER)
    submitted = event_rows(session, EventName.REPORT_SUBMITTED)
    assert len(submitted) == 2  # the first and the resubmission, each its own version
    returned = only_event(session, EventName.REPORT_RETURNED)
    accepted = only_event(session, EventName.REPORT_ACCEPTED)
    reopened = only_event(session, EventName.REPORT_REOPENED)
    report_id = reports.report_view(session, coordinator, district).report.id
    for event in (returned, accepted, reopened, json.loads(submitted[0].body)):
        assert event["resource"]["prefect.resource.id"] == f"tidtam.report.{report_id}"
        assert event["resource"]["tidtam.district"] == district
        assert event["resource"]["prefect.resource.name"].startswith("อรัญประเทศ · R1 รายงานผล")
        assert roles(event) == {"district": (f"tidtam.district.{district}", "อรัญประเทศ"),
                                "directive": DIRECTIVE, "province": PROVINCE}
    assert returned["payload"]["comment"] == "เพิ่มรูปถ่าย"
    assert reopened["payload"] == {"actor": "coordinator", "version": reopened["payload"]["version"],
                                   "reason": "ตัวเลขผิด"}
    assert accepted["resource"]["tidtam.all_accepted"] == "false"  # 1 district of 9
    assert "tidtam.all_accepted" not in returned["resource"]
    assert {r.report_id for r in submitted} == {report_id}


def test_the_acceptance_of_the_last_district_says_all_accepted(session, launched, store):
    coordinator = get_by_username(session, "coordinator")
    codes = [d.code for d in districts_of(session, "27")]
    for code in codes[:-1]:
        reports.accepted(session, store, code)
    last = reports.submitted(session, store, codes[-1])
    reports.accept_report(session, coordinator, codes[-1], expected_version=last, now=LATER)
    flags = [json.loads(r.body)["resource"]["tidtam.all_accepted"]
             for r in event_rows(session, EventName.REPORT_ACCEPTED)]
    assert flags == ["false"] * 8 + ["true"]


def test_closing_a_directive_is_one_event_and_keeps_the_queued_events(session, launched):
    staff = get_by_username(session, "staff-2703")
    mark_done(session, staff, find_item(session, launched.id, "2703", "G3").id, now=LATER)
    close_directive(session, get_by_username(session, "coordinator"), SLUG, reason="สิ้นปีงบ",
                    now=LATER)
    event = only_event(session, EventName.DIRECTIVE_CLOSED)
    assert event["resource"]["prefect.resource.id"] == f"tidtam.directive.{SLUG}"
    assert "tidtam.district" not in event["resource"]
    assert event["payload"] == {"actor": "coordinator", "revision": 1, "reason": "สิ้นปีงบ"}
    assert {r.status for r in event_rows(session)} == {OutboxStatus.QUEUED}  # none cancelled
    assert len(event_rows(session)) == 3  # launched, completed, closed


def test_an_amendment_is_one_event_per_revision_and_a_refused_one_none(session, launched):
    from tests.db.test_amendment import add, amended, drop, move

    spec = load_directive(DEFAULT_DIRECTIVE)
    G4 = next(s for s in spec.steps if s.code == "G4").due_on
    revision2 = amended(spec, move("G4", str(G4 + timedelta(days=7))), add("G4b", "2024-09-30", "G4"))
    launch_directive(session, revision2, now=LATER)
    event = only_event(session, EventName.DIRECTIVE_AMENDED)
    assert event["event"] == "tidtam.directive.amended"
    assert event["resource"] == {
        "prefect.resource.id": f"tidtam.directive.{SLUG}",
        "prefect.resource.name": DIRECTIVE_NAME,
        "tidtam.directive": SLUG, "tidtam.province": "27"}
    assert roles(event) == {"directive": DIRECTIVE, "province": PROVINCE}
    payload = event["payload"]
    assert (payload["actor"], payload["revision"], payload["from_revision"]) == (
        "system:launch-directive", 2, 1)
    assert payload["moved_steps"] == {"G4": [str(G4), str(G4 + timedelta(days=7))]}
    assert payload["added_steps"] == ["G4b"]
    assert (payload["created_items"], payload["moved_items"]) == (9, 9)  # Sa Kaeo's 9 districts
    assert event["occurred"] == LATER.isoformat()
    [row] = event_rows(session, EventName.DIRECTIVE_AMENDED)
    assert row.idempotency_key == f"event:tidtam.directive.amended:{SLUG}:2"
    assert row.directive_id == launched.id
    # The same revision again amends nothing and says nothing; the next one is a second event.
    launch_directive(session, revision2, now=LATER + timedelta(hours=1))
    assert len(event_rows(session, EventName.DIRECTIVE_AMENDED)) == 1
    staff = get_by_username(session, "staff-2703")
    mark_done(session, staff, find_item(session, launched.id, "2703", "G3").id, now=LATER)
    with pytest.raises(Conflict):  # dropping a step with work done is refused, and silent
        launch_directive(session, amended(revision2, drop("G3")), now=LATER + timedelta(hours=2))
    assert len(event_rows(session, EventName.DIRECTIVE_AMENDED)) == 1
    revision3 = amended(revision2, move("G4b", "2024-10-15"))
    launch_directive(session, revision3, now=LATER + timedelta(hours=3))
    rows = event_rows(session, EventName.DIRECTIVE_AMENDED)
    assert [r.idempotency_key for r in rows] == [f"event:tidtam.directive.amended:{SLUG}:{n}"
                                                 for n in (2, 3)]
    assert json.loads(rows[1].body)["payload"]["moved_steps"] == {
        "G4b": ["2024-09-30", "2024-10-15"]}


def test_a_national_amendment_is_an_event_of_the_province_copy_only(session, launched):
    from tests.db.test_amendment import NATIONAL, amended, move
    from tidtam.app.national import launch_national

    launch_national(session, NATIONAL, now=NOW)
    second = NATIONAL.steps[1]
    launch_national(session, amended(NATIONAL, move(second.code, str(second.due_on + timedelta(3)))),
                    now=LATER)
    [row] = event_rows(session, EventName.DIRECTIVE_AMENDED)  # the Department's row has none
    event = json.loads(row.body)
    assert event["resource"]["tidtam.directive"] == f"{NATIONAL.slug}-p27"
    assert (event["payload"]["revision"], event["payload"]["from_revision"]) == (2, 1)
    assert list(event["payload"]["moved_steps"]) == [second.code]


def test_events_are_not_messages_to_people(session, launched):
    staff = get_by_username(session, "staff-2703")
    mark_done(session, staff, find_item(session, launched.id, "2703", "G3").id, now=LATER)
    people = session.exec(select(func.count()).select_from(OutboxMessage).where(to_people())).one()
    assert people == 0 and len(event_rows(session)) == 2
