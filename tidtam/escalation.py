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
from domain.ladder import EscalationRung, Ladder, RungDue, idempotency_key, rung_due
from models.directive import Directive, DirectiveStep, TrackedItem, open_items_due_by
from models.org import District
from models.outbox import Channel, OutboxMessage, OutboxStatus, enqueue
from models.user import Role, User, active_users
from notifications.render import render_message

DISTRICT_ROLES = (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD)
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
    return _Sweep(session, now, tz, base_url).run()


def _lookahead(ladder: Ladder) -> int:
    return max(0, -min(r.offset for r in ladder.rungs))


class _Sweep:
    """One sweep: the directives, districts and people are read once, then each item decided."""

    def __init__(self, session: Session, now: datetime, tz: ZoneInfo, base_url: str) -> None:
        self.session, self.now, self.base_url = session, now, base_url
        self.today = now.astimezone(tz).date()
        self.result = SweepResult()
        self.directives = {d.id: d for d in session.exec(select(Directive))}
        self.rules = {d_id: rules_for(d) for d_id, d in self.directives.items()}
        self.send_at = {d_id: r.calendar.next_send_slot(now, tz) for d_id, r in self.rules.items()}
        self.districts = {d.code: d for d in session.exec(select(District))}
        self.people: dict[tuple[Role, str, str | None], list[User]] = defaultdict(list)
        for user in active_users(session):
            in_district = user.district_code if user.role in DISTRICT_ROLES else None
            self.people[(user.role, user.province_code, in_district)].append(user)

    def run(self) -> SweepResult:
        if not self.rules:
            return self.result
        horizon = max(r.calendar.add_working_days(self.today, _lookahead(r.ladder))
                      for r in self.rules.values())
        grouped: dict[tuple[int, RungDue], list[tuple[TrackedItem, int]]] = defaultdict(list)
        steps: dict[int, DirectiveStep] = {}
        for item, step in open_items_due_by(self.session, horizon):
            self.result.items_considered += 1
            steps[step.id] = step
            rule = self.rules[item.directive_id]
            due = rung_due(item.due_on, self.today, rule.ladder, rule.calendar)
            if due is None:
                continue
            days = rule.calendar.working_days_between(item.due_on, self.today)
            if due.rung.grouped:
                grouped[(step.id, due)].append((item, days))
            else:
                self._for_item(step, item, due, abs(days))
        for (step_id, due), late in grouped.items():
            self._grouped(steps[step_id], due, late)
        return self.result

    def _recipients(self, rung: EscalationRung, province: str, district: str | None) -> list[User]:
        people = []
        for audience in rung.audience:
            role = Role(audience.value)
            people += self.people[(role, province, district if role in DISTRICT_ROLES else None)]
        return people

    def _for_item(self, step: DirectiveStep, item: TrackedItem, due: RungDue, days: int) -> None:
        directive = self.directives[item.directive_id]
        subject, body = render_message(
            TEMPLATE_FOR_RUNG[due.rung.code], directive=directive, step=step,
            district=self.districts[item.district_code], districts_late=[], rung=due.rung.code,
            due_on=item.due_on, days=days, base_url=self.base_url, item_id=item.id)
        for user in self._recipients(due.rung, directive.province_code, item.district_code):
            self._enqueue(due, f"item:{item.id}", user, subject, body, directive.id,
                          district_code=item.district_code, item_id=item.id, step_id=step.id)

    def _grouped(self, step: DirectiveStep, due: RungDue,
                 late: list[tuple[TrackedItem, int]]) -> None:
        directive = self.directives[step.directive_id]
        districts_late = [{"code": item.district_code,
                           "name_th": self.districts[item.district_code].name_th,
                           "days_late": days} for item, days in late]
        subject, body = render_message(
            TEMPLATE_FOR_RUNG[due.rung.code], directive=directive, step=step, district=None,
            districts_late=districts_late, rung=due.rung.code, due_on=step.due_on,
            days=max(d["days_late"] for d in districts_late), base_url=self.base_url,
            item_id=None)
        for user in self._recipients(due.rung, directive.province_code, None):
            self._enqueue(due, f"step:{step.id}", user, subject, body, directive.id,
                          district_code=None, item_id=None, step_id=step.id)

    def _enqueue(self, due: RungDue, subject_ref: str, user: User, subject: str, body: str,
                 directive_id: int, **about) -> None:
        """One outbox row per channel of the rung; the idempotency key makes repeats no-ops."""
        for channel in due.rung.channels:
            address = _address(user, channel)
            key = idempotency_key(rung=due.rung.code, occurrence=due.occurrence,
                                  subject_ref=subject_ref, recipient_ref=f"user:{user.id}",
                                  channel=channel)
            message = OutboxMessage(
                idempotency_key=key, channel=Channel(channel), recipient=address or "",
                user_id=user.id, rung=due.rung.code, subject=subject, body=body,
                next_try_at=self.send_at[directive_id], created_at=self.now,
                status=OutboxStatus.QUEUED if address else OutboxStatus.NOT_SENT_NO_CHANNEL,
                last_error=None if address else f"{user.username} has no {channel} address",
                **about)
            if enqueue(self.session, message):
                self.result.enqueued += 1
                self.result.no_channel += address is None
                self.result.by_rung[due.rung.code] = self.result.by_rung.get(due.rung.code, 0) + 1
            else:
                self.result.already_queued += 1


def _address(user: User, channel: str) -> str | None:
    """Where this person gets messages on a channel; None when there is no usable route."""
    if channel == Channel.EMAIL:
        return user.email or None
    if channel == Channel.LINE:
        return None if user.line_route_error else (user.line_user_id or None)
    return None
