"""Prefect watching itself: when the escalation flows fail or fall silent, the coordinators hear of it.

Three Prefect automations, declared here and created (or updated) by `tidtam serve` once the
deployments exist (tidtam/serve_flows.py); each runs the `ops-alert` deployment, whose flow
(flows/ops_alert.py) enqueues a message to every coordinator, LINE and email, in the outbox:

- a run of `escalation-sweep` or `coordinator-digest` ends Failed, Crashed or TimedOut;
- no run of `escalation-sweep` completed for a day; the same for `coordinator-digest`.

The "for a day" triggers are Prefect's proactive triggers: they fire at the end of any 24-hour
window without a Completed event, weekends included. The flows run Mon–Fri only, so the alert
first asks the deployment's cron (prefect.yaml) whether a run was due in that window; a
weekend's silence is expected and tells nobody anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from prefect.automations import AutomationCore, EventTrigger, Posture, RunDeployment
from sqlmodel import Session

from domain.calendar import WorkCalendar
from domain.ladder import idempotency_key
from models.outbox import Channel, OutboxMessage, addressing, enqueue
from models.user import Role, User, active_users
from notifications.render import render_message
from tidtam.escalation import address_of

WATCHED_FLOWS = ("escalation-sweep", "coordinator-digest")
OPS_ALERT = "ops-alert"
FAILED_STATES = ("Failed", "Crashed", "TimedOut")
SILENCE = timedelta(days=1)
# A run scheduled this close to the end of a silent window completes in the next one.
GRACE = timedelta(hours=1)
TAG = "tidtam"
CHANNELS = (Channel.LINE, Channel.EMAIL)
RUNG = "ops-alert"
REASONS = ("failed", "missed")


# --- The automations ----------------------------------------------------------------------------

def _flow_runs_of(flows: str | list[str]) -> dict:
    """Match flow-run events by the name of their flow (a related resource in role "flow")."""
    return {"match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": flows}}


def declared_automations(ops_alert_deployment_id: UUID) -> list[AutomationCore]:
    """The automations `tidtam serve` keeps on the Prefect server, each running `ops-alert`."""
    failed = AutomationCore(
        name="tidtam: an escalation flow run failed",
        description="A run of escalation-sweep or coordinator-digest ended Failed, Crashed or "
                    "TimedOut: the coordinators are told on LINE and by email (ops-alert).",
        tags=[TAG],
        trigger=EventTrigger(expect={f"prefect.flow-run.{state}" for state in FAILED_STATES},
                             posture=Posture.Reactive, threshold=1, within=timedelta(0),
                             **_flow_runs_of(list(WATCHED_FLOWS))),
        actions=[RunDeployment(source="selected", deployment_id=ops_alert_deployment_id,
                               parameters={"flow_name": "{{ flow.name }}", "reason": "failed",
                                           "flow_run_name": "{{ flow_run.name }}",
                                           "state": "{{ flow_run.state.name }}"})])
    return [failed, *(_silence(flow, ops_alert_deployment_id) for flow in WATCHED_FLOWS)]


def _silence(flow: str, ops_alert_deployment_id: UUID) -> AutomationCore:
    return AutomationCore(
        name=f"tidtam: {flow} did not complete for a day",
        description=f"No run of {flow} completed in {SILENCE.total_seconds():.0f} s; ops-alert "
                    "tells the coordinators unless no run was scheduled then (a weekend).",
        tags=[TAG],
        trigger=EventTrigger(expect={"prefect.flow-run.Completed"}, posture=Posture.Proactive,
                             threshold=1, within=SILENCE, **_flow_runs_of(flow)),
        actions=[RunDeployment(source="selected", deployment_id=ops_alert_deployment_id,
                               parameters={"flow_name": flow, "reason": "missed"})])


def ensure_automations(ops_alert_deployment_id: UUID) -> list[UUID]:
    """Create each declared automation, or update the one of that name: running it twice leaves
    one of each. Automations tagged ``tidtam`` that are no longer declared are deleted."""
    from prefect.client.orchestration import get_client

    wanted = declared_automations(ops_alert_deployment_id)
    ids = []
    with get_client(sync_client=True) as client:
        for automation in wanted:
            same_name = client.read_automations_by_name(automation.name)
            if same_name:
                client.update_automation(same_name[0].id, automation)
                for duplicate in same_name[1:]:
                    client.delete_automation(duplicate.id)
                ids.append(same_name[0].id)
            else:
                ids.append(client.create_automation(automation))
        names = {a.name for a in wanted}
        for stale in client.read_automations():
            if TAG in stale.tags and stale.name not in names:
                client.delete_automation(stale.id)
    return ids


# --- Was a run due? ------------------------------------------------------------------------------

def scheduled_between(schedules: Iterable[tuple[str, str]], start: datetime,
                      end: datetime) -> list[datetime]:
    """The instants in [start, end] at which these (cron, timezone) schedules start a run,
    computed by Prefect's own cron schedule so they match what its scheduler does."""
    from prefect.server.schemas.schedules import CronSchedule
    from prefect.utilities.asyncutils import run_coro_as_sync

    found: list[datetime] = []
    for cron, timezone in schedules:
        found += run_coro_as_sync(CronSchedule(cron=cron, timezone=timezone)
                                  .get_dates(start=start, end=end))
    return sorted(found)


def run_was_due(schedules: Iterable[tuple[str, str]], now: datetime) -> bool:
    """Whether a silent day ending at ``now`` should have seen a run complete: a run was
    scheduled in it, early enough (GRACE) to have finished before it ended."""
    return bool(scheduled_between(schedules, now - SILENCE, now - GRACE))


# --- The alert ----------------------------------------------------------------------------------

@dataclass
class AlertResult:
    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    recipients: list[str] = field(default_factory=list)


def alert_coordinators(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
                       flow_name: str, reason: str, flow_run_name: str | None = None,
                       state: str | None = None) -> AlertResult:
    """Enqueue the alert to every active coordinator, LINE and email, for the next office-hour
    slot; one per (failed run | flow and day), coordinator and channel."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
    subject, body = render_message("ops_alert", flow_name=flow_name, reason=reason, state=state,
                                   flow_run_name=flow_run_name, now=now, tz=tz, base_url=base_url)
    about = f"flow-run:{flow_run_name}" if reason == "failed" and flow_run_name else f"flow:{flow_name}"
    occurrence = now.astimezone(tz).date()
    send_at = WorkCalendar().next_send_slot(now, tz)
    result = AlertResult()
    for user in _coordinators(active_users(session)):
        result.recipients.append(user.username)
        for channel in CHANNELS:
            address = address_of(user, channel)
            key = idempotency_key(rung=f"{RUNG}-{reason}", occurrence=occurrence,
                                  subject_ref=about.replace("|", "/"), recipient_ref=f"user:{user.id}",
                                  channel=channel.value)
            row = OutboxMessage(
                idempotency_key=key, **addressing(channel, address, user.username),
                user_id=user.id, rung=RUNG, subject=subject, body=body, next_try_at=send_at,
                created_at=now)
            if enqueue(session, row):
                result.enqueued += 1
                result.no_channel += address is None
            else:
                result.already_queued += 1
    return result


def _coordinators(users: list[User]) -> list[User]:
    return [u for u in users if u.role == Role.COORDINATOR]
