"""ops-alert: tell the coordinators that escalation-sweep or coordinator-digest failed or went silent.

Started by the Prefect automations of tidtam/ops/automations.py (no schedule). For a silence
(``reason="missed"``) it first checks the silent flow's ``schedules`` (its cron in prefect.yaml,
handed over by the automation): a weekend without runs is expected, and nobody is told.
A tracked run is named `ops-alert · escalation-sweep · failed · 13 ส.ค. 2567 08:31`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from prefect import flow, task
from pydantic import BaseModel

from flows._common import Instant, call, named, resolve_now, run_logger, run_parameters
from flows._runs import TASK_RETRIES
from tidtam.app.alerts import AlertResult, alert_coordinators
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings

FLOW = "ops-alert"

# The automations watch for a day without a completed run (tidtam/ops/automations.py).
SILENCE = timedelta(days=1)
# A run scheduled this close to the end of a silent window completes in the next one.
GRACE = timedelta(hours=1)


class AlertReport(BaseModel):
    """What an alert run did: the messages enqueued, or that the silence was expected."""

    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    recipients: list[str] = []
    expected_silence: bool = False


def _run_name() -> str:
    parameters = run_parameters()
    return named(FLOW, parameters.get("now"), parameters.get("flow_name"),
                 parameters.get("reason"))


@task(name="alert-coordinators", **TASK_RETRIES)
def alert(instant: datetime, flow_name: str, reason: str, flow_run_name: str | None,
          state: str | None) -> AlertResult:
    settings = get_settings()
    with session_scope(get_engine()) as session:
        return alert_coordinators(session, instant, tz=settings.tz, base_url=settings.base_url,
                                  flow_name=flow_name, reason=reason,
                                  flow_run_name=flow_run_name, state=state)


@flow(name=FLOW, flow_run_name=_run_name)
def ops_alert(flow_name: str, reason: Literal["failed", "missed"] = "failed",
              flow_run_name: str | None = None, state: str | None = None,
              now: Instant | None = None,
              schedules: list[tuple[str, str]] | None = None) -> AlertReport:
    """Enqueue the alert about `flow_name` (reason "failed" or "missed") to every coordinator.

    ``schedules``: the silent flow's (cron, timezone) pairs; without them a silence is always told.
    """
    instant = resolve_now(now)
    logger = run_logger(FLOW)
    if reason == "missed" and schedules is not None and not run_was_due(schedules, instant):
        logger.info("ops-alert: %s had no run scheduled in the day before %s; its silence is "
                    "expected, nobody is told", flow_name, instant.isoformat())
        return AlertReport(expected_silence=True)
    result = call(alert, instant, flow_name, reason, flow_run_name, state)
    report = AlertReport(enqueued=result.enqueued, already_queued=result.already_queued,
                         no_channel=result.no_channel, recipients=result.recipients)
    logger.info("ops-alert: %s %s: %d message(s) enqueued to %s", flow_name, reason,
                report.enqueued, ", ".join(report.recipients) or "no coordinator")
    return report


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


if __name__ == "__main__":
    import sys

    ops_alert(sys.argv[1] if len(sys.argv) > 1 else "escalation-sweep")
