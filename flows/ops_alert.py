"""ops-alert: tell the coordinators that escalation-sweep or coordinator-digest failed or went silent.

Started by the Prefect automations of tidtam/ops/automations.py (no schedule). For a silence
(``reason="missed"``) it first checks the silent flow's ``schedules`` (its cron in prefect.yaml,
handed over by the automation): a weekend without runs is expected, and nobody is told.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta

from prefect import flow

from tidtam.app.alerts import alert_coordinators
from tidtam.infra.clock import instant_of
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings

# The automations watch for a day without a completed run (tidtam/ops/automations.py).
SILENCE = timedelta(days=1)
# A run scheduled this close to the end of a silent window completes in the next one.
GRACE = timedelta(hours=1)


@flow(name="ops-alert", log_prints=True)
def ops_alert(flow_name: str, reason: str = "failed", flow_run_name: str | None = None,
              state: str | None = None, now: str | None = None,
              schedules: list[tuple[str, str]] | None = None) -> dict:
    """Enqueue the alert about `flow_name` (reason "failed" or "missed") to every coordinator.

    ``schedules``: the silent flow's (cron, timezone) pairs; without them a silence is always told.
    """
    instant = instant_of(now)
    if reason == "missed" and schedules is not None and not run_was_due(schedules, instant):
        print(f"ops-alert: {flow_name} had no run scheduled in the day before "
              f"{instant.isoformat()}; its silence is expected, nobody is told")
        return {"enqueued": 0, "expected_silence": True}
    settings = get_settings()
    with session_scope(get_engine()) as session:
        result = alert_coordinators(session, instant, tz=settings.tz, base_url=settings.base_url,
                                    flow_name=flow_name, reason=reason,
                                    flow_run_name=flow_run_name, state=state)
    print(f"ops-alert: {flow_name} {reason}: {result.enqueued} message(s) enqueued to "
          f"{', '.join(result.recipients) or 'no coordinator'}")
    return asdict(result)


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
