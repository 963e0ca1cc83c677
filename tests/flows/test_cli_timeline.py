"""A short timeline replayed through the `tidtam` command alone, each step at its own `--now`.

Launch on Wed 10 Jul 2567, accounts, a reminder sweep on Fri 12 Jul, a step marked done on Mon
15 Jul, sweeps on Tue 16 and Wed 17 Jul, the coordinators' digest on Fri 19 Jul. What the outbox
holds afterwards is written by hand from the default ladder (docs/architecture.md) and the 2567
calendar: G1 and A1 are due Wed 17 Jul, so reminder-3 falls on Fri 12 Jul, reminder-1 on Tue
16 Jul, due-today on Wed 17 Jul, and the coordinator hears of it (+2 working days) on Fri 19 Jul;
G2 and A2 are due Fri 19 Jul, so their reminder-3 falls on Tue 16 Jul (and the 17 Jul sweep
finds it queued already).
Only 2703's staff (e-mail, no LINE) and the coordinator have accounts, so only they get rows;
the LINE rows are kept as "not sent: no channel".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from models.audit import AuditEntry
from models.directive import find_item, get_directive_by_slug
from models.outbox import OutboxMessage
from models.user import get_by_username
from tidtam.cli import app
from tidtam.infra import db

PASSWORD = "a-long-enough-password"
SAKAEO = "fy2567-sakaeo-volunteer-centers"


@pytest.fixture
def tidtam(cli_database):
    """Run `tidtam …` in this process; every call must succeed."""
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(app, list(args), input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    return run, cli_database


def test_a_timeline_replayed_through_the_cli_alone(tidtam):
    run, url = tidtam
    run("init", "--now", "2024-07-10T09:00:00+07:00")
    assert "0 new tracked items" in run("launch", "directives/fy2567-sakaeo-volunteer-centers.yaml",
                                        "--now", "2024-07-10T09:01:00+07:00")
    run("user-add", "staff-2703", "--role", "district_staff", "--full-name", "เจ้าหน้าที่ อ.ตาพระยา",
        "--province", "27", "--district", "2703", "--email", "staff-2703@example.go.th",
        "--password-stdin", "--now", "2024-07-10T09:05:00+07:00", stdin=PASSWORD + "\n")
    run("user-add", "coordinator", "--role", "coordinator", "--full-name", "ผู้ประสานงาน",
        "--province", "27", "--email", "coordinator@example.go.th", "--password-stdin",
        "--now", "2024-07-10T09:06:00+07:00", stdin=PASSWORD + "\n")
    assert "enqueued 4 messages" in run("sweep", "--now", "2024-07-12T08:30:00+07:00")
    done = run("mark-done", "2703", "G1", "--user", "staff-2703", "--note", "ประชุมแล้ว",
               "--now", "2024-07-15T14:00:00+07:00")
    assert "done at 2024-07-15T14:00:00+07:00" in done
    assert "enqueued 6 messages" in run("sweep", "--now", "2024-07-16T08:30:00+07:00")
    assert "enqueued 2 messages (4 already queued" in run("sweep", "--now", "2024-07-17T08:30:00+07:00")
    assert "enqueued 2 messages" in run("digest", "--now", "2024-07-19T08:00:00+07:00")
    # Re-running a step at the same instant adds nothing.
    assert "enqueued 0 messages (2 already queued" in run("digest", "--now", "2024-07-19T08:00:00+07:00")

    rows = [(r["rung"], r["key"].split("|")[1], _step_of(url, r), r["channel"], r["status"],
             r["created_at"]) for r in json.loads(run("outbox", "--json"))]
    queued, cancelled, no_channel = "queued", "cancelled", "not-sent-no-channel"
    assert sorted(rows) == sorted([
        # Fri 12 Jul: reminder-3 for both steps due Wed 17 Jul; G1's are cancelled once done.
        ("reminder-3", "2024-07-12", "G1", "email", cancelled, "2024-07-12T01:30:00+00:00"),
        ("reminder-3", "2024-07-12", "G1", "line", no_channel, "2024-07-12T01:30:00+00:00"),
        ("reminder-3", "2024-07-12", "A1", "email", queued, "2024-07-12T01:30:00+00:00"),
        ("reminder-3", "2024-07-12", "A1", "line", no_channel, "2024-07-12T01:30:00+00:00"),
        # Tue 16 Jul: reminder-1 for A1 only (G1 was done on Monday); reminder-3 for G2, A2.
        ("reminder-1", "2024-07-16", "A1", "email", queued, "2024-07-16T01:30:00+00:00"),
        ("reminder-1", "2024-07-16", "A1", "line", no_channel, "2024-07-16T01:30:00+00:00"),
        ("reminder-3", "2024-07-16", "G2", "email", queued, "2024-07-16T01:30:00+00:00"),
        ("reminder-3", "2024-07-16", "G2", "line", no_channel, "2024-07-16T01:30:00+00:00"),
        ("reminder-3", "2024-07-16", "A2", "email", queued, "2024-07-16T01:30:00+00:00"),
        ("reminder-3", "2024-07-16", "A2", "line", no_channel, "2024-07-16T01:30:00+00:00"),
        # Wed 17 Jul: A1 is due today; 2703 has no district head account.
        ("due-today", "2024-07-17", "A1", "email", queued, "2024-07-17T01:30:00+00:00"),
        ("due-today", "2024-07-17", "A1", "line", no_channel, "2024-07-17T01:30:00+00:00"),
        # Fri 19 Jul 08:00: the coordinator's digest, sent from 08:30.
        ("digest", "2024-07-19", None, "email", queued, "2024-07-19T01:00:00+00:00"),
        ("digest", "2024-07-19", None, "line", no_channel, "2024-07-19T01:00:00+00:00"),
    ])

    with Session(db.engine_for(url)) as session:
        digest = session.exec(select(OutboxMessage).where(OutboxMessage.rung == "digest",
                                                          OutboxMessage.channel == "email")).one()
        # Late on 19 Jul: G1 in the 8 districts other than 2703 (ตาพระยา), A1 in all 9.
        assert "เลยกำหนด 17 รายการ" in digest.subject
        g1 = next(line for line in digest.body.splitlines() if line.startswith("อ.เมืองสระแก้ว"))
        assert g1.count("(2)*") == 8 and "ตาพระยา" not in g1
        staff = get_by_username(session, "staff-2703")
        item = find_item(session, get_directive_by_slug(session, SAKAEO).id, "2703", "G1")
        assert (item.status, item.completed_by_id, item.completed_at) == (
            "done", staff.id, datetime(2024, 7, 15, 7, 0, tzinfo=UTC))
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "item.done")).one()
        assert entry.at == datetime(2024, 7, 15, 7, 0, tzinfo=UTC) and entry.actor == "staff-2703"
        assert get_directive_by_slug(session, SAKAEO).launched_at == datetime(2024, 7, 10, 2, 0, tzinfo=UTC)
        assert staff.created_at == datetime(2024, 7, 10, 2, 5, tzinfo=UTC)


def test_a_bad_now_is_refused_in_thai_and_english(tidtam):
    run, _ = tidtam
    result = CliRunner().invoke(app, ["sweep", "--now", "2024-07-12 08:30"])
    assert result.exit_code == 2
    assert "timezone" in result.output and "เขตเวลา" in result.output


def _step_of(url: str, row: dict) -> str | None:
    from models.directive import DirectiveStep

    if row["step_id"] is None:
        return None
    with Session(db.engine_for(url)) as session:
        return session.get(DirectiveStep, row["step_id"]).code
