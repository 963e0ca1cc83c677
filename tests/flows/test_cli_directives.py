"""`tidtam` with several directives at once: the list, --directive on every command, the error
for an unknown slug, closing and loading, and next year's letter (issue 11).

The Sa Kaeo demo (its FY 2567 letter, with progress) plus the Department's national copy,
launched on top: two active directives of one province with the same step codes and dates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from domain.directive import load_directive
from models.audit import AuditEntry
from models.directive import DirectiveStatus, get_directive_by_slug
from tidtam.cli import app
from tidtam.infra import db

SAKAEO = "fy2567-sakaeo-volunteer-centers"
NATIONAL = "fy2567-national-volunteer-centers-p27"
ROOT = Path(__file__).parents[2]
SWEEP_AT = "2024-08-12T09:00:00+07:00"


@pytest.fixture
def tidtam(cli_database, monkeypatch):
    """`tidtam …` in this process on the demo with the national copy launched too:
    run(*args) → (exit code, stdout, stderr)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("TIDTAM_DEMO", "1")
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result.exit_code, result.stdout, result.stderr

    run("init", "--demo")
    run("launch", "directives/fy2567-national-volunteer-centers.yaml")
    return run


def js(run, *args: str):
    return json.loads(run(*args, "--json")[1])


def session_of(url: str) -> Session:
    return Session(db.engine_for(url))


def test_directives_lists_both_with_status_and_progress(tidtam):
    listed = {d["slug"]: d for d in js(tidtam, "directives")}
    assert set(listed) == {SAKAEO, NATIONAL}
    assert {d["status"] for d in listed.values()} == {"active"}
    assert listed[SAKAEO]["reference_no"] == "สก ๐๐๑๙/ว ๒๕๒"
    assert listed[SAKAEO]["progress"]["expected"] == listed[NATIONAL]["progress"]["expected"] == 108
    assert listed[SAKAEO]["progress"]["settled"] > 0 == listed[NATIONAL]["progress"]["settled"]
    assert [d["slug"] for d in js(tidtam, "directives", "--province", "27")] == list(listed)
    text = tidtam("directives")[1]
    assert SAKAEO in text and NATIONAL in text and "active" in text
    code, _, err = tidtam("directives", "--province", "99", ok=False)
    assert code == 2 and "no province 99" in err and "ไม่พบจังหวัดรหัส 99" in err


@pytest.mark.parametrize("args", [
    ("status",), ("outbox",), ("sweep", "--now", SWEEP_AT), ("compile",),
    ("mark-done", "2705", "G8", "--user", "staff-2705")])
def test_an_unknown_slug_is_an_error_listing_the_active_ones(tidtam, args):
    code, out, err = tidtam(*args, "--directive", "no-such-letter", ok=False)
    assert code != 0
    assert "no-such-letter" in err and "ไม่พบหนังสือสั่งการ" in err
    assert SAKAEO in err and NATIONAL in err, "the active directives are listed"


def test_status_shows_each_active_directive_or_the_one_named(tidtam):
    both = js(tidtam, "status", "--today", "2024-08-12")
    assert [b["directive"]["slug"] for b in both["directives"]] == [NATIONAL, SAKAEO]
    national, sakaeo = both["directives"]
    assert sakaeo["overdue_count"] < national["overdue_count"] == 108
    one = js(tidtam, "status", "--today", "2024-08-12", "--directive", SAKAEO)
    assert one == sakaeo
    text = tidtam("status", "--today", "2024-08-12")[1]
    assert "สก ๐๐๑๙/ว ๒๕๒" in text and "ตัวอย่าง กรมฯ" in text


def test_mark_done_names_the_directive_when_two_have_the_step(tidtam, cli_database):
    code, _, err = tidtam("mark-done", "2705", "G8", "--user", "staff-2705", ok=False)
    assert code == 1 and "--directive" in err and SAKAEO in err and NATIONAL in err
    out = tidtam("mark-done", "2705", "G8", "--user", "staff-2705", "--directive", NATIONAL)[1]
    assert NATIONAL in out
    national = js(tidtam, "status", "--directive", NATIONAL)
    sakaeo = js(tidtam, "status", "--directive", SAKAEO)
    row = next(d for d in national["districts"] if d["code"] == "2705")
    assert row["items"]["G8"] == "done"
    assert next(d for d in sakaeo["districts"] if d["code"] == "2705")["items"]["G8"] != "done"


def test_sweep_and_outbox_per_directive(tidtam):
    only = tidtam("sweep", "--now", SWEEP_AT, "--directive", NATIONAL)[1]
    assert f"directives swept / หนังสือที่ติดตาม: {NATIONAL}\n" in only
    assert {r["directive"] for r in js(tidtam, "outbox")} == {NATIONAL}
    everything = tidtam("sweep", "--now", SWEEP_AT)[1]
    assert NATIONAL in everything and SAKAEO in everything
    rows = js(tidtam, "outbox")
    assert {r["directive"] for r in rows} == {NATIONAL, SAKAEO}
    national = js(tidtam, "outbox", "--directive", NATIONAL)
    assert national == [r for r in rows if r["directive"] == NATIONAL] and national
    text = tidtam("outbox")[1]
    assert f"outbox — สก ๐๐๑๙/ว ๒๕๒ ({SAKAEO})" in text and f"({NATIONAL})" in text


def test_compile_refuses_to_guess_among_several_and_takes_the_one_named(tidtam, tmp_path):
    code, _, err = tidtam("compile", ok=False)
    assert code == 2 and "several active directives" in err and "หลายฉบับ" in err
    assert SAKAEO in err and NATIONAL in err
    data = js(tidtam, "compile", "--directive", SAKAEO, "--out", str(tmp_path / "out"))
    assert data["directive"]["slug"] == SAKAEO
    # Closed, the other one leaves a single active directive: compile needs no --directive again.
    tidtam("close", NATIONAL, "--reason", "ทดสอบ / test")
    assert js(tidtam, "compile", "--out", str(tmp_path / "again"))["directive"]["slug"] == SAKAEO
    # A closed directive's compilation still works when named.
    assert js(tidtam, "compile", "--directive", NATIONAL, "--out",
              str(tmp_path / "closed"))["directive"]["slug"] == NATIONAL


def test_close_with_a_reason_stops_the_chasing_and_is_audited(tidtam, cli_database):
    code, _, err = tidtam("close", NATIONAL, "--reason", "  ", ok=False)
    assert code == 2 and "reason" in err and "เหตุผล" in err
    code, _, err = tidtam("close", NATIONAL, "--reason", "x", "--user", "staff-2701", ok=False)
    assert code == 1 and NATIONAL in err
    out = tidtam("close", NATIONAL, "--reason", "ยกเลิกตามหนังสือกรม / withdrawn")[1]
    assert f"closed {NATIONAL}" in out
    listed = {d["slug"]: d for d in js(tidtam, "directives")}
    assert listed[NATIONAL]["status"] == "closed"
    assert listed[NATIONAL]["close_reason"] == "ยกเลิกตามหนังสือกรม / withdrawn"
    swept = tidtam("sweep", "--now", SWEEP_AT)[1]
    assert f"directives swept / หนังสือที่ติดตาม: {SAKAEO}\n" in swept
    assert {r["directive"] for r in js(tidtam, "outbox")} == {SAKAEO}
    code, _, err = tidtam("close", NATIONAL, "--reason", "again", ok=False)
    assert code == 1 and "already closed" in err and "ปิดไปแล้ว" in err
    with session_of(cli_database) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "directive.close")).one()
        assert entry.actor == "system:cli" and entry.after["reason"] == "ยกเลิกตามหนังสือกรม / withdrawn"


def test_directive_new_writes_next_year_which_loads_and_launches(tidtam, cli_database, tmp_path):
    out = tmp_path / "fy2568.yaml"
    said = tidtam("directive", "new", "--from", SAKAEO, "--fiscal-year", "2568", "--out", str(out))[1]
    assert "fy2568-sakaeo-volunteer-centers" in said
    spec = load_directive(out)  # domain.directive's checks, as `launch` reads it
    last = load_directive(ROOT / "directives" / f"{SAKAEO}.yaml")
    assert (spec.slug, spec.fiscal_year, spec.revision) == ("fy2568-sakaeo-volunteer-centers", 2568, 1)
    assert [s.due_on.replace(year=s.due_on.year - 1) for s in spec.steps] == [s.due_on for s in last.steps]
    assert [s.code for s in spec.steps] == [s.code for s in last.steps]
    texts = {"title_th", "title_en", "heading_th", "activity_name_th", "footnote_th"}  # years moved
    assert spec.form.model_dump(exclude=texts) == last.form.model_dump(exclude=texts)
    text = out.read_text(encoding="utf-8")
    assert text.count("# ตรวจสอบ/review:") >= len(spec.steps) + 5
    code, _, err = tidtam("directive", "new", "--from", SAKAEO, "--fiscal-year", "2568",
                          "--out", str(out), ok=False)
    assert code == 2 and "--force" in err
    code, _, err = tidtam("directive", "new", "--from", "nope", "--fiscal-year", "2568",
                          "--out", str(tmp_path / "x.yaml"), ok=False)
    assert code == 1 and SAKAEO in err and not (tmp_path / "x.yaml").exists()

    loaded = tidtam("load", str(out))[1]
    assert "loaded" in loaded
    with session_of(cli_database) as session:
        assert get_directive_by_slug(session, spec.slug).status == DirectiveStatus.LOADED
    listed = {d["slug"]: d["status"] for d in js(tidtam, "directives")}
    assert listed[spec.slug] == "loaded"
    assert "108 new tracked items" in tidtam("launch", str(out))[1]
    assert {d["slug"]: d["status"] for d in js(tidtam, "directives")}[spec.slug] == "active"


def test_a_coordinator_closes_as_on_the_web_and_a_national_file_is_not_loaded(tidtam, cli_database):
    out = tidtam("close", SAKAEO, "--reason", "ครบกำหนดแล้ว / done", "--user", "coordinator")[1]
    assert f"closed {SAKAEO}" in out
    with session_of(cli_database) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "directive.close")).one()
        assert entry.actor == "coordinator"
    code, _, err = tidtam("close", SAKAEO, "--reason", "x", "--user", "nobody", ok=False)
    assert code == 2 and "nobody" in err and "ไม่พบผู้ใช้" in err
    code, _, err = tidtam("load", "directives/fy2567-national-volunteer-centers.yaml", ok=False)
    assert code == 2 and "national" in err and "กรมฯ" in err
