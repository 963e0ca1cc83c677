"""Prefect watching itself: when the escalation flows fail or fall silent, the coordinators hear of it.

Three Prefect automations, declared here and created (or updated) by `tidtam serve` once the
deployments exist (tidtam/ops/deployments.py); each runs the `ops-alert` deployment, whose flow
(flows/ops_alert.py, through tidtam/app/alerts.py) enqueues a message to every coordinator,
LINE and email, in the outbox:

- a run of `escalation-sweep` or `coordinator-digest` ends Failed, Crashed or TimedOut;
- no run of `escalation-sweep` completed for a day; the same for `coordinator-digest`.

The "for a day" triggers are Prefect's proactive triggers: they fire at the end of any 24-hour
window without a Completed event, weekends included. The flows run Mon–Fri only, so the alert
first asks the watched flow's cron (prefect.yaml, handed to it as the ``schedules`` parameter)
whether a run was due in that window; a weekend's silence is expected and tells nobody anything.

A fourth acts on the process itself: when a `tidtam.report.accepted` event says that this
acceptance made every district's report of a directive accepted (its resource's
``tidtam.all_accepted`` label is ``"true"``; the event contract is tidtam/app/events.py's), it runs
the `compile-provincial-report` deployment for that directive (``directive_slug`` from the
resource's ``tidtam.directive`` label), with the PDF. An event delivered twice (the outbox
retrying) has the same id, and Prefect's trigger service acts on an id once (it remembers ids
for 30 minutes; a later redelivery compiles again, which rewrites the same files).
It is created only when that deployment exists on the server (`tidtam serve` registers it first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from uuid import UUID

from prefect.automations import AutomationCore, EventTrigger, Posture, RunDeployment

from flows.ops_alert import SILENCE

WATCHED_FLOWS = ("escalation-sweep", "coordinator-digest")
OPS_ALERT = "ops-alert"
COMPILE = "compile-provincial-report"
REPORT_ACCEPTED = "tidtam.report.accepted"
FAILED_STATES = ("Failed", "Crashed", "TimedOut")
TAG = "tidtam"
# (cron, timezone) of each schedule a watched flow's deployment has in prefect.yaml.
Schedules = Mapping[str, Sequence[tuple[str, str]]]


# --- The automations ----------------------------------------------------------------------------

def _flow_runs_of(flows: str | list[str]) -> dict:
    """Match flow-run events by the name of their flow (a related resource in role "flow")."""
    return {"match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": flows}}


def declared_automations(ops_alert_deployment_id: UUID, schedules: Schedules,
                         compile_deployment_id: UUID | None = None) -> list[AutomationCore]:
    """The automations `tidtam serve` keeps on the Prefect server: three running `ops-alert`,
    and, given its deployment, the one running `compile-provincial-report`."""
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
    silences = [_silence(flow, ops_alert_deployment_id, schedules.get(flow, []))
                for flow in WATCHED_FLOWS]
    compiles = [compile_when_all_accepted(compile_deployment_id)] if compile_deployment_id else []
    return [failed, *silences, *compiles]


def compile_when_all_accepted(compile_deployment_id: UUID) -> AutomationCore:
    """The last district's report of a directive is accepted: compile the province's report."""
    return AutomationCore(
        name="tidtam: every district's report accepted, compile the provincial report",
        description="A tidtam.report.accepted event whose resource says tidtam.all_accepted "
                    "= true runs compile-provincial-report for its directive (tidtam.directive), "
                    "with the PDF; its link artifacts lead to the files.",
        tags=[TAG],
        # One bucket per directive: an acceptance of one letter never waits behind another's.
        trigger=EventTrigger(expect={REPORT_ACCEPTED}, posture=Posture.Reactive, threshold=1,
                             within=timedelta(0), for_each={"tidtam.directive"},
                             match={"prefect.resource.id": "tidtam.report.*",
                                    "tidtam.all_accepted": "true"}),
        actions=[RunDeployment(source="selected", deployment_id=compile_deployment_id,
                               parameters={"directive_slug":
                                           '{{ event.resource.get("tidtam.directive") }}',
                                           "pdf": True})])


def _silence(flow: str, ops_alert_deployment_id: UUID,
             schedules: Sequence[tuple[str, str]]) -> AutomationCore:
    return AutomationCore(
        name=f"tidtam: {flow} did not complete for a day",
        description=f"No run of {flow} completed in {SILENCE.total_seconds():.0f} s; ops-alert "
                    "tells the coordinators unless no run was scheduled then (a weekend).",
        tags=[TAG],
        trigger=EventTrigger(expect={"prefect.flow-run.Completed"}, posture=Posture.Proactive,
                             threshold=1, within=SILENCE, **_flow_runs_of(flow)),
        actions=[RunDeployment(source="selected", deployment_id=ops_alert_deployment_id,
                               parameters={"flow_name": flow, "reason": "missed",
                                           "schedules": [list(s) for s in schedules]})])


def ensure_automations(ops_alert_deployment_id: UUID, schedules: Schedules) -> list[UUID]:
    """Create each declared automation, or update the one of that name: running it twice leaves
    one of each. Automations tagged ``tidtam`` that are no longer declared are deleted. The
    compile automation is declared when the `compile-provincial-report` deployment exists."""
    from prefect.client.orchestration import get_client

    ids = []
    with get_client(sync_client=True) as client:
        wanted = declared_automations(ops_alert_deployment_id, schedules,
                                      _deployment_id(client, COMPILE))
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


def _deployment_id(client, name: str) -> UUID | None:
    """The id of the deployment ``name`` of the flow ``name`` (as prefect.yaml names them)."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(f"{name}/{name}").id
    except ObjectNotFound:
        return None
