"""The Sa Kaeo demo of `tidtam init --demo` (`make run`): two letters followed side by side, with
progress in both, and the Department's login; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from domain.access import Role
from domain.directive import load_directive
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemStatus,
    TrackedItem,
    active_directives,
)
from models.user import User, get_by_username
from tests.conftest import NOW, make_database
from tidtam.app.accounts import authenticate
from tidtam.demo.province import (
    DEMO_PASSWORD,
    DEMO_PROGRESS,
    FOLLOW_UP_PROGRESS,
    FOLLOW_UP_SLUG,
)
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, DEMO_FOLLOW_UPS, initialise

BANGKOK = ZoneInfo("Asia/Bangkok")
FIRST = load_directive(DEFAULT_DIRECTIVE)
SECOND = load_directive(DEMO_FOLLOW_UPS[0])
DEMO_NOW = datetime(2024, 8, 6, 9, 0, tzinfo=BANGKOK)  # make run's clock starts here


def done_codes(session: Session, slug: str) -> dict[str, set[str]]:
    """Per district, the codes of the steps marked done."""
    rows = session.exec(
        select(TrackedItem.district_code, DirectiveStep.code)
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .join(Directive, Directive.id == TrackedItem.directive_id)
        .where(Directive.slug == slug, TrackedItem.status == ItemStatus.DONE)
        .order_by(TrackedItem.district_code, DirectiveStep.order)).all()
    found: dict[str, set[str]] = {}
    for district, code in rows:
        found.setdefault(district, set()).add(code)
    return found


def test_the_demo_follows_two_sakaeo_letters_with_progress_in_both(fresh_engine):
    result = initialise(fresh_engine, demo=True, now=NOW, follow_ups=DEMO_FOLLOW_UPS)

    assert (result.directive.slug, result.items, result.demo_done) == \
        (FIRST.slug, 9 * 12, sum(map(len, DEMO_PROGRESS.values())))
    [follow_up] = result.follow_ups
    assert (follow_up.directive.slug, follow_up.items, follow_up.done) == \
        (FOLLOW_UP_SLUG, 9 * 5, sum(map(len, FOLLOW_UP_PROGRESS.values())))
    with Session(fresh_engine) as session:
        assert [d.slug for d in active_directives(session, "27")] == [SECOND.slug, FIRST.slug]
        # The first letter's demo data exactly as before the second letter came.
        assert done_codes(session, FIRST.slug) == {d: set(c) for d, c in DEMO_PROGRESS.items() if c}
        assert done_codes(session, SECOND.slug) == {d: set(c) for d, c in FOLLOW_UP_PROGRESS.items()}
        second = session.exec(select(Directive).where(Directive.slug == SECOND.slug)).one()
        assert second.status == DirectiveStatus.ACTIVE
        assert second.launched_at == datetime(2024, 7, 26, 3, 0, tzinfo=UTC)
        marked = session.exec(select(TrackedItem.completed_at, User.username)
                              .join(User, User.id == TrackedItem.completed_by_id)
                              .where(TrackedItem.directive_id == second.id)).all()
        assert all(second.launched_at < at < DEMO_NOW for at, _ in marked)
        assert all(at.astimezone(BANGKOK).weekday() < 5 for at, _ in marked)  # office days
        assert {name for _, name in marked} == {f"staff-{d}" for d in FOLLOW_UP_PROGRESS}
        # staff-2703 owes steps of both letters (the "my work" page shows both).
        owed = session.exec(select(TrackedItem.directive_id).where(
            TrackedItem.district_code == "2703", TrackedItem.status == ItemStatus.OPEN)).all()
        assert set(owed) == {result.directive.id, second.id}


def test_the_second_letter_overlaps_the_first_in_august_and_closes_itself():
    first_august = {s.due_on for s in FIRST.steps if s.due_on.month == 8}
    second_days = {s.due_on for s in SECOND.steps}
    assert first_august & second_days  # e.g. 9 Aug: the first letter's report, S3
    assert date(2024, 7, 25) <= SECOND.issued_on <= date(2024, 8, 5)
    assert 4 <= len(SECOND.steps) <= 5 and SECOND.province_code == "27"
    assert SECOND.closes_on() == date(2024, 9, 6)


def test_the_department_logs_in_with_the_demo_password(fresh_engine):
    result = initialise(fresh_engine, demo=True, now=NOW)

    assert "department" in result.demo_users
    with Session(fresh_engine) as session:
        department = get_by_username(session, "department")
        assert (department.role, department.province_code, department.district_code) == \
            (Role.DEPARTMENT_VIEWER, None, None)
        assert authenticate(session, "department", DEMO_PASSWORD) is not None


def test_without_follow_ups_the_demo_is_the_one_letter_the_tests_build_on(fresh_engine):
    result = initialise(fresh_engine, demo=True, now=NOW)
    assert result.follow_ups == []
    with Session(fresh_engine) as session:
        assert [d.slug for d in active_directives(session, "27")] == [FIRST.slug]


def test_make_runs_init_lists_both_letters_and_the_department_login(tmp_path, tmp_path_factory):
    """`make run` runs `tidtam init --demo --follow-up --exist-ok --now 2024-07-12T10:00:00+07:00`."""
    url, drop = make_database("sqlite", tmp_path_factory)
    env = dict(os.environ, TIDTAM_DATA_DIR=str(tmp_path), TIDTAM_DATABASE_URL=url, TIDTAM_DEMO="1",
               PREFECT_API_URL="http://127.0.0.1:9/api")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tidtam.cli", "init", "--demo", "--follow-up", "--exist-ok",
             "--now", "2024-07-12T10:00:00+07:00"],
            env=env, capture_output=True, text=True, timeout=180, check=True,
            cwd=Path(__file__).parents[2]).stdout
    finally:
        drop()
    assert f"directive {FIRST.reference_no}: 108 tracked items" in out
    assert f"directive {SECOND.reference_no} ({SECOND.slug}): 45 tracked items, 6 steps done" in out
    accounts = next(line for line in out.splitlines() if line.startswith("demo accounts:"))
    assert "department" in accounts.split(": ", 1)[1].split(", ")
    assert "national board" in out and DEMO_PASSWORD in out
