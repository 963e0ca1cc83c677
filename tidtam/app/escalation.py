"""The escalation sweep's work: find open items, ask the ladder which rung applies, enqueue.

Runs inside the `escalation-sweep` flow; `now` is always given. Rungs marked ``via_digest``
(by default the coordinator's) enqueue nothing here: the `coordinator-digest` flow carries them.

One run handles every active directive of every province (or the one it is given): a directive
whose closing day has come is closed first (``close_due_directives``), and a loaded or closed
directive is never chased. Idempotency keys name the item or step (``item:{id}``,
``step:{id}``), which belong to one directive, so two letters never share a key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from domain.access import DISTRICT_ROLES, Role
from domain.calendar import WorkCalendar
from domain.directive import DirectiveSpec
from domain.ladder import EscalationRung, Ladder, RungDue, rung_due
from models.directive import (
    Directive,
    DirectiveStep,
    ItemStatus,
    OpenItem,
    TrackedItem,
    active_directives,
    open_items_due_by,
)
from models.line import groups_by_district
from models.org import District
from models.outbox import Channel, OutboxMessage, OutboxStatus, cancel_grouped_for_closed_steps
from models.user import User, active_users
from notifications.render import render_message
from tidtam.app.directives import close_due_directives
from tidtam.app.outbox import Message, OutboxBatch

TEMPLATE_FOR_RUNG = {"reminder-3": "reminder", "reminder-1": "reminder", "overdue": "overdue",
                     "coordinator": "coordinator", "provincial-head": "provincial_head"}


@dataclass
class SweepResult:
    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    items_considered: int = 0
    cancelled: int = 0
    by_rung: dict[str, int] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)  # slugs closed automatically by this run
    directives: list[str] = field(default_factory=list)  # the active directives swept


@dataclass(frozen=True)
class DirectiveRules:
    ladder: Ladder
    calendar: WorkCalendar


def rules_for(directive: Directive) -> DirectiveRules:
    """The ladder and working-day calendar of the directive's own YAML; without a ``ladder:``,
    DEFAULT_LADDER (docs/architecture.md, "The escalation ladder")."""
    spec = DirectiveSpec.model_validate(directive.definition)
    return DirectiveRules(spec.ladder, spec.work_calendar())


def sweep(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
          directive: Directive | None = None) -> SweepResult:
    """Enqueue every message the ladder calls for at ``now``; a repeat at ``now`` adds none.

    First closes the directives whose closing day has come (their queued messages cancelled),
    then cancels what is still queued about items that are no longer open, so nothing chases
    an item done since the last sweep even if its use case did not cancel it. ``directive``:
    sweep only that one (nothing when it is not active); default: every active directive.
    """
    closed = close_due_directives(session, now, now.astimezone(tz).date())
    cancelled = cancel_settled(session)
    result = _Sweep(session, now, tz, base_url, directive).run()
    result.cancelled = cancelled
    result.closed = [d.slug for d in closed]
    return result


# --- Cancelling what no longer needs saying -----------------------------------------------------

_CANCELLABLE = OutboxMessage.status == OutboxStatus.QUEUED


def cancel_settled(session: Session) -> int:
    """Cancel queued messages whose items are all done: per-item rows and grouped rows."""
    return cancel_for_closed_items(session) + cancel_grouped_for_closed_steps(session)


def cancel_for_closed_items(session: Session) -> int:
    """Queued per-item messages whose item is done, accepted or waived."""
    closed = select(TrackedItem.id).where(TrackedItem.status != ItemStatus.OPEN)
    result = session.execute(
        update(OutboxMessage)
        .where(_CANCELLABLE, col(OutboxMessage.item_id).in_(closed))
        .values(status=OutboxStatus.CANCELLED, last_error="item completed before sending")
        .execution_options(synchronize_session=False))
    return result.rowcount


# --- The sweep ----------------------------------------------------------------------------------

def _rules_key(rules: DirectiveRules) -> Hashable:
    """Equal for directives whose ladder and calendar are equal (the same rungs, closure days and
    office hours), so the sweep decides each due date once for all of them; the rules' identity
    when some part cannot be compared by value."""
    calendar = rules.calendar
    key = (rules.ladder, type(calendar), tuple(sorted(vars(calendar).items())))
    try:
        hash(key)
    except TypeError:
        return id(rules)
    return key


def _lookahead(ladder: Ladder) -> int:
    return max(0, -min(r.offset for r in ladder.rungs))


class _Sweep:
    """One sweep: the directives, districts and people are read once, then each item decided."""

    def __init__(self, session: Session, now: datetime, tz: ZoneInfo, base_url: str,
                 only: Directive | None = None) -> None:
        self.session, self.now, self.base_url = session, now, base_url
        self.today = now.astimezone(tz).date()
        self.result = SweepResult()
        self.directives = {d.id: d for d in active_directives(session)
                           if only is None or d.id == only.id}
        self.result.directives = [d.slug for d in self.directives.values()]
        self.rules = {d_id: rules_for(d) for d_id, d in self.directives.items()}
        alike: dict[Hashable, int] = {}  # rules compared once here, then by a small number
        self.rules_key = {d_id: alike.setdefault(_rules_key(r), len(alike)) for d_id, r in self.rules.items()}
        self.decided: dict[tuple[int, date], tuple[RungDue | None, int]] = {}
        self.send_at = {d_id: r.calendar.next_send_slot(now, tz) for d_id, r in self.rules.items()}
        self.districts = {d.code: d for d in session.exec(select(District))}
        self.groups: dict[str, str] | None = None
        self.batch = OutboxBatch(session, now)
        self.people: dict[tuple[Role, str, str | None], list[User]] = defaultdict(list)
        for user in active_users(session):
            in_district = user.district_code if user.role in DISTRICT_ROLES else None
            self.people[(user.role, user.province_code, in_district)].append(user)

    def run(self) -> SweepResult:
        if not self.rules:
            return self.result
        horizon = max(r.calendar.add_working_days(self.today, _lookahead(r.ladder))
                      for r in self.rules.values())
        grouped: dict[tuple[int, RungDue], list[tuple[OpenItem, int]]] = defaultdict(list)
        steps: dict[int, DirectiveStep] = {}
        for item, step in open_items_due_by(self.session, horizon):
            if item.directive_id not in self.directives:
                continue  # another directive than the one asked for
            self.result.items_considered += 1
            steps[step.id] = step
            due, days = self._decide(item.directive_id, item.due_on)
            if due is None or due.rung.via_digest:
                continue
            if due.rung.grouped:
                grouped[(step.id, due)].append((item, days))
            else:
                self._for_item(step, item, due, abs(days))
        for (step_id, due), late in grouped.items():
            self._grouped(steps[step_id], due, late)
        self._write()
        return self.result

    def _decide(self, directive_id: int, due_on: date) -> tuple[RungDue | None, int]:
        """The rung due today for an item due on ``due_on``, and the working days from it to today.

        Worked out once per rules and due date: the items of a step share one due date, and
        directives with the same ladder and calendar decide alike.
        """
        key = (self.rules_key[directive_id], due_on)
        if key not in self.decided:
            rule = self.rules[directive_id]
            self.decided[key] = (rung_due(due_on, self.today, rule.ladder, rule.calendar),
                                 rule.calendar.working_days_between(due_on, self.today))
        return self.decided[key]

    def _recipients(self, rung: EscalationRung, province: str, district: str | None) -> list[User]:
        people = []
        for role in rung.audience:
            people += self.people[(role, province, district if role in DISTRICT_ROLES else None)]
        return people

    def _group_of(self, district_code: str) -> str | None:
        """The district's bound LINE group; every district's is read at once, on first use."""
        if self.groups is None:
            self.groups = {code: group.group_id
                           for code, group in groups_by_district(self.session, list(self.districts)).items()}
        return self.groups.get(district_code)

    def _for_item(self, step: DirectiveStep, item: OpenItem, due: RungDue, days: int) -> None:
        directive = self.directives[item.directive_id]
        message = Message(lambda: render_message(
            TEMPLATE_FOR_RUNG.get(due.rung.code, "overdue"), directive=directive, step=step,
            district=self.districts[item.district_code], districts_late=[], rung=due.rung.code,
            due_on=item.due_on, days=days, base_url=self.base_url, item_id=item.id))
        row = dict(rung=due.rung.code, occurrence=due.occurrence, subject_ref=f"item:{item.id}",
                   send_at=self.send_at[directive.id], district_code=item.district_code,
                   item_id=item.id, step_id=step.id)
        for user in self._recipients(due.rung, directive.province_code, item.district_code):
            for channel in due.rung.channels:
                self.batch.to_user(user, channel, message, **row)
        group = self._group_of(item.district_code)
        if group and Channel.LINE in due.rung.channels and _speaks_to_district(due.rung):
            self.batch.add(Channel.LINE, message, address=group, recipient_ref=f"line-group:{group}",
                           who=f"LINE group of district {item.district_code}", **row)

    def _grouped(self, step: DirectiveStep, due: RungDue, late: list[tuple[OpenItem, int]]) -> None:
        directive = self.directives[step.directive_id]

        def render() -> tuple[str, str]:
            districts_late = [{"code": item.district_code,
                               "name_th": self.districts[item.district_code].name_th,
                               "days_late": days} for item, days in late]
            return render_message(
                TEMPLATE_FOR_RUNG.get(due.rung.code, "coordinator"), directive=directive, step=step,
                district=None, districts_late=districts_late, rung=due.rung.code, due_on=step.due_on,
                days=max(d["days_late"] for d in districts_late), base_url=self.base_url,
                item_id=None)

        message = Message(render)
        for user in self._recipients(due.rung, directive.province_code, None):
            for channel in due.rung.channels:
                self.batch.to_user(user, channel, message, rung=due.rung.code,
                                   occurrence=due.occurrence, subject_ref=f"step:{step.id}",
                                   send_at=self.send_at[directive.id], district_code=None,
                                   item_id=None, step_id=step.id)

    def _write(self) -> None:
        """Every row of the sweep at once: the keys already queued read in one go, so a repeat
        sweep renders nothing (tidtam/app/outbox.py)."""
        written = self.batch.write()
        self.result.enqueued, self.result.already_queued = written.enqueued, written.already_queued
        self.result.no_channel, self.result.by_rung = written.no_channel, written.by_rung


def _speaks_to_district(rung: EscalationRung) -> bool:
    return any(audience in DISTRICT_ROLES for audience in rung.audience)
