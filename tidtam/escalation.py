"""The escalation sweep's work: find open items, ask the ladder which rung applies, enqueue.

Runs inside the `escalation-sweep` flow; `now` is always given.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from domain.calendar import WorkCalendar
from domain.directive import DirectiveSpec
from domain.ladder import Audience, EscalationRung, Ladder, RungDue, idempotency_key, rung_due
from models.directive import Directive, DirectiveStep, TrackedItem, open_items_due_by
from models.org import District
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue
from models.user import Role, User, users_with_role
from notifications.render import render_message

TEMPLATE_FOR_RUNG = {"reminder-3": "reminder", "reminder-1": "reminder", "overdue": "overdue",
                     "coordinator": "coordinator", "provincial-head": "provincial_head"}


@dataclass
class SweepResult:
    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    items_considered: int = 0
    by_rung: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectiveRules:
    ladder: Ladder
    calendar: WorkCalendar


def rules_for(directive: Directive) -> DirectiveRules:
    """The ladder and working-day calendar of the directive's own YAML (DESIGN defaults)."""
    spec = DirectiveSpec.model_validate(directive.definition)
    return DirectiveRules(spec.ladder, spec.work_calendar())


def sweep(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str) -> SweepResult:
    """Enqueue every message the ladder calls for at ``now``; a repeat at ``now`` adds none."""
    today = now.astimezone(tz).date()
    result = SweepResult()
    directives = {d.id: d for d in session.exec(select(Directive))}
    rules = {d_id: rules_for(d) for d_id, d in directives.items()}
    horizon = max(r.calendar.add_working_days(today, _lookahead(r.ladder)) for r in rules.values()) \
        if rules else today
    grouped: dict[tuple, list[tuple[TrackedItem, int]]] = defaultdict(list)
    steps: dict[int, DirectiveStep] = {}
    for item, step in open_items_due_by(session, horizon):
        result.items_considered += 1
        steps[step.id] = step
        rule = rules[item.directive_id]
        due = rung_due(item.due_on, today, rule.ladder, rule.calendar)
        if due is None:
            continue
        if due.rung.grouped:
            days = rule.calendar.working_days_between(item.due_on, today)
            grouped[(item.directive_id, step.id, due.rung, due.occurrence)].append((item, days))
            continue
        _enqueue_for_item(session, result, directives[item.directive_id], step, item, due,
                          today, rule, now, tz, base_url)
    for (directive_id, step_id, rung, occurrence), late in grouped.items():
        _enqueue_grouped(session, result, directives[directive_id], steps[step_id], rung,
                         occurrence, late, rules[directive_id], now, tz, base_url)
    return result


def _lookahead(ladder: Ladder) -> int:
    return max(0, -min(r.offset for r in ladder.rungs))


ROLE_FOR = {Audience.DISTRICT_STAFF: Role.DISTRICT_STAFF, Audience.DISTRICT_HEAD: Role.DISTRICT_HEAD,
            Audience.COORDINATOR: Role.COORDINATOR, Audience.PROVINCIAL_HEAD: Role.PROVINCIAL_HEAD}


def _recipients(session: Session, rung: EscalationRung, province: str,
                district: str | None) -> list[User]:
    people = []
    for audience in rung.audience:
        role = ROLE_FOR[audience]
        in_district = district if role in (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD) else None
        people += users_with_role(session, role, province_code=province, district_code=in_district)
    return people


def _enqueue_for_item(session, result, directive, step, item, due: RungDue, today, rule, now,
                      tz, base_url) -> None:
    district = session.get(District, item.district_code)
    days = abs(rule.calendar.working_days_between(item.due_on, today))
    subject, body = render_message(
        TEMPLATE_FOR_RUNG[due.rung.code], directive=directive, step=step, district=district,
        districts_late=[], rung=due.rung.code, due_on=item.due_on, days=days,
        base_url=base_url, item_id=item.id)
    for user in _recipients(session, due.rung, directive.province_code, item.district_code):
        _enqueue_each_channel(session, result, due, f"item:{item.id}", user, subject, body,
                              district_code=item.district_code, item_id=item.id, step_id=step.id,
                              send_at=rule.calendar.next_send_slot(now, tz), now=now)


def _enqueue_grouped(session, result, directive, step, rung, occurrence, late, rule, now, tz,
                     base_url) -> None:
    districts_late = [{"code": item.district_code,
                       "name_th": session.get(District, item.district_code).name_th,
                       "days_late": days} for item, days in late]
    subject, body = render_message(
        TEMPLATE_FOR_RUNG[rung.code], directive=directive, step=step, district=None,
        districts_late=districts_late, rung=rung.code, due_on=step.due_on,
        days=max(d["days_late"] for d in districts_late), base_url=base_url, item_id=None)
    due = RungDue(rung, occurrence)
    for user in _recipients(session, rung, directive.province_code, None):
        _enqueue_each_channel(session, result, due, f"step:{step.id}", user, subject, body,
                              district_code=None, item_id=None, step_id=step.id,
                              send_at=rule.calendar.next_send_slot(now, tz), now=now)


def _enqueue_each_channel(session, result, due: RungDue, subject_ref, user, subject, body, *,
                          district_code, item_id, step_id, send_at, now) -> None:
    for channel in due.rung.channels:
        address = _address(user, channel)
        key = idempotency_key(rung=due.rung.code, occurrence=due.occurrence,
                              subject_ref=subject_ref, recipient_ref=f"user:{user.id}",
                              channel=channel)
        message = OutboxMessage(
            idempotency_key=key, channel=Channel(channel), recipient=address or "",
            user_id=user.id, district_code=district_code, item_id=item_id, step_id=step_id,
            rung=due.rung.code, subject=subject, body=body, next_try_at=send_at, created_at=now,
            status=OutboxStatus.QUEUED if address else OutboxStatus.NOT_SENT_NO_CHANNEL,
            last_error=None if address else f"{user.username} has no {channel} address")
        if enqueue(session, message):
            result.enqueued += 1
            result.no_channel += address is None
            result.by_rung[due.rung.code] = result.by_rung.get(due.rung.code, 0) + 1
        else:
            result.already_queued += 1


def _address(user: User, channel: str) -> str | None:
    """Where this person gets messages on a channel; None when there is no usable route."""
    if channel == Channel.EMAIL:
        return user.email or None
    if channel == Channel.LINE:
        return None if user.line_route_error else (user.line_user_id or None)
    return None
