"""escalation-sweep: open items and due dates → the ladder's rung at `now` → outbox rows.

Scheduled in prefect.yaml (08:30 Mon–Fri, Asia/Bangkok); `tidtam sweep --now …` runs it once.
Rows get the next office-hour slot as their send time, so a run on a holiday sends nothing that day.
Every active directive of every province, or the one named (`tidtam sweep --directive SLUG`).
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from tidtam.app.directives import find_directive
from tidtam.app.escalation import sweep
from tidtam.infra.clock import instant_of
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings


@flow(name="escalation-sweep", log_prints=True)
def escalation_sweep(now: str | None = None, directive_slug: str | None = None) -> dict:
    """Enqueue the messages due at `now` (ISO-8601; default: the current instant), for every
    active directive or only `directive_slug` (an unknown slug: NotFound listing the active)."""
    instant = instant_of(now)
    settings = get_settings()
    with session_scope(get_engine()) as session:
        directive = find_directive(session, directive_slug) if directive_slug else None
        result = sweep(session, instant, tz=settings.tz, base_url=settings.base_url,
                       directive=directive)
    print(f"escalation-sweep at {instant.isoformat()}: {result.enqueued} enqueued, "
          f"{result.already_queued} already queued, {result.no_channel} without a channel, "
          f"{result.cancelled} cancelled (items done since); "
          f"{len(result.directives)} active directive(s) swept")
    for slug in result.closed:
        print(f"escalation-sweep: closed {slug} automatically (close_after_working_days)")
    return asdict(result)


if __name__ == "__main__":
    escalation_sweep()
