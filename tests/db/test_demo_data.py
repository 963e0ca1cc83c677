"""`tidtam demo-data`: a seeded national dataset, written through the use cases, on SQLite and
PostgreSQL. Three provinces keep it quick: Sa Kaeo (27), Chiang Mai (50, with its addition) and
Narathiwat (96); one run covers the whole country without photos."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import geothai
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from domain.access import Role
from domain.directive import load_directive
from domain.errors import Conflict
from domain.report import check_report
from models.audit import AuditEntry
from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem
from models.org import District
from models.outbox import OutboxMessage, OutboxStatus
from models.report import ProvincialReport, Report, ReportPhoto, photo_counts
from models.user import User
from tests.conftest import make_database
from tidtam.app.accounts import authenticate
from tidtam.app.reporting import spec_of
from tidtam.demo.dataset import (
    BANGKOK,
    NATIONAL_DIRECTIVE,
    PACES,
    DemoDataResult,
    OfficeDays,
    Pace,
    generate,
    launch_instant,
    plan_district,
)
from tidtam.demo.province import DEMO_PASSWORD, demo_line_id
from tidtam.infra import db
from tidtam.infra.photos import PhotoStore

PROVINCES = ["27", "50", "96"]
SEED = 8  # chosen so three provinces show every report status and every provincial outcome
AS_OF = datetime(2024, 8, 23, 3, 0, tzinfo=UTC)  # 10:00 Bangkok, a week after the Department's due day
SLUG = "fy2567-national-volunteer-centers"


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


def test_the_mix_holds_every_pace_timing_and_status(dataset):
    result = dataset.result
    assert set(result.paces) == {str(p) for p in Pace} and all(result.paces.values())
    assert all(result.reports[s] for s in ("accepted", "submitted", "returned", "draft", "none")), \
        result.reports
    assert result.provincial_on_time and result.provincial_late
    assert result.provincial_on_time + result.provincial_late < 3  # and one province sent none
    with Session(dataset.engine) as session:
        done = session.exec(select(TrackedItem.due_on, TrackedItem.completed_at)
                            .where(TrackedItem.status == ItemStatus.DONE)).all()
        idle = session.exec(select(func.count()).select_from(District).where(
            col(District.code).not_in(select(TrackedItem.district_code)
                                      .where(TrackedItem.status == ItemStatus.DONE)))).one()
    days = Counter((at.astimezone(BANGKOK).date() > due) - (at.astimezone(BANGKOK).date() < due)
                   for due, at in done)
    assert days[-1] and days[0] and days[1], days  # early, on the due day, late
    assert idle >= result.paces["never"]
    assert result.done_on_time == days[-1] + days[0] and result.done_late == days[1]


def test_the_outbox_has_sent_and_queued_rows_from_the_sweeps(dataset):
    outbox = dataset.result.outbox
    assert outbox.get("sent") and outbox.get("queued"), outbox
    with Session(dataset.engine) as session:
        rungs = set(session.exec(select(OutboxMessage.rung).distinct()))
        sent = session.exec(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENT)
                            .limit(1)).one()
    assert {"reminder-3", "overdue"} <= rungs
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
    assert actions["report.return"] >= reports["returned"] >= 1
    assert actions["report.save"] >= sum(reports.values())
    assert actions["report.photo.add"] == dataset.result.photos
    assert actions["provincial_report.submit"] == provincial >= 1
    assert actions["directive.launch_national"] == 1 and actions["directive.addition"] == 1


def test_nothing_happens_after_as_of(dataset):
    with Session(dataset.engine) as session:
        latest = [session.exec(select(func.max(column))).one() for column in (
            AuditEntry.at, TrackedItem.completed_at, OutboxMessage.created_at, OutboxMessage.sent_at,
            Report.updated_at, ProvincialReport.submitted_at)]
    assert all(at is not None and at <= AS_OF for at in latest), latest


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


# --- the plan, without a database ----------------------------------------------------------------

def test_the_paces_of_the_countrys_districts_follow_the_weights():
    spec = load_directive(NATIONAL_DIRECTIVE)
    clock_ = OfficeDays.of(spec, BANGKOK, launch_instant(spec, AS_OF, BANGKOK))
    codes = [d.code for p in geothai.provinces() if p.code != "10" for d in geothai.districts(p.code)]
    plans = [plan_district(SEED, code, spec.for_province(code[:2]), clock_, ["ทดสอบ"]) for code in codes]
    shares = Counter(p.pace for p in plans)
    assert len(plans) == 878
    for pace, weight in PACES.items():
        assert abs(shares[pace] / len(plans) - weight / 100) < 0.05, shares
    for plan in plans:
        report = [e for e in plan.events if e.action != "done"]
        assert [e.at for e in report] == sorted(e.at for e in report)
        assert all(e.at >= clock_.launched for e in plan.events)


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
        assert any(p.suffix == ".jpg" for p in (tmp_path / "photos").iterdir())
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
