"""coordinator-digest: each coordinator's one message a working day, on LINE and by email.

Scheduled in prefect.yaml (08:00 Mon–Fri, Asia/Bangkok): the rows wait for 08:30, when the
office opens. On a holiday it enqueues nothing. `tidtam.app.digest` holds the logic.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow

from tidtam.app.digest import send_digests
from tidtam.infra.clock import instant_of
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings


@flow(name="coordinator-digest", log_prints=True)
def coordinator_digest(now: str | None = None) -> dict:
    """Enqueue today's digest as of `now` (ISO-8601 with offset; default: the current instant)."""
    instant = instant_of(now)
    settings = get_settings()
    with session_scope(get_engine()) as session:
        result = send_digests(session, instant, tz=settings.tz, base_url=settings.base_url)
    print(f"coordinator-digest at {instant.isoformat()}: {result.provinces} province(s), "
          f"{result.enqueued} enqueued, {result.already_queued} already queued, "
          f"{result.no_channel} without a channel")
    for slug in result.closed:
        print(f"coordinator-digest: closed {slug} automatically (close_after_working_days)")
    for reason in result.skipped:
        print(f"coordinator-digest: nobody to send to in province {reason}")
    return asdict(result)


if __name__ == "__main__":
    coordinator_digest()
