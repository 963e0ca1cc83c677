"""`tidtam demo-data`: a seeded national dataset, written through the use cases, on SQLite and
PostgreSQL. Three provinces keep it quick: Sa Kaeo (27), Chiang Mai (50, with its addition) and
Narathiwat (96); one run covers the whole country without photos."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import geothai
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from domain.access import Role
from domain.directive import load_directive
from domain.errors import Conflict
from domain.report import check_report
from models.audit import AuditEntry
from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem
from models.org import District
from models.outbox import OutboxMessage, OutboxStatus, to_people
from models.report import ProvincialReport, Report, ReportPhoto, ReportStatus, photo_counts
from models.user import User
from tests.conftest import make_database
from tidtam.app.accounts import authenticate
from tidtam.app.reporting import spec_of
from tidtam.demo import dataset as dataset_module
from tidtam.demo.dataset import (
    BANGKOK,
    NATIONAL_DIRECTIVE,
    PACES,
    DemoDataResult,
    DistrictPlan,
    Event,
    OfficeDays,
    Pace,
    generate,
    launch_instant,
    plan_district,
    plan_provincial_report,
)
from tidtam.demo.province import DEMO_PASSWORD, demo_line_id
from tidtam.infra import db
from tidtam.infra.photos import PhotoStore

PROVINCES = ["27", "50", "96"]
SEED = 2567  # any seed: no test below relies on what one seed happens to produce
AS_OF = datetime(2024, 8, 23, 3, 0, tzinfo=UTC)  # 10:00 Bangkok, a week after the Department's due day
SLUG = "fy2567-national-volunteer-centers"
NATIONAL = load_directive(NATIONAL_DIRECTIVE)


@dataclass
class Built:
    engine: Engine
    result: DemoDataResult
    photos: Path | None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def build(request, tmp_path_factory) -> Iterator:
    """Makes datasets in new databases of one kind; drops them when the module is done."""
    drops = []

    def make(provinces: list[str], seed: int, *, photos: bool) -> Built:
        url, drop = make_database(request.param, tmp_path_factory)
        drops.append(drop)
        engine = db.engine_for(url)
        store = PhotoStore(tmp_path_factory.mktemp("photos")) if photos else None
        result = generate(engine, provinces=provinces, seed=seed, as_of=AS_OF, photos=store)
        return Built(engine, result, store.root if store else None)

    yield make
    for drop in drops:
        drop()
    db.engine_for.cache_clear()


@pytest.fixture(scope="module")
def dataset(build) -> Built:
    return build(PROVINCES, SEED, photos=True)


def fingerprint(engine: Engine, provinces: list[str] | None = None) -> dict:
    """Everything the seed decides, by codes and instants (ids and photo file names left out).

    With ``provinces``, only their items, reports and provincial reports; without, the outbox
    (its keys hold ids) and the audit log's actions too.
    """
    with Session(engine) as session:
        users = dict(session.exec(select(User.id, User.username)).all())
        province_of = dict(session.exec(select(Directive.id, Directive.province_code)).all())
        items = session.exec(
            select(TrackedItem.district_code, DirectiveStep.code, TrackedItem.status,
                   TrackedItem.completed_at, TrackedItem.completed_by_id)
            .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)).all()
        reports = session.exec(select(Report)).all()
        photos = session.exec(select(Report.district_code, ReportPhoto)
                              .join(Report, Report.id == ReportPhoto.report_id)).all()
        found = {
            "items": sorted((d, code, str(status), _iso(at), users.get(by))
                            for d, code, status, at, by in items if _in(d[:2], provinces)),
            "reports": sorted((r.district_code, str(r.status), r.version, _iso(r.submitted_at),
                               _iso(r.reviewed_at), _iso(r.accepted_at), r.review_comment,
                               json.dumps(r.content, sort_keys=True, ensure_ascii=False))
                              for r in reports if _in(r.district_code[:2], provinces)),
            "photos": sorted((d, p.session_key, p.original_filename, p.size_bytes, _iso(p.uploaded_at))
                             for d, p in photos if _in(d[:2], provinces)),
            "provincial": sorted((province_of[p.directive_id], _iso(p.first_submitted_at),
                                  p.districts_accepted, p.districts_expected, p.version)
                                 for p in session.exec(select(ProvincialReport))
                                 if _in(province_of[p.directive_id], provinces)),
        }
        if provinces is None:
            found["outbox"] = sorted((m.idempotency_key, str(m.status), _iso(m.sent_at))
                                     for m in session.exec(select(OutboxMessage)))
            found["audit"] = sorted(Counter(session.exec(select(AuditEntry.action))).items())
    return found


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


def _in(code: str, provinces: list[str] | None) -> bool:
    return provinces is None or code in provinces


# --- the same seed, the same data ----------------------------------------------------------------

def test_the_same_seed_gives_the_same_data_with_or_without_photo_files(dataset, build):
    twin = build(PROVINCES, SEED, photos=False)
    assert fingerprint(twin.engine) == fingerprint(dataset.engine)
    assert (twin.result.reports, twin.result.outbox, twin.result.photos) == (
        dataset.result.reports, dataset.result.outbox, dataset.result.photos)
    assert not twin.result.photo_files and dataset.result.photo_files


def test_a_province_story_depends_on_the_seed_not_on_the_other_provinces(dataset, build):
    alone = build(["27"], SEED, photos=False)
    assert fingerprint(alone.engine, ["27"]) == fingerprint(dataset.engine, ["27"])
    other = build(["27"], SEED + 1, photos=False)
    assert fingerprint(other.engine, ["27"])["items"] != fingerprint(alone.engine, ["27"])["items"]
    assert fingerprint(other.engine, ["27"])["reports"] != fingerprint(alone.engine, ["27"])["reports"]


# --- what is in it ---------------------------------------------------------------------------------

def test_the_summary_counts_three_provinces_with_chiang_mais_own_step(dataset):
    result = dataset.result
    assert (result.provinces, result.districts) == (3, 9 + 25 + 13)
    assert result.items == 47 * 12 + 25  # Chiang Mai's P1 for each of its 25 districts
    assert result.users == 1 + 3 * 2 + 47 * 2
    assert sum(result.paces.values()) == 47 and sum(result.reports.values()) == 47
    assert result.photos > 0 and result.sweeps >= 5
    assert any(line.startswith("district reports:") for line in result.lines())


def test_the_summary_is_what_the_rows_say(dataset):
    """Every count of the summary, read back independently from the tables."""
    result = dataset.result
    with Session(dataset.engine) as session:
        items = session.exec(select(TrackedItem.status, TrackedItem.due_on,
                                    TrackedItem.completed_at, TrackedItem.district_code)).all()
        reports = Counter(str(s) for s in session.exec(select(Report.status)))
        provincial = session.exec(select(ProvincialReport.first_submitted_at, Directive.department_due)
                                  .join(Directive, Directive.id == ProvincialReport.directive_id)).all()
        photos = session.exec(select(func.count()).select_from(ReportPhoto)).one()
        # the summary counts messages to people; the Prefect events wait for serve's pump
        outbox = Counter(str(s) for s in session.exec(select(OutboxMessage.status)
                                                      .where(to_people())))
        districts = session.exec(select(func.count()).select_from(District)).one()
    done = [(due, at) for status, due, at, _ in items if status != ItemStatus.OPEN]
    late = [1 for due, at in done if at is not None and at.astimezone(BANGKOK).date() > due]
    assert result.items == len(items) and result.districts == districts
    assert (result.done_on_time, result.done_late) == (len(done) - len(late), len(late))
    statuses = ("accepted", "submitted", "returned", "draft")
    assert result.reports == {**{s: reports.get(s, 0) for s in statuses},
                              "none": districts - sum(reports.values())}
    on_time = sum(at.astimezone(BANGKOK).date() <= due for at, due in provincial)
    assert (result.provincial_on_time, result.provincial_late) == (on_time, len(provincial) - on_time)
    assert result.photos == photos and result.outbox == dict(outbox)
    assert sum(result.paces.values()) == districts and set(result.paces) <= {str(p) for p in Pace}
    # a district planned never to act has no step done
    active = {d for status, _, _, d in items if status != ItemStatus.OPEN}
    assert districts - len(active) >= result.paces.get("never", 0)


def test_every_status_is_one_the_product_knows(dataset):
    with Session(dataset.engine) as session:
        found = {
            "item": set(session.exec(select(TrackedItem.status).distinct())),
            "report": set(session.exec(select(Report.status).distinct())),
            "outbox": set(session.exec(select(OutboxMessage.status).distinct())),
        }
    assert {str(s) for s in found["item"]} <= {str(s) for s in ItemStatus}
    assert {str(s) for s in found["report"]} <= {str(s) for s in ReportStatus}
    assert {str(s) for s in found["outbox"]} <= {str(s) for s in OutboxStatus}


def test_the_outbox_has_sent_and_queued_rows_from_the_sweeps(dataset):
    outbox = dataset.result.outbox
    assert outbox.get("sent") and outbox.get("queued"), outbox
    with Session(dataset.engine) as session:
        rungs = set(session.exec(select(OutboxMessage.rung).distinct()))
        sent = session.exec(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENT)
                            .limit(1)).one()
    assert {"reminder-3", "due-today", "late"} <= rungs
    assert sent.sent_at >= sent.created_at and sent.attempts == 1


def test_every_accepted_report_validates_and_its_photos_are_on_disk(dataset):
    with Session(dataset.engine) as session:
        accepted = session.exec(select(Report).where(Report.status == "accepted")).all()
        assert accepted
        for report in accepted:
            spec = spec_of(session.get(Directive, report.directive_id))
            checked = check_report(report.content, spec, photo_counts(session, report.id))
            assert checked.ok, (report.district_code, checked.errors)
            assert all(sum(s.participants.values()) >= 20 for s in checked.content.sessions)
            assert all(spec.activity_start <= s.held_on <= spec.activity_end
                       for s in checked.content.sessions)
        stored = session.exec(select(ReportPhoto.stored_name, ReportPhoto.thumb_name)).all()
    assert stored and all((dataset.photos / name).is_file() for pair in stored for name in pair)


def test_chiang_mai_follows_its_own_addition(dataset):
    with Session(dataset.engine) as session:
        steps = {s.code: s.due_on for s in session.exec(
            select(DirectiveStep).join(Directive, Directive.id == DirectiveStep.directive_id)
            .where(Directive.slug == f"{SLUG}-p50"))}
    assert steps["P1"] == date(2024, 8, 2) and steps["R1"] == date(2024, 8, 8)


def test_the_people_share_one_password_hash_and_have_both_channels(dataset):
    with Session(dataset.engine) as session:
        viewer = session.exec(select(User).where(User.username == "department")).one()
        assert (viewer.role, viewer.province_code, viewer.district_code) == (
            Role.DEPARTMENT_VIEWER, None, None)
        people = session.exec(select(User)).all()
        assert len({u.password_hash for u in people}) == 1
        assert all(u.email == f"{u.username}@demo.tidtam.local" and u.line_user_id == demo_line_id(u.username)
                   for u in people)
        names = {u.username: u for u in people}
        assert (names["coordinator-50"].role, names["province-head-96"].role) == (
            Role.COORDINATOR, Role.PROVINCIAL_HEAD)
        assert (names["staff-5001"].district_code, names["head-9601"].role) == ("5001", Role.DISTRICT_HEAD)
        assert authenticate(session, "staff-2701", DEMO_PASSWORD) is not None


def test_every_change_is_audited_by_the_person_who_made_it(dataset):
    with Session(dataset.engine) as session:
        users = dict(session.exec(select(User.id, User.username)).all())
        done = session.exec(select(TrackedItem).where(TrackedItem.status == ItemStatus.DONE)).all()
        audited = {(e.entity_id, e.actor) for e in session.exec(
            select(AuditEntry).where(AuditEntry.action == "item.done"))}
        actions = Counter(session.exec(select(AuditEntry.action)))
        reports = Counter(str(s) for s in session.exec(select(Report.status)))
        provincial = session.exec(select(func.count()).select_from(ProvincialReport)).one()
    assert done and all((str(i.id), users[i.completed_by_id]) in audited for i in done)
    assert all(users[i.completed_by_id] == f"staff-{i.district_code}" for i in done)
    assert actions["user.create"] == dataset.result.users
    assert actions["report.accept"] == reports["accepted"]
    assert actions["report.return"] >= reports["returned"]
    assert actions["report.save"] >= sum(reports.values())
    assert actions["report.photo.add"] == dataset.result.photos
    assert actions["provincial_report.submit"] == provincial
    assert actions["directive.launch_national"] == 1 and actions["directive.addition"] == 1


def test_nothing_happens_after_as_of_or_before_the_directive_was_issued(dataset):
    issued = datetime.combine(NATIONAL.issued_on, time(0, 0), tzinfo=BANGKOK)
    with Session(dataset.engine) as session:
        spans = [session.exec(select(func.min(column), func.max(column))).one() for column in (
            AuditEntry.at, TrackedItem.completed_at, OutboxMessage.created_at, OutboxMessage.sent_at,
            Report.updated_at, ProvincialReport.submitted_at)]
    assert spans[0][0] is not None  # the audit log is never empty; other tables may be, by chance
    assert all(first is None or issued <= first and last <= AS_OF for first, last in spans), spans


def test_steps_are_marked_done_in_office_hours_on_working_days(dataset):
    """The directive's office hours and working days; the report step is left out (submitting
    the form completes it, at whatever time the form is sent)."""
    hours, calendar = NATIONAL.office_hours, NATIONAL.work_calendar()
    with Session(dataset.engine) as session:
        done = session.exec(select(TrackedItem.completed_at).join(
            DirectiveStep, DirectiveStep.id == TrackedItem.step_id).where(
            TrackedItem.status == ItemStatus.DONE, DirectiveStep.code != NATIONAL.form.report_step)).all()
    local = [at.astimezone(BANGKOK) for at in done]
    assert local
    assert [at for at in local if not calendar.is_working_day(at.date())
            or not hours.start <= at.time() <= hours.end] == []


def test_a_second_run_refuses_in_thai_and_english_or_does_nothing_when_told(dataset):
    with Session(dataset.engine) as session:
        before = session.exec(select(func.count()).select_from(AuditEntry)).one()
    with pytest.raises(Conflict) as refused:
        generate(dataset.engine, provinces=PROVINCES, seed=SEED, as_of=AS_OF, photos=None)
    assert SLUG in refused.value.message_en and "ไม่มีการเปลี่ยนแปลง" in refused.value.message_th
    assert generate(dataset.engine, provinces=["27"], seed=1, as_of=AS_OF, photos=None,
                    exist_ok=True) is None
    with Session(dataset.engine) as session:
        assert session.exec(select(func.count()).select_from(AuditEntry)).one() == before


# --- a plan made by hand: the writer carries out every outcome ------------------------------------
# The generator's plans are replaced by one written here, so that every report status, every step
# timing and every provincial outcome is present whatever the random number generator does, and
# each count below is worked out by hand from the plan.

def bangkok(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00+07:00").astimezone(UTC)


def content_for(code: str, spec) -> dict:
    """A valid form (the generator's own words; its validity is checked on the dataset above)."""
    return dataset_module.report_content(random.Random(code), spec, ["ทดสอบ"])


def report_story(code: str, spec, *outcome: str) -> list[Event]:
    """Draft with a photo per session on Thu 1 Aug; with any ``outcome``, submitted on Fri 2 Aug,
    then "accept" (Wed 7 Aug), or "return" (Mon 5 Aug) and maybe "resubmit" (Tue 6 Aug) and
    "accept"; "submit" alone leaves it waiting for review."""
    content = content_for(code, spec)
    events = [Event(bangkok("2024-08-01", "09:30"), 0, "draft", code, content=content)]
    events += [Event(bangkok("2024-08-01", "09:40") + timedelta(minutes=n), 1 + n, "photo", code,
                     session_key=entry["key"], picture=n % 6, text=f"IMG_{n}.jpg")
               for n, entry in enumerate(content["sessions"])]
    if not outcome:
        return events
    events.append(Event(bangkok("2024-08-02", "10:00"), len(events), "submit", code))
    if "return" in outcome:
        events.append(Event(bangkok("2024-08-05", "10:00"), len(events), "return", code,
                            text="ขอให้ระบุผลที่ได้รับเพิ่มเติม"))
    if "resubmit" in outcome:
        revised = {**content, "outcomes": [*content["outcomes"], "แก้ไขแล้ว"]}
        events.append(Event(bangkok("2024-08-06", "10:00"), len(events), "draft", code, content=revised))
        events.append(Event(bangkok("2024-08-06", "10:20"), len(events), "submit", code))
    if "accept" in outcome:
        events.append(Event(bangkok("2024-08-07", "10:00"), len(events), "accept", code))
    return events


def step_done(code: str, step: str, day: str) -> Event:
    return Event(bangkok(day, "10:00"), 0, "done", code, step=step)


# G1 is due Wed 17 Jul, R1 Fri 9 Aug; the Department's due day is Thu 15 Aug; AS_OF Fri 23 Aug.
HANDMADE = {
    "2701": (Pace.EARLY, lambda spec: [step_done("2701", "G1", "2024-07-16"),
                                       *report_story("2701", spec, "accept")]),
    "2702": (Pace.ON_TIME, lambda spec: report_story("2702", spec, "submit")),
    "2703": (Pace.LATE, lambda spec: report_story("2703", spec, "return")),
    "2704": (Pace.LATE, lambda spec: report_story("2704", spec)),
    "2705": (Pace.ON_TIME, lambda spec: report_story("2705", spec, "return", "resubmit", "accept")),
    "2706": (Pace.LATE, lambda spec: [step_done("2706", "G1", "2024-07-19")]),
    "2707": (Pace.ON_TIME, lambda spec: [step_done("2707", "G1", "2024-07-17")]),
    "2708": (Pace.EARLY, lambda spec: [step_done("2708", "G2", "2024-08-26")]),  # after AS_OF
    "7501": (Pace.EARLY, lambda spec: report_story("7501", spec, "accept")),
}
PROVINCIAL_SENT = {"27": bangkok("2024-08-14", "10:00"),   # on time
                   "75": bangkok("2024-08-20", "10:00")}   # late; 26 sends none


def handmade_plan(seed, district_code, spec, clock, tambons) -> DistrictPlan:
    pace, story = HANDMADE.get(district_code, (Pace.NEVER, lambda spec: []))
    return DistrictPlan(district_code, pace, tuple(story(spec)))


def handmade_provincial(seed, province_code, department_due, clock, plans) -> Event | None:
    at = PROVINCIAL_SENT.get(province_code)
    return Event(at, 0, "provincial", None) if at else None


def test_the_writer_carries_out_a_plan_with_every_outcome(build, monkeypatch):
    monkeypatch.setattr(dataset_module, "plan_district", handmade_plan)
    monkeypatch.setattr(dataset_module, "plan_provincial_report", handmade_provincial)
    built = build(["27", "75", "26"], SEED, photos=False)  # 9 + 3 + 4 districts
    result = built.result

    assert (result.provinces, result.districts, result.items) == (3, 16, 16 * 12)
    assert result.paces == {"early": 3, "on-time": 3, "late": 3, "never": 7}
    assert result.reports == {"accepted": 3, "submitted": 1, "returned": 1, "draft": 1, "none": 10}
    # G1: 2701 early, 2707 on the day, 2706 late; R1 done by the submissions of 2701, 2702, 2705
    # (again after its return) and 7501, all before 9 Aug; 2703's return opened R1 again.
    # A3 is done too, from each submitted report (form.proves), late: after 31 July.
    assert (result.done_on_time, result.done_late) == (6, 6)
    assert (result.provincial_on_time, result.provincial_late) == (1, 1)
    photos = sum(e.action == "photo" for _, story in HANDMADE.values() for e in story(NATIONAL))
    assert result.photos == photos > 0

    with Session(built.engine) as session:
        users = dict(session.exec(select(User.id, User.username)).all())
        items = {(d, code): (status, at, users.get(by)) for d, code, status, at, by in session.exec(
            select(TrackedItem.district_code, DirectiveStep.code, TrackedItem.status,
                   TrackedItem.completed_at, TrackedItem.completed_by_id)
            .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id))}
        reports = {r.district_code: r for r in session.exec(select(Report))}
        actions = Counter(session.exec(select(AuditEntry.action)))
    assert {d: str(r.status) for d, r in reports.items()} == {
        "2701": "accepted", "2702": "submitted", "2703": "returned", "2704": "draft",
        "2705": "accepted", "7501": "accepted"}
    assert items["2701", "G1"] == (ItemStatus.DONE, bangkok("2024-07-16", "10:00"), "staff-2701")
    assert items["2706", "G1"] == (ItemStatus.DONE, bangkok("2024-07-19", "10:00"), "staff-2706")
    assert items["2707", "G1"] == (ItemStatus.DONE, bangkok("2024-07-17", "10:00"), "staff-2707")
    assert items["2708", "G2"][0] == ItemStatus.OPEN  # planned after AS_OF: not done
    assert items["2705", "R1"] == (ItemStatus.DONE, bangkok("2024-08-06", "10:20"), "staff-2705")
    assert [items[d, "R1"][0] for d in ("2703", "2704", "2709")] == [ItemStatus.OPEN] * 3
    # 7 marked or completed by a submission, and A3 from each of the 5 reports that proved it
    assert sum(status == ItemStatus.DONE for status, _, _ in items.values()) == 12
    assert reports["2705"].content["outcomes"][-1] == "แก้ไขแล้ว"  # the corrected form
    assert reports["2701"].content == content_for("2701", NATIONAL.for_province("27"))
    assert (actions["report.save"], actions["report.submit"], actions["report.return"],
            actions["report.accept"], actions["provincial_report.submit"]) == (7, 6, 2, 3, 2)
    assert (actions["item.done"], actions["item.reopen"]) == (3 + 6 + 5, 2)  # + 5 A3 proofs
    assert actions["report.photo.add"] == photos


# --- the plan, without a database ----------------------------------------------------------------

def country_plans(seed: int) -> tuple[OfficeDays, list[DistrictPlan], list[Event | None]]:
    """Every district's plan and every province's report to the Department, for the country."""
    clock_ = OfficeDays.of(NATIONAL, BANGKOK, launch_instant(NATIONAL, AS_OF, BANGKOK))
    plans, provincial = [], []
    for province in geothai.provinces():
        if province.code == "10":
            continue
        spec = NATIONAL.for_province(province.code)
        ours = [plan_district(seed, d.code, spec, clock_, ["ทดสอบ"])
                for d in geothai.districts(province.code)]
        plans += ours
        provincial.append(plan_provincial_report(seed, province.code, spec.department_due, clock_, ours))
    return clock_, plans, provincial


# What a report is once its events up to AS_OF have happened; no report event: "none".
STATUS_AFTER = {"draft": "draft", "photo": "draft", "submit": "submitted", "return": "returned",
                "accept": "accepted"}
# The report's lifecycle (tidtam.app.reporting): which event may come in which state.
ALLOWED = {"draft": {"none", "draft", "returned"}, "photo": {"draft", "returned"},
           "submit": {"draft", "returned"}, "return": {"submitted"}, "accept": {"submitted"}}


def test_the_paces_of_the_countrys_districts_follow_the_weights():
    _, plans, _ = country_plans(SEED)
    shares = Counter(p.pace for p in plans)
    assert len(plans) == 878
    for pace, weight in PACES.items():
        assert abs(shares[pace] / len(plans) - weight / 100) < 0.05, shares


def test_every_plan_keeps_the_rules_and_the_country_shows_every_outcome():
    """878 districts under one seed: each story is one the product allows, and together they
    hold every pace, step timing, report status and provincial outcome (any seed would: a missing
    one means the generator can no longer make it)."""
    clock_, plans, provincial = country_plans(SEED)
    due = {step.code: step.due_on for step in NATIONAL.steps}
    timings, statuses = Counter(), Counter()
    for plan in plans:
        assert all(e.at >= clock_.launched for e in plan.events), plan.district
        if plan.pace == Pace.NEVER:
            assert plan.events == (), plan.district
        steps = [e for e in plan.events if e.action == "done"]
        assert len({e.step for e in steps}) == len(steps) and {e.step for e in steps} <= set(due)
        assert NATIONAL.form.report_step not in {e.step for e in steps}
        for e in steps:
            local = e.at.astimezone(BANGKOK)
            assert clock_.calendar.is_working_day(local.date()), e
            assert NATIONAL.office_hours.start <= local.time() <= NATIONAL.office_hours.end, e
            timings[(local.date() > due[e.step]) - (local.date() < due[e.step])] += 1
        report = [e for e in plan.events if e.action != "done"]
        assert [e.at for e in report] == sorted(e.at for e in report), plan.district
        state = "none"
        for e in report:
            assert state in ALLOWED[e.action], (plan.district, e.action, state)
            state = STATUS_AFTER[e.action]
        happened = [e for e in report if e.at <= AS_OF]
        statuses[STATUS_AFTER[happened[-1].action] if happened else "none"] += 1
    assert set(Counter(p.pace for p in plans)) == set(Pace)
    assert set(timings) == {-1, 0, 1}, timings  # early, on the due day, late
    assert set(statuses) == {"none", "draft", "submitted", "returned", "accepted"}, statuses
    sent = [e.at.astimezone(BANGKOK).date() for e in provincial if e is not None]
    assert provincial.count(None) and any(d <= NATIONAL.department_due for d in sent) and any(
        d > NATIONAL.department_due for d in sent)


# --- the command -------------------------------------------------------------------------------

def test_the_command_prints_the_summary_and_refuses_a_second_run(tmp_path, monkeypatch):
    from tidtam.cli import app
    from tidtam.infra.settings import get_settings

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("TIDTAM_DATABASE_URL", url)
    monkeypatch.setenv("TIDTAM_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        args = ["demo-data", "--provinces", "27", "--seed", "3", "--as-of", "2024-08-01T10:00:00+07:00"]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        assert "provinces 1, districts 9, users 21" in first.output
        photos = int(re.search(r"; photos (\d+)", first.output).group(1))
        folder = tmp_path / "photos"
        originals = list(folder.rglob("*.original.*")) if folder.exists() else []
        assert len(originals) == photos  # one original per photo row, written where the settings say
        again = runner.invoke(app, args)
        assert again.exit_code == 1 and "ข้อผิดพลาด" in again.output and SLUG in again.output
        told = runner.invoke(app, [*args, "--exist-ok"])
        assert told.exit_code == 0 and "nothing changed" in told.output
        bad = runner.invoke(app, ["demo-data", "--as-of", "2024-08-01 10:00"])
        assert bad.exit_code == 2 and "timezone" in bad.output
    finally:
        get_settings.cache_clear()
        db.engine_for(url).dispose()


# --- the whole country ---------------------------------------------------------------------------
# The whole story for 878 districts takes some 80 s of CPU (see the module's report), too slow
# for the suite: this run stops at the launch, 09:00 on the issue day, so only the set-up and one
# sweep happen.

def test_all_provinces_without_photos_at_the_launch():
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as folder:
        engine = db.engine_for(f"sqlite:///{folder}/national.db")
        result = generate(engine, provinces=[p.code for p in geothai.provinces() if p.code != "10"],
                          seed=SEED, as_of=datetime(2024, 7, 12, 2, 0, tzinfo=UTC), photos=None)
        engine.dispose()
    assert (result.provinces, result.districts, result.items) == (76, 878, 10_536 + 25)
    assert result.users == 1 + 76 * 2 + 878 * 2
    assert result.done_on_time + result.done_late == 0 and result.reports["none"] == 878
