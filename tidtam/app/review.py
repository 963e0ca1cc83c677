"""The review nudge: a district's report submitted to the province and still not reviewed after
the working days its directive allows (``review_within_working_days``, ``domain.review``)
reminds the province's coordinators, on LINE and by e-mail like every other message.

No Prefect wait: submitting enqueues the reminder with its send time (the office's opening on
the day the review is late) and the outbox holds it until then; accepting or returning the
report, reopening it, or closing the directive cancels it (``cancel``), and a resubmission
enqueues a fresh one (its key names the report's version).

The review messages: returning a report (with the coordinator's comment), accepting it and
reopening it tell the district's staff and head; a resubmission (submitted again after a
return) tells the coordinators. Each is enqueued in the transaction of the change, keyed on the
report's version after it: a double click is one message, a second return (after a
resubmission) a new one. A newer outcome cancels an older one still queued for the district,
and the coordinators' notice of the resubmission it answers.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from domain.access import DISTRICT_ROLES, Role
from domain.directive import DirectiveSpec
from domain.review import review_nudge_at
from models.directive import Directive
from models.org import District
from models.outbox import Channel, cancel_pending_for_report
from models.report import Report
from models.user import User
from notifications.render import render_message
from tidtam.app.outbox import Enqueued, Message, OutboxBatch

RUNG = "review-nudge"
CHANNELS = (Channel.LINE, Channel.EMAIL)

# The review messages' rungs, named by what happened (their texts: report_<what>.txt.j2).
RETURNED = "report-returned"
ACCEPTED = "report-accepted"
REOPENED = "report-reopened"
RESUBMITTED = "report-resubmitted"
TO_DISTRICT = (RETURNED, ACCEPTED, REOPENED)


def _settings() -> tuple[ZoneInfo, str]:
    from tidtam.infra.settings import get_settings

    settings = get_settings()
    return settings.tz, settings.base_url.rstrip("/")


def enqueue_nudge(session: Session, report: Report, directive: Directive, now: datetime, *,
                  tz: ZoneInfo | None = None, base_url: str | None = None) -> Enqueued:
    """The reminder to every active coordinator of the province, on each channel, sent when the
    review is late unless the report is reviewed first. ``tz``, ``base_url``: the settings'."""
    default_tz, default_url = _settings() if tz is None or base_url is None else (tz, base_url)
    tz, base_url = tz or default_tz, base_url or default_url
    spec = DirectiveSpec.model_validate(directive.definition)
    days = spec.review_within_working_days
    send_at = review_nudge_at(now, days, spec.work_calendar(), tz)
    district = session.get(District, report.district_code)
    message = Message(partial(render_message, "review_nudge", directive=directive,
                              district=district, submitted_at=now, days=days, tz=tz,
                              base_url=base_url))
    batch = OutboxBatch(session, now)
    for user in coordinators(session, directive.province_code):
        for channel in CHANNELS:
            batch.to_user(user, channel, message, rung=RUNG, occurrence=now.astimezone(tz).date(),
                          subject_ref=f"report:{report.id}:v{report.version}", send_at=send_at,
                          district_code=report.district_code, directive_id=directive.id,
                          report_id=report.id)
    return batch.write()


def cancel(session: Session, report: Report, reason: str = "report reviewed before the reminder"
           ) -> int:
    """Cancel the reminder still queued about the report; returns how many rows."""
    return cancel_pending_for_report(session, report.id, RUNG, reason)


def notify_district(session: Session, report: Report, directive: Directive, rung: str,
                    now: datetime, *, reviewer: User, comment: str | None = None,
                    tz: ZoneInfo | None = None, base_url: str | None = None) -> Enqueued:
    """Tell the district's staff and head that the province returned, accepted or reopened
    its report (``rung``), with the comment; an older such message still queued is cancelled,
    and so is the coordinators' notice of a resubmission (the review answers it)."""
    if rung not in TO_DISTRICT:
        raise ValueError(f"not a review message to a district: {rung}")
    for older in (*TO_DISTRICT, RESUBMITTED):  # the coordinators' notice is answered too
        cancel_pending_for_report(session, report.id, older,
                                  f"superseded by a later review ({rung})")
    people = district_people(session, report.district_code)
    return _enqueue(session, report, directive, rung, now, people, tz=tz, base_url=base_url,
                    reviewer=reviewer, comment=comment)


def notify_resubmitted(session: Session, report: Report, directive: Directive, now: datetime, *,
                       submitter: User, tz: ZoneInfo | None = None,
                       base_url: str | None = None) -> Enqueued:
    """Tell the coordinators that a district sent its returned report again."""
    return _enqueue(session, report, directive, RESUBMITTED, now,
                    coordinators(session, directive.province_code), tz=tz, base_url=base_url,
                    submitter=submitter)


def _enqueue(session: Session, report: Report, directive: Directive, rung: str, now: datetime,
             people: list[User], *, tz: ZoneInfo | None, base_url: str | None,
             **context: object) -> Enqueued:
    """One text for every person and channel, sent at the office's next open moment."""
    default_tz, default_url = _settings() if tz is None or base_url is None else (tz, base_url)
    tz, base_url = tz or default_tz, base_url or default_url
    spec = DirectiveSpec.model_validate(directive.definition)
    send_at = spec.work_calendar().next_send_slot(now, tz)
    district = session.get(District, report.district_code)
    message = Message(partial(render_message, rung.replace("-", "_"), directive=directive,
                              district=district, report=report, at=now, tz=tz,
                              base_url=base_url, **context))
    batch = OutboxBatch(session, now)
    for user in people:
        for channel in CHANNELS:
            batch.to_user(user, channel, message, rung=rung, occurrence=now.astimezone(tz).date(),
                          subject_ref=f"report:{report.id}:v{report.version}", send_at=send_at,
                          district_code=report.district_code, directive_id=directive.id,
                          report_id=report.id)
    return batch.write()


def district_people(session: Session, district_code: str) -> list[User]:
    """The district's active staff and head: who hears how the province reviewed its report."""
    return list(session.exec(select(User).where(
        col(User.role).in_(DISTRICT_ROLES), User.district_code == district_code,
        User.is_active == True).order_by(User.id)))  # noqa: E712


def coordinators(session: Session, province_code: str) -> list[User]:
    return list(session.exec(select(User).where(
        User.role == Role.COORDINATOR, User.province_code == province_code,
        User.is_active == True).order_by(User.id)))  # noqa: E712
