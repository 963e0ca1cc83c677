"""The Department's directive in two provinces, Chiang Mai's additions, the provincial report to
the Department and the national board's rates, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.access import Role
from domain.directive import DirectiveError, load_directive
from domain.errors import Forbidden, InvalidInput, NotFound
from domain.national import load_addition, parse_addition
from domain.rates import Rate
from models.audit import AuditEntry, entries_for
from models.directive import (
    Directive,
    directives_of,
    find_item,
    get_directive_by_slug,
    items_of,
    steps_of,
)
from models.user import get_by_username
from tests.conftest import NOW
from tests.db.test_reporting import accepted, sakaeo
from tidtam.app.accounts import ensure_user
from tidtam.app.national import (
    apply_addition,
    launch_national,
    national_board,
    submit_provincial_report,
)
from tidtam.app.orgtree import load_provinces
from tidtam.app.tracking import launch_directive, mark_done, waive
from tidtam.demo.province import create_demo_accounts
from tidtam.infra.photos import PhotoStore

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "directives" / "fy2567-national-volunteer-centers.yaml"
CHIANG_MAI = ROOT / "directives" / "additions" / "fy2567-national-volunteer-centers-50.yaml"
BANGKOK = ZoneInfo("Asia/Bangkok")
SLUG = "fy2567-national-volunteer-centers"


def bkk(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=BANGKOK).astimezone(UTC)


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


@pytest.fixture
def country(session):
    """Sa Kaeo (9 districts) and Chiang Mai (25) with the Department's directive launched."""
    load_provinces(session, ["27", "50"])
    create_demo_accounts(session, NOW)
    for username, role, province, district in (
            ("coordinator-50", Role.COORDINATOR, "50", None),
            ("staff-5001", Role.DISTRICT_STAFF, "50", "5001"),
            ("staff-5002", Role.DISTRICT_STAFF, "50", "5002"),
            ("department", Role.DEPARTMENT_VIEWER, None, None)):
        ensure_user(session, username=username, full_name=username, role=role,
                    province_code=province, district_code=district, password_hash="x", now=NOW)
    result = launch_national(session, load_directive(NATIONAL), now=NOW)
    return result


def test_each_province_gets_its_own_copy_with_items_per_district(session, country):
    assert (country.created_directive, country.provinces, country.created_items) == \
        (True, 2, (9 + 25) * 12)
    national = country.directive
    assert national.province_code is None and national.parent_id is None
    assert items_of(session, national.id) == [] and len(steps_of(session, national.id)) == 12
    [sakaeo] = directives_of(session, "27")
    assert (sakaeo.slug, sakaeo.parent_id, sakaeo.province_code) == (f"{SLUG}-p27", national.id, "27")
    assert len(items_of(session, sakaeo.id)) == 9 * 12
    assert all(d.province_code for d in directives_of(session))  # never the national row
    again = launch_national(session, load_directive(NATIONAL), now=NOW)
    assert (again.created_directive, again.created_items) == (False, 0)
    actions = [e.action for e in entries_for(session, "directive", national.id)]
    assert actions == ["directive.launch_national"]


def test_a_province_loaded_later_gets_its_copy_on_the_next_launch(session, country):
    load_provinces(session, ["96"])  # Narathiwat: 13 districts
    again = launch_national(session, load_directive(NATIONAL), now=NOW)
    assert (again.provinces, again.created_items) == (3, 13 * 12)
    assert get_directive_by_slug(session, f"{SLUG}-p96").parent_id == country.directive.id


def test_chiang_mai_addition_adds_a_step_and_moves_open_items_only(session, country):
    copy = get_directive_by_slug(session, f"{SLUG}-p50")
    staff = get_by_username(session, "staff-5001")
    g1_done = find_item(session, copy.id, "5001", "G1")
    mark_done(session, staff, g1_done.id, now=bkk(7, 15))
    result = apply_addition(session, load_addition(CHIANG_MAI), now=NOW, source="cm.yaml")
    assert result.added_steps == ["P1"] and result.created_items == 25
    assert result.moved_steps == {"G1": (date(2024, 7, 17), date(2024, 7, 16)),
                                  "A1": (date(2024, 7, 17), date(2024, 7, 16)),
                                  "G8": (date(2024, 8, 9), date(2024, 8, 8)),
                                  "R1": (date(2024, 8, 9), date(2024, 8, 8))}
    assert find_item(session, copy.id, "5002", "G1").due_on == date(2024, 7, 16)
    assert find_item(session, copy.id, "5001", "G1").due_on == date(2024, 7, 17)  # done: kept
    assert find_item(session, copy.id, "5001", "P1").due_on == date(2024, 8, 2)
    session.refresh(copy)
    assert copy.province_due == date(2024, 8, 8) and copy.definition["province_due"] == "2024-08-08"
    assert copy.issuer_th == "สำนักงานพัฒนาชุมชนจังหวัดเชียงใหม่"
    sakaeo = get_directive_by_slug(session, f"{SLUG}-p27")
    assert find_item(session, sakaeo.id, "2701", "G1").due_on == date(2024, 7, 17)  # untouched
    entry = entries_for(session, "directive", copy.id)[-1]
    assert entry.action == "directive.addition" and entry.after["added_steps"] == ["P1"]
    again = apply_addition(session, load_addition(CHIANG_MAI), now=NOW)
    assert (again.added_steps, again.moved_steps, again.created_items) == ([], {}, 0)
    assert [e.action for e in entries_for(session, "directive", copy.id)].count(
        "directive.addition") == 1
    # A relaunch of the Department's file keeps the province's addition.
    launch_national(session, load_directive(NATIONAL), now=NOW)
    assert find_item(session, copy.id, "5002", "G1").due_on == date(2024, 7, 16)


def test_bad_additions_change_nothing(session, country):
    copy = get_directive_by_slug(session, f"{SLUG}-p50")
    before = [(i.id, i.due_on) for i in items_of(session, copy.id)]
    later = parse_addition(f'extends: {SLUG}\nprovince_code: "50"\ndue_dates:\n  G1: 2024-07-30\n',
                           "late.yaml")
    with pytest.raises(DirectiveError, match="late.yaml: due_dates.G1: .*later than"):
        apply_addition(session, later, now=NOW, source="late.yaml")
    unknown = parse_addition('extends: no-such-directive\nprovince_code: "50"\n', "u.yaml")
    with pytest.raises(NotFound, match="no national directive"):
        apply_addition(session, unknown, now=NOW)
    elsewhere = parse_addition(f'extends: {SLUG}\nprovince_code: "96"\n', "n.yaml")
    with pytest.raises(NotFound, match="no copy"):
        apply_addition(session, elsewhere, now=NOW)
    assert [(i.id, i.due_on) for i in items_of(session, copy.id)] == before
    with pytest.raises(InvalidInput, match="is national"):
        launch_directive(session, load_directive(NATIONAL), now=NOW)


def test_the_province_sends_its_compiled_report_to_the_department(session, country, store):
    accepted(session, store, "2706")
    coordinator = get_by_username(session, "coordinator")
    first = submit_provincial_report(session, coordinator, directive=sakaeo(session), now=bkk(8, 14),
                                     note="รอบแรก")
    assert (first.province_code, first.version, first.districts_accepted,
            first.districts_expected) == ("27", 1, 1, 9)
    assert first.summary["totals"]["total_participants"] == 3 * 23
    assert [m["code"] for m in first.summary["missing"]][:2] == ["2701", "2702"]
    accepted(session, store, "2701")
    again = submit_provincial_report(session, get_by_username(session, "province-head"),
                                     directive=sakaeo(session), now=bkk(8, 16))
    assert (again.id, again.version, again.districts_accepted) == (first.id, 2, 2)
    assert again.first_submitted_at == bkk(8, 14) and again.submitted_at == bkk(8, 16)
    log = entries_for(session, "provincial_report", first.id)
    assert [e.action for e in log] == ["provincial_report.submit"] * 2
    assert log[1].before == {"version": 1, "districts_accepted": 1}


def test_only_a_province_with_an_accepted_report_sends(session, country, store):
    for username in ("staff-2701", "head-2701", "department"):
        with pytest.raises(Forbidden):
            submit_provincial_report(session, get_by_username(session, username),
                                     directive=sakaeo(session), now=NOW)
    with pytest.raises(InvalidInput, match="no district report has been accepted"):
        submit_provincial_report(session, get_by_username(session, "coordinator-50"),
                                 directive=get_directive_by_slug(session, f"{SLUG}-p50"), now=NOW)
    assert session.exec(select(AuditEntry).where(
        AuditEntry.action == "provincial_report.submit")).all() == []


def test_the_national_board_counts_rates_against_the_departments_dates(session, country, store):
    apply_addition(session, load_addition(CHIANG_MAI), now=NOW)
    sakaeo = get_directive_by_slug(session, f"{SLUG}-p27")
    chiang_mai = get_directive_by_slug(session, f"{SLUG}-p50")

    def done(directive: Directive, district: str, step: str, at: datetime) -> None:
        item = find_item(session, directive.id, district, step)
        mark_done(session, get_by_username(session, f"staff-{district}"), item.id, now=at)

    done(sakaeo, "2701", "G1", bkk(7, 16))             # due 17 Jul: on time
    done(sakaeo, "2702", "G1", bkk(7, 18))             # late
    done(chiang_mai, "5001", "G1", bkk(7, 16, 12))     # on time
    done(chiang_mai, "5002", "G1", bkk(7, 17, 15))     # late for Chiang Mai, on time nationally
    done(chiang_mai, "5001", "P1", bkk(7, 20))         # Chiang Mai's own step: not a column
    accepted(session, store, "2706")                   # R1 and A3 (its proof) done, 16 Jul
    submit_provincial_report(session, get_by_username(session, "coordinator"), directive=sakaeo,
                             now=bkk(8, 15, 16))

    department = get_by_username(session, "department")
    board = national_board(session, department, None, date(2024, 8, 20), BANGKOK)
    assert [s.code for s in board.steps][:3] == ["G1", "G2", "G3"] and len(board.steps) == 12
    rows = {r.province.code: r for r in board.rows}
    assert list(rows) == ["27", "50"]
    assert rows["27"].cells["G1"] == Rate(expected=9, actual=2, on_time=1, overdue=7)
    assert rows["50"].cells["G1"] == Rate(expected=25, actual=2, on_time=2, overdue=23)
    assert rows["27"].cells["R1"] == Rate(9, 1, 1, 8)
    assert rows["27"].overall == Rate(108, 4, 3, 104)  # + A3, proved by 2706's report
    assert rows["50"].overall == Rate(300, 2, 2, 298)
    assert board.column("G1") == Rate(34, 4, 3, 30)
    assert rows["27"].report_rate == Rate(1, 1, 1, 0) and rows["27"].report.districts_accepted == 1
    assert rows["50"].report is None and rows["50"].report_rate == Rate(1, 0, 0, 1)
    assert board.reports == Rate(2, 1, 1, 1)
    early = national_board(session, department, SLUG, date(2024, 7, 16), BANGKOK)
    assert {r.province.code: r.cells["G1"].overdue for r in early.rows} == {"27": 0, "50": 0}
    for username in ("coordinator", "coordinator-50", "staff-2701"):
        with pytest.raises(Forbidden):
            national_board(session, get_by_username(session, username), None, NOW.date(), BANGKOK)
    with pytest.raises(NotFound):
        national_board(session, department, f"{SLUG}-p27", NOW.date(), BANGKOK)


def test_a_waived_step_counts_as_actual_and_on_time_even_waived_after_its_due_date(session, country):
    """domain.rates: a waived item is actual, and on time (it has no completion time: nothing was
    due from the district), however late the coordinator waives it."""
    sakaeo = get_directive_by_slug(session, f"{SLUG}-p27")
    coordinator = get_by_username(session, "coordinator")
    mark_done(session, get_by_username(session, "staff-2701"),
              find_item(session, sakaeo.id, "2701", "G1").id, now=bkk(7, 16))   # on time
    waive(session, coordinator, find_item(session, sakaeo.id, "2703", "G1").id,
          reason="ไม่มีศูนย์ฯ ในอำเภอ", now=bkk(7, 25))                            # after 17 Jul
    board = national_board(session, get_by_username(session, "department"), SLUG,
                           date(2024, 8, 20), BANGKOK)
    rows = {r.province.code: r for r in board.rows}
    assert rows["27"].cells["G1"] == Rate(expected=9, actual=2, on_time=2, overdue=7)
    assert rows["27"].cells["G2"] == Rate(9, 0, 0, 9)
