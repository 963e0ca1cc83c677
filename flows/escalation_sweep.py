"""escalation-sweep: open items and due dates → the ladder's rung at `now` → outbox rows.

Scheduled in prefect.yaml (08:30 Mon–Fri, Asia/Bangkok); `tidtam sweep --now …` runs it once.
Rows get the next office-hour slot as their send time, so a run on a holiday sends nothing that day.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from tidtam.app.escalation import sweep
from tidtam.infra.clock import instant_of
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings


@flow(name="escalation-sweep", log_prints=True)
def escalation_sweep(now: str | None = None) -> dict:
    """Enqueue the messages due at `now` (ISO-8601; default: the current instant)."""
    instant = instant_of(now)
    settings = get_settings()
    with session_scope(get_engine()) as session:
        result = sweep(session, instant, tz=settings.tz, base_url=settings.base_url)
    print(f"escalation-sweep at {instant.isoformat()}: {result.enqueued} enqueued, "
          f"{result.already_queued} already queued, {result.no_channel} without a channel, "
          f"{result.cancelled} cancelled (items done since)")
    return asdict(result)


if __name__ == "__main__":
    escalation_sweep()
