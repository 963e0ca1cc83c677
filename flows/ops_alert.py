"""ops-alert: tell the coordinators that escalation-sweep or coordinator-digest failed or went silent.

Started by the Prefect automations of tidtam/automations.py (no schedule). For a silence
(``reason="missed"``) it first checks the flow's schedule in prefect.yaml: a weekend without
runs is expected, and nobody is told.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from prefect import flow

from tidtam.automations import alert_coordinators, run_was_due
from tidtam.db import get_engine, session_scope
from tidtam.serve_flows import schedules_of
from tidtam.settings import get_settings


@flow(name="ops-alert", log_prints=True)
def ops_alert(flow_name: str, reason: str = "failed", flow_run_name: str | None = None,
              state: str | None = None, now: str | None = None) -> dict:
    """Enqueue the alert about `flow_name` (reason "failed" or "missed") to every coordinator."""
    instant = datetime.fromisoformat(now) if now else get_settings().now()
    if instant.tzinfo is None:
        raise ValueError(f"now needs a timezone, e.g. {instant.isoformat()}+07:00")
    if reason == "missed" and not run_was_due(schedules_of(flow_name), instant):
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


if __name__ == "__main__":
    import sys

    ops_alert(sys.argv[1] if len(sys.argv) > 1 else "escalation-sweep")
