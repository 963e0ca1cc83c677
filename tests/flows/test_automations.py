"""Prefect watching itself: the automations on a real Prefect server, and the ops-alert flow's messages.

One `prefect server start` for the module (like tests/e2e/test_serve.py, ~15 s on a fresh
database): the automations are created twice and read back, and a failed `escalation-sweep`
run really makes the server start an `ops-alert` run naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from flows.ops_alert import SILENCE, run_was_due, scheduled_between
from models.outbox import OutboxMessage, OutboxStatus
from models.user import get_by_username
from tests.helpers.prefect_server import PrefectServer
from tidtam.ops.automations import OPS_ALERT, TAG, WATCHED_FLOWS
from tidtam.ops.deployments import schedules_of, watch

BKK = ZoneInfo("Asia/Bangkok")
SWEEP = schedules_of("escalation-sweep")


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BKK)


# --- On a real Prefect server ------------------------------------------------------------------

@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A fresh `prefect server start` on a free port, for this module only."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = PrefectServer(tmp_path_factory.mktemp("prefect"))
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api}):
            yield server.api
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ops_alert_deployment(prefect_api):
    from flows.ops_alert import ops_alert

    return ops_alert.to_deployment(name=OPS_ALERT).apply()


def ours():
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return sorted((a for a in client.read_automations() if TAG in a.tags), key=lambda a: a.name)


@pytest.mark.prefect_server
def test_the_automations_are_created_once_however_often_serve_starts(ops_alert_deployment):
    first = watch(ops_alert_deployment)
    second = watch(ops_alert_deployment)
    assert first == second
    automations = ours()
    assert [a.name for a in automations] == [
        "tidtam: an escalation flow run failed",
        "tidtam: coordinator-digest did not complete for a day",
        "tidtam: escalation-sweep did not complete for a day",
    ]
    assert {a.id for a in automations} == set(first)


@pytest.mark.prefect_server
def test_a_failed_or_crashed_run_of_either_flow_runs_ops_alert_naming_it(ops_alert_deployment):
    watch(ops_alert_deployment)
    failed = next(a for a in ours() if a.name.endswith("run failed"))
    trigger = failed.trigger
    assert (trigger.posture, trigger.threshold) == ("Reactive", 1)
    assert trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed",
                              "prefect.flow-run.TimedOut"}
    assert trigger.match.model_dump() == {"prefect.resource.id": "prefect.flow-run.*"}
    assert trigger.match_related.model_dump() == {
        "prefect.resource.role": "flow", "prefect.resource.name": list(WATCHED_FLOWS)}
    [action] = failed.actions
    assert (action.type, action.source, action.deployment_id) == (
        "run-deployment", "selected", ops_alert_deployment)
    assert action.parameters == {"flow_name": "{{ flow.name }}", "reason": "failed",
                                 "flow_run_name": "{{ flow_run.name }}",
                                 "state": "{{ flow_run.state.name }}"}


@pytest.mark.prefect_server
def test_a_day_without_a_completed_run_runs_ops_alert(ops_alert_deployment):
    watch(ops_alert_deployment)
    for flow in WATCHED_FLOWS:
        silent = next(a for a in ours() if a.name == f"tidtam: {flow} did not complete for a day")
        trigger = silent.trigger
        assert (trigger.posture, trigger.threshold, trigger.within) == ("Proactive", 1, SILENCE)
        assert trigger.within == timedelta(seconds=86400)
        assert trigger.expect == {"prefect.flow-run.Completed"}
        assert trigger.match_related.model_dump() == {"prefect.resource.role": "flow",
                                                      "prefect.resource.name": flow}
        [action] = silent.actions
        assert (action.deployment_id, action.parameters) == (ops_alert_deployment, {
            "flow_name": flow, "reason": "missed",
            "schedules": [list(s) for s in schedules_of(flow)]})
    assert schedules_of("escalation-sweep") == [("30 8 * * 1-5", "Asia/Bangkok")]


@pytest.mark.prefect_server
def test_an_automation_no_longer_declared_is_removed(ops_alert_deployment):
    from prefect.automations import AutomationCore, DoNothing, EventTrigger
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.create_automation(AutomationCore(name="tidtam: an old watcher", tags=[TAG],
                                                trigger=EventTrigger(expect={"x.y"}),
                                                actions=[DoNothing()]))
        client.create_automation(AutomationCore(name="someone else's", trigger=EventTrigger(expect={"x.y"}),
                                                actions=[DoNothing()]))
    watch(ops_alert_deployment)
    assert "tidtam: an old watcher" not in [a.name for a in ours()]
    with get_client(sync_client=True) as client:
        assert client.read_automations_by_name("someone else's")


@pytest.mark.prefect_server
def test_the_server_really_starts_ops_alert_when_a_sweep_run_fails(ops_alert_deployment):
    """A run of a flow named escalation-sweep is set Failed; the server's trigger fires and runs
    the ops-alert deployment with the flow and run names filled in from the event."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.states import Failed, Running

    watch(ops_alert_deployment)

    @flow(name="escalation-sweep")
    def stand_in() -> None:
        """Only its name matters: the automation matches flow runs by flow name."""

    only_ops_alert = DeploymentFilter(id=DeploymentFilterId(any_=[ops_alert_deployment]))
    failed_runs: list[str] = []
    started = []
    deadline, next_failure = time.monotonic() + 60, 0.0
    with get_client(sync_client=True) as client:
        # The trigger service loads new automations on its own schedule: a run failed before
        # that goes unseen. Fail another every 5 s until one is seen (polled, never assumed).
        while not started and time.monotonic() < deadline:
            if time.monotonic() >= next_failure:
                run = client.create_flow_run(stand_in)
                client.set_flow_run_state(run.id, Running(), force=True)
                client.set_flow_run_state(run.id, Failed(message="boom"), force=True)
                failed_runs.append(run.name)
                next_failure = time.monotonic() + 5
            started = client.read_flow_runs(deployment_filter=only_ops_alert)
            time.sleep(0.2)
    assert started, "the automation did not start an ops-alert run within 60 s"
    assert started[0].parameters["flow_run_name"] in failed_runs
    assert started[0].parameters == {"flow_name": "escalation-sweep", "reason": "failed",
                                     "flow_run_name": started[0].parameters["flow_run_name"],
                                     "state": "Failed"}


# --- Was a run due? (the cron of prefect.yaml, through Prefect's own schedule) -------------------

def test_the_sweeps_schedule_in_a_week_with_a_holiday():
    """The flows run Mon-Fri, holidays included: on a holiday the sweep itself sends nothing."""
    assert scheduled_between(SWEEP, bkk(2024, 8, 9, 0, 0), bkk(2024, 8, 13, 23, 0)) == [
        bkk(2024, 8, 9, 8, 30), bkk(2024, 8, 12, 8, 30), bkk(2024, 8, 13, 8, 30)]


@pytest.mark.parametrize(("now", "due", "why"), [
    (bkk(2024, 8, 10, 14, 0), False, "Saturday afternoon: no run since Friday 14:00 was scheduled"),
    (bkk(2024, 8, 11, 14, 0), False, "Sunday"),
    (bkk(2024, 8, 10, 8, 0), True, "a window from Friday 08:00 held Friday's 08:30 run"),
    (bkk(2024, 8, 12, 9, 0), False, "Monday 09:00: the 08:30 run completes in the next window"),
    (bkk(2024, 8, 13, 10, 0), True, "Tuesday 10:00: Tuesday's 08:30 run should have completed"),
    (bkk(2024, 8, 12, 14, 0), True, "Mother's Day: the sweep still runs (and enqueues for Tuesday)"),
])
def test_a_silent_day_alerts_only_if_a_run_was_due_in_it(now, due, why):
    assert run_was_due(SWEEP, now) is due, why


# --- The ops-alert flow, on the test database --------------------------------------------------

@pytest.fixture
def alert(session, launched, monkeypatch):
    import flows.ops_alert as module

    @contextmanager
    def this_session(_engine=None):
        yield session

    monkeypatch.setattr(module, "session_scope", this_session)
    monkeypatch.setattr(module, "get_engine", lambda: None)
    coordinator = get_by_username(session, "coordinator")
    coordinator.line_user_id = "U" + "c" * 32
    session.add(coordinator)
    session.flush()
    return module.ops_alert.fn


def alerts(session):
    return session.exec(select(OutboxMessage).where(OutboxMessage.rung == "ops-alert")
                        .order_by(OutboxMessage.id)).all()


def test_ops_alert_tells_every_coordinator_on_line_and_by_email(session, alert):
    result = alert("escalation-sweep", "failed", flow_run_name="witty-otter", state="Crashed",
                   now=bkk(2024, 8, 13, 8, 31))
    rows = alerts(session)
    coordinator = get_by_username(session, "coordinator")
    assert result.enqueued == 2 and result.recipients == ["coordinator"]
    assert [(r.user_id, r.channel, r.status, r.recipient) for r in rows] == [
        (coordinator.id, "line", OutboxStatus.QUEUED, "U" + "c" * 32),
        (coordinator.id, "email", OutboxStatus.QUEUED, "coordinator@demo.tidtam.local")]
    assert {r.next_try_at.astimezone(BKK) for r in rows} == {bkk(2024, 8, 13, 8, 31)}
    email = rows[1]
    assert email.subject.startswith("ระบบติดตามขัดข้อง: การแจ้งเตือนและเร่งรัดประจำวัน (escalation-sweep)")
    assert email.subject.endswith("/ tidtam: escalation-sweep failed")
    assert "รอบ witty-otter" in email.body and "(สถานะ Crashed)" in email.body
    assert 'The "escalation-sweep" flow run witty-otter ended Crashed.' in email.body
    assert "13 ส.ค. 2567 08:31 น." in email.body
    assert rows[0].idempotency_key == \
        f"ops-alert-failed|2024-08-13|flow-run:witty-otter|user:{coordinator.id}|line"


def test_the_same_failed_run_alerts_once_and_at_night_waits_for_the_office(session, alert):
    alert("coordinator-digest", "failed", flow_run_name="calm-heron", now=bkk(2024, 8, 13, 20, 0))
    again = alert("coordinator-digest", "failed", flow_run_name="calm-heron",
                  now=bkk(2024, 8, 13, 20, 5))
    assert again.enqueued == 0 and again.already_queued == 2
    rows = alerts(session)
    assert {r.next_try_at.astimezone(BKK) for r in rows} == {bkk(2024, 8, 14, 8, 30)}
    assert "สรุปงานประจำวันของผู้ประสานงาน" in rows[0].subject
    assert "Today's coordinators' digest may not have been sent." in rows[0].body


def test_a_weekend_silence_tells_nobody_a_weekday_one_does(session, alert):
    sunday = alert("escalation-sweep", "missed", now=bkk(2024, 8, 11, 14, 0), schedules=SWEEP)
    assert (sunday.enqueued, sunday.expected_silence) == (0, True) and alerts(session) == []
    tuesday = alert("escalation-sweep", "missed", now=bkk(2024, 8, 13, 10, 0), schedules=SWEEP)
    assert (tuesday.enqueued, tuesday.expected_silence) == (2, False)
    assert "ไม่ได้ทำงานมา 1 วัน / tidtam: escalation-sweep has not run for a day" in \
        alerts(session)[0].subject


def test_a_silence_of_a_flow_whose_schedule_is_unknown_is_always_told(session, alert):
    """Run by hand (no automation handing over the schedule): better a word too many."""
    assert alert("escalation-sweep", "missed", now=bkk(2024, 8, 11, 14, 0)).enqueued == 2


def test_an_unknown_reason_is_refused(session, alert):
    with pytest.raises(ValueError, match="reason must be one of"):
        alert("escalation-sweep", "bored", now=bkk(2024, 8, 13, 10, 0))


# --- A one-off command runs as a tracked flow run on the server that answers -------------------

@pytest.mark.prefect_server
def test_a_cli_sweep_is_a_flow_run_on_the_running_server_never_a_temporary_one(prefect_api, tmp_path):
    """As after `tidtam serve`: no PREFECT_API_URL, the command finds the server itself (here made
    to find this module's). Prefect read its settings when it was imported, so the command must
    hand the address to the run, or Prefect starts a temporary server of its own for it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDTAM_"))}
    env.update(TIDTAM_DATA_DIR=str(tmp_path), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1")
    finds_this_server = ("import sys, tidtam.ops.prefect_server as found; "
                         f"found.reachable_api_url = lambda port=4200: {prefect_api!r}; "
                         "from tidtam.cli import app; app(sys.argv[1:])")
    tidtam = [sys.executable, "-c", finds_this_server]
    subprocess.run([*tidtam, "init"], env=env, check=True, capture_output=True, timeout=120)
    swept = subprocess.run([*tidtam, "sweep", "--now", "2024-08-12T08:30:00+07:00"], env=env,
                           capture_output=True, text=True, timeout=120)
    output = swept.stdout + swept.stderr
    assert swept.returncode == 0, output
    assert "temporary server" not in output
    assert f"View at {prefect_api.removesuffix('/api')}" in output
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[_run_name(output)])))
    assert [(r.name, r.state_name, r.parameters) for r in runs] == [
        ("escalation-sweep · สระแก้ว · 12 ส.ค. 2567 08:30", "Completed",
         {"now": "2024-08-12T08:30:00+07:00", "directive_slug": None, "province_code": None,
          "district_tasks": None})]


def _run_name(output: str) -> str:
    import re

    return re.search(r"Flow run '([^']+)'", output).group(1)
