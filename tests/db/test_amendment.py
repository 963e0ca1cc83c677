"""Amended letters on SQLite and PostgreSQL: launching a higher revision of a launched YAML applies
exactly the difference, audited once; a change that would lose recorded work changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import select

from domain.directive import DirectiveSpec, load_directive
from domain.errors import Conflict
from models.audit import AuditEntry, entries_for
from models.directive import (
    Directive,
    ItemStatus,
    TrackedItem,
    find_item,
    get_directive_by_slug,
    items_of,
    steps_of,
)
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue, to_people
from models.report import Report, insert_report
from models.user import get_by_username
from tests.conftest import NOW
from tidtam.app.amendment import amend_directive
from tidtam.app.directives import close_directive
from tidtam.app.tracking import launch_directive, mark_done, waive
from tidtam.infra.paths import DIRECTIVES
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

SA_KAEO = load_directive(DEFAULT_DIRECTIVE)
NATIONAL = load_directive(DIRECTIVES / "fy2567-national-volunteer-centers.yaml")
LATER = NOW + timedelta(days=3)


def amended(spec: DirectiveSpec, *changes: Callable[[dict], None],
            revision: int | None = None) -> DirectiveSpec:
    data = spec.model_dump(mode="json")
    for entry in data["steps"]:
        entry.pop("order")
    for change in changes:
        change(data)
    data["revision"] = spec.revision + 1 if revision is None else revision
    return DirectiveSpec.model_validate(data)


def move(code: str, day: str) -> Callable[[dict], None]:
    return lambda data: next(s for s in data["steps"] if s["code"] == code).update(due_on=day)


def add(code: str, day: str, after: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        at = next(i for i, s in enumerate(data["steps"]) if s["code"] == after) + 1
        data["steps"].insert(at, {"code": code, "kind": "guideline", "title_th": "ประชุมติดตามผล",
                                  "title_en": "Follow-up meeting", "due_on": day})
    return change


def drop(code: str) -> Callable[[dict], None]:
    return lambda data: data["steps"].remove(next(s for s in data["steps"] if s["code"] == code))


def rule(section: str, name: str, value: Any) -> Callable[[dict], None]:
    return lambda data: data[section].update({name: value})


def user(session, username):
    return get_by_username(session, username)


def snapshot(session, directive: Directive) -> dict:
    """Everything an amendment may touch, to prove a refused one touched nothing."""
    session.expire_all()
    row = session.get(Directive, directive.id)
    return {"directive": (row.revision, row.province_due, row.definition),
            "steps": [(s.code, s.order, s.title_en, s.due_on) for s in steps_of(session, row.id)],
            "items": [(i.id, i.step_id, i.district_code, str(i.status), i.due_on, i.version)
                      for i in items_of(session, row.id)],
            "audit": len(session.exec(select(AuditEntry)).all()),
            "outbox": [(m.id, str(m.status), m.item_id, m.step_id)
                       for m in session.exec(select(OutboxMessage))]}


def queue_reminder(session, item: TrackedItem) -> None:
    enqueue(session, OutboxMessage(
        idempotency_key=f"test:{item.id}", channel=Channel.EMAIL, recipient="staff@example.org",
        district_code=item.district_code, item_id=item.id, step_id=item.step_id, rung="reminder-1",
        subject="reminder", body="reminder", next_try_at=NOW, created_at=NOW))


def test_a_moved_date_moves_open_items_only_and_is_audited_once(session, launched):
    done = find_item(session, launched.id, "2704", "G5")
    mark_done(session, user(session, "staff-2704"), done.id, now=NOW)
    waived = find_item(session, launched.id, "2709", "G5")
    waive(session, user(session, "coordinator"), waived.id, reason="ไม่มีศูนย์ฯ", now=NOW)
    open_item = find_item(session, launched.id, "2701", "G5")
    queue_reminder(session, open_item)
    untouched = {(i.id, i.due_on, i.version) for i in items_of(session, launched.id)
                 if i.step_id != open_item.step_id}

    result = launch_directive(session, amended(SA_KAEO, move("G5", "2024-08-05")), now=LATER)

    assert result.amendment is not None and result.created_items == 0
    assert result.amendment.moved_steps == {"G5": (date(2024, 8, 2), date(2024, 8, 5))}
    session.expire_all()
    g5 = [i for i in items_of(session, launched.id) if i.step_id == open_item.step_id]
    assert {i.district_code: i.due_on for i in g5 if i.status == ItemStatus.OPEN} == \
        {f"27{n:02d}": date(2024, 8, 5) for n in range(1, 10) if n not in (4, 9)}
    assert {i.district_code: i.due_on for i in g5 if i.status != ItemStatus.OPEN} == \
        {"2704": date(2024, 8, 2), "2709": date(2024, 8, 2)}
    assert {(i.id, i.due_on, i.version) for i in items_of(session, launched.id)
            if i.step_id != open_item.step_id} == untouched
    assert next(s for s in steps_of(session, launched.id) if s.code == "G5").due_on == date(2024, 8, 5)
    assert session.get(Directive, launched.id).revision == 2
    assert session.get(Directive, launched.id).definition["revision"] == 2
    [message] = session.exec(select(OutboxMessage).where(to_people())).all()
    assert message.status == OutboxStatus.CANCELLED  # the reminder was for the old date
    [entry] = [e for e in entries_for(session, "directive", launched.id)
               if e.action == "directive.amend"]
    assert (entry.at, entry.before, entry.after["revision"], entry.after["moved_steps"],
            entry.after["moved_items"]) == \
        (LATER, {"revision": 1}, [1, 2], {"G5": ["2024-08-02", "2024-08-05"]}, 7)
    assert [e.action for e in entries_for(session, "directive", launched.id)] == \
        ["directive.launch", "directive.amend"]


def test_an_added_step_gets_an_item_per_district_and_a_changed_rule_replaces_the_definition(
        session, launched):
    before = {i.id for i in items_of(session, launched.id)}
    spec = amended(SA_KAEO, add("G9", "2024-08-05", after="G5"),
                   rule("form", "min_photos_per_kind", 2), rule("conditions",
                                                                  "min_participants_per_session", 15))

    result = launch_directive(session, spec, now=LATER)

    assert [s.code for s in result.amendment.added_steps] == ["G9"]
    assert result.amendment.changed_rules == ("form", "conditions")
    assert result.created_items == 9
    steps = steps_of(session, launched.id)
    assert [s.code for s in steps] == ["G1", "G2", "G3", "G4", "G5", "G9", "G6", "G7", "G8",
                                       "A1", "A2", "A3", "R1"]
    g9 = next(s for s in steps if s.code == "G9")
    new = [i for i in items_of(session, launched.id) if i.id not in before]
    assert {(i.step_id, i.due_on, str(i.status)) for i in new} == {(g9.id, date(2024, 8, 5), "open")}
    assert sorted(i.district_code for i in new) == [f"27{n:02d}" for n in range(1, 10)]
    stored = session.get(Directive, launched.id).definition
    assert (stored["form"]["min_photos_per_kind"],
            stored["conditions"]["min_participants_per_session"]) == (2, 15)
    assert [e.action for e in entries_for(session, "directive", launched.id)] == \
        ["directive.launch", "directive.amend"]

    again = launch_directive(session, spec, now=LATER)  # the same revision again: nothing
    assert (again.amendment, again.created_items) == (None, 0)
    assert len(entries_for(session, "directive", launched.id)) == 2


def test_the_same_revision_with_a_different_content_is_refused(session, launched):
    before = snapshot(session, launched)
    with pytest.raises(Conflict, match="bump revision: .*G5") as error:
        launch_directive(session, amended(SA_KAEO, move("G5", "2024-08-05"), revision=1), now=LATER)
    assert "revision" in error.value.message_th
    assert snapshot(session, launched) == before


def test_removing_a_step_with_recorded_work_is_refused_and_changes_nothing(session, launched):
    mark_done(session, user(session, "staff-2702"), find_item(session, launched.id, "2702", "G7").id,
              now=NOW)
    queue_reminder(session, find_item(session, launched.id, "2703", "G6"))
    before = snapshot(session, launched)
    spec = amended(SA_KAEO, drop("G7"), drop("G6"), move("G5", "2024-08-05"),
                   add("G9", "2024-08-05", after="G5"))

    with pytest.raises(Conflict, match=r"removes steps with recorded work — step G7 .*1 done") as error:
        amend_directive(session, launched, spec, now=LATER, actor="coordinator")

    assert "G6" not in error.value.message_en  # nothing was recorded for G6: it could go
    assert "ขั้นตอน G7" in error.value.message_th and "ไม่มีการเปลี่ยนแปลง" in error.value.message_th
    assert snapshot(session, launched) == before


def test_removing_the_report_step_once_a_report_form_exists_is_refused(session, launched):
    insert_report(session, Report(directive_id=launched.id, district_code="2701", content={},
                                  created_at=NOW, updated_at=NOW))
    before = snapshot(session, launched)
    spec = amended(SA_KAEO, drop("R1"), lambda data: data.pop("form"))
    with pytest.raises(Conflict, match="step R1 .*1 report forms"):
        launch_directive(session, spec, now=LATER)
    assert snapshot(session, launched) == before


def test_a_step_nothing_was_recorded_for_is_removed_with_its_items(session, launched):
    item = find_item(session, launched.id, "2703", "G6")
    queue_reminder(session, item)

    result = launch_directive(session, amended(SA_KAEO, drop("G6")), now=LATER)

    assert result.amendment.removed_steps == ("G6",)
    assert "G6" not in [s.code for s in steps_of(session, launched.id)]
    assert len(items_of(session, launched.id)) == 9 * 11
    [message] = session.exec(select(OutboxMessage).where(to_people())).all()
    assert (message.status, message.item_id, message.step_id) == (OutboxStatus.CANCELLED, None, None)
    [entry] = [e for e in entries_for(session, "directive", launched.id)
               if e.action == "directive.amend"]
    assert (entry.after["removed_steps"], entry.after["removed_items"]) == (["G6"], 9)


def test_a_closed_directive_is_not_amended(session, launched):
    close_directive(session, user(session, "coordinator"), launched.slug, reason="เสร็จสิ้น",
                    now=NOW)
    before = snapshot(session, launched)
    with pytest.raises(Conflict, match="closed"):
        launch_directive(session, amended(SA_KAEO, move("G5", "2024-08-05")), now=LATER)
    assert snapshot(session, launched) == before


def test_a_national_amendment_reaches_every_province_copy(session):
    from tidtam.app.national import launch_national
    from tidtam.app.orgtree import load_provinces
    from tidtam.demo.province import create_demo_accounts

    load_provinces(session, ["27", "50"])
    create_demo_accounts(session, NOW)
    launch_national(session, NATIONAL, now=NOW)
    first, second = NATIONAL.steps[0].code, NATIONAL.steps[1].code
    sakaeo = get_directive_by_slug(session, f"{NATIONAL.slug}-p27")
    done = find_item(session, sakaeo.id, "2701", second)
    mark_done(session, user(session, "staff-2701"), done.id, now=NOW)
    new_day = NATIONAL.steps[1].due_on + timedelta(days=3)

    result = launch_national(session, amended(NATIONAL, move(second, str(new_day)),
                                              add("N9", str(new_day), after=first)), now=LATER)

    assert result.amendment is not None and result.created_items == 9 + 25
    session.expire_all()
    for code, districts in (("27", 9), ("50", 25)):
        copy = get_directive_by_slug(session, f"{NATIONAL.slug}-p{code}")
        assert copy.revision == 2
        steps = {s.code: s for s in steps_of(session, copy.id)}
        assert steps[second].due_on == new_day and "N9" in steps
        items = [i for i in items_of(session, copy.id) if i.step_id == steps["N9"].id]
        assert len(items) == districts
        assert [e.action for e in entries_for(session, "directive", copy.id)][-1] == "directive.amend"
    assert session.get(TrackedItem, done.id).due_on == NATIONAL.steps[1].due_on  # done: kept
    assert find_item(session, sakaeo.id, "2702", second).due_on == new_day


def test_a_national_amendment_refused_in_one_province_changes_nothing_anywhere(session):
    from tidtam.app.national import launch_national
    from tidtam.app.orgtree import load_provinces
    from tidtam.demo.province import create_demo_accounts

    load_provinces(session, ["27", "50"])
    create_demo_accounts(session, NOW)
    national = launch_national(session, NATIONAL, now=NOW).directive
    last = NATIONAL.steps[-2]  # not the report step
    sakaeo = get_directive_by_slug(session, f"{NATIONAL.slug}-p27")
    chiang_mai = get_directive_by_slug(session, f"{NATIONAL.slug}-p50")
    mark_done(session, user(session, "staff-2705"), find_item(session, sakaeo.id, "2705", last.code).id,
              now=NOW)
    before = [snapshot(session, d) for d in (national, sakaeo, chiang_mai)]

    with pytest.raises(Conflict, match=f"step {last.code} .*1 done"):
        launch_national(session, amended(NATIONAL, drop(last.code)), now=LATER)

    assert [snapshot(session, d) for d in (national, sakaeo, chiang_mai)] == before


def test_a_closed_province_copy_stays_as_it_was_when_the_national_letter_is_amended(session):
    from domain.access import Role
    from tidtam.app.accounts import ensure_user
    from tidtam.app.national import launch_national
    from tidtam.app.orgtree import load_provinces
    from tidtam.demo.province import create_demo_accounts

    load_provinces(session, ["27", "50"])
    create_demo_accounts(session, NOW)
    ensure_user(session, username="coordinator-50", full_name="ผู้ประสานงาน", role=Role.COORDINATOR,
                province_code="50", district_code=None, password_hash="x", now=NOW)
    launch_national(session, NATIONAL, now=NOW)
    close_directive(session, user(session, "coordinator-50"), f"{NATIONAL.slug}-p50",
                    reason="จังหวัดดำเนินการครบแล้ว", now=NOW)
    chiang_mai = get_directive_by_slug(session, f"{NATIONAL.slug}-p50")
    before = snapshot(session, chiang_mai)
    moved = NATIONAL.steps[1]

    later_day = str(moved.due_on + timedelta(days=2))
    result = launch_national(session, amended(NATIONAL, move(moved.code, later_day)), now=LATER)

    assert result.amendment is not None
    session.expire_all()
    assert get_directive_by_slug(session, f"{NATIONAL.slug}-p27").revision == 2
    after = snapshot(session, chiang_mai)
    assert {k: v for k, v in after.items() if k not in ("audit", "outbox")} == \
        {k: v for k, v in before.items() if k not in ("audit", "outbox")}


def test_tidtam_launch_says_what_the_amended_letter_changed(tmp_path, tmp_path_factory):
    """The launch-directive flow (run by `tidtam launch`) prints the amendment it applied."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import make_database

    url, drop = make_database("sqlite", tmp_path_factory)
    env = dict(os.environ, TIDTAM_DATA_DIR=str(tmp_path), TIDTAM_DATABASE_URL=url,
               PREFECT_API_URL="http://127.0.0.1:9/api")

    def tidtam(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tidtam.cli", *args], env=env, text=True,
                              capture_output=True, timeout=180, cwd=Path(__file__).parents[2])

    text = DEFAULT_DIRECTIVE.read_text(encoding="utf-8")
    amended_file = tmp_path / "amended.yaml"
    amended_file.write_text(text.replace("province_code: \"27\"", "revision: 2\nprovince_code: \"27\"")
                            .replace("due_on: 2024-08-02", "due_on: 2024-08-05"), encoding="utf-8")
    try:
        assert tidtam("init", "--now", "2024-07-12T10:00:00+07:00").returncode == 0
        launched = tidtam("launch", str(amended_file), "--now", "2024-07-20T10:00:00+07:00")
    finally:
        drop()
    assert launched.returncode == 0, launched.stderr
    assert "amended letter applied: revision 1 → 2; dates moved G5 2024-08-02→2024-08-05" in \
        launched.stdout
