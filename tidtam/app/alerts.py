"""Telling the coordinators that the escalation flows failed or fell silent (the ops-alert flow).

One message per failed run (or per silent flow and day), per coordinator and channel, waiting
for the next office-hour slot like every other message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlmodel import Session

from domain.access import Role
from domain.calendar import WorkCalendar
from models.outbox import Channel
from models.user import active_users
from notifications.render import render_message
from tidtam.app.outbox import Message, OutboxBatch

CHANNELS = (Channel.LINE, Channel.EMAIL)
RUNG = "ops-alert"
REASONS = ("failed", "missed")


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
    message = Message(partial(render_message, "ops_alert", flow_name=flow_name, reason=reason,
                              state=state, flow_run_name=flow_run_name, now=now, tz=tz,
                              base_url=base_url))
    about = f"flow-run:{flow_run_name}" if reason == "failed" and flow_run_name else f"flow:{flow_name}"
    occurrence = now.astimezone(tz).date()
    send_at = WorkCalendar().next_send_slot(now, tz)
    result = AlertResult()
    batch = OutboxBatch(session, now)
    for user in active_users(session):
        if user.role != Role.COORDINATOR:
            continue
        result.recipients.append(user.username)
        for channel in CHANNELS:
            batch.to_user(user, channel, message, rung=RUNG, key_rung=f"{RUNG}-{reason}",
                          occurrence=occurrence, subject_ref=about.replace("|", "/"),
                          send_at=send_at)
    written = batch.write()
    result.enqueued, result.already_queued = written.enqueued, written.already_queued
    result.no_channel = written.no_channel
    return result
