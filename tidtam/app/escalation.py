"""The escalation sweep's work: find open items, ask the ladder which rung applies, enqueue.

Runs inside the `escalation-sweep` flow; `now` is always given. Rungs marked ``via_digest``
(by default the coordinator's) enqueue nothing here: the `coordinator-digest` flow carries them.

One run handles every active directive of every province (or the one it is given): a directive
whose closing day has come is closed first (``close_due_directives``), and a loaded or closed
directive is never chased. Idempotency keys name the item or step (``item:{id}``,
``step:{id}``), which belong to one directive, so two letters never share a key.

The work goes province by province (``ProvinceSweep``: read once, decide each district, one bulk
insert), so the flow can show each province and each district as a task run of its own, and
each district's standing (``domain.standing``) is the board's, at the same instant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date, datetime
from threading import Lock
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from domain.access import DISTRICT_ROLES, Role
from domain.calendar import WorkCalendar
from domain.directive import DirectiveSpec
from domain.ladder import EscalationRung, Ladder, RungDue, rungs_due
from domain.standing import DistrictStanding
from models.directive import (
    Directive,
    DirectiveStep,
    ItemStatus,
    OpenItem,
    TrackedItem,
    active_directives,
    item_counts_by_district,
    open_items_due_by,
)
from models.line import groups_by_district
from models.org import District, districts_in
from models.outbox import Channel, OutboxMessage, OutboxStatus, cancel_grouped_for_closed_steps
from models.user import User, active_users
from notifications.render import render_message
from tidtam.app.directives import close_due_directives
from tidtam.app.outbox import Enqueued, Message, OutboxBatch

TEMPLATE_FOR_RUNG = {"reminder-3": "reminder", "reminder-1": "reminder", "due-today": "due_today",
                     "late": "late", "coordinator": "coordinator",
                     "provincial-head": "provincial_head"}


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

    def add(self, part: SweepResult) -> None:
        """Count in one province's part of the run."""
        self.enqueued += part.enqueued
        self.already_queued += part.already_queued
        self.no_channel += part.no_channel
        self.items_considered += part.items_considered
        for rung, n in part.by_rung.items():
            self.by_rung[rung] = self.by_rung.get(rung, 0) + n


@dataclass(frozen=True)
class DirectiveRules:
    ladder: Ladder
    calendar: WorkCalendar


def rules_for(directive: Directive) -> DirectiveRules:
    """The ladder and working-day calendar of the directive's own YAML; without a ``ladder:``,
    DEFAULT_LADDER (docs/architecture.md, "The escalation ladder")."""
    spec = DirectiveSpec.model_validate(directive.definition)
    return DirectiveRules(spec.ladder, spec.work_calendar())


@dataclass(frozen=True)
class SweepStart:
    """What a sweep does before it decides anything: the directives it closed, the queued rows it
    cancelled, and the active directives left to chase, by province."""

    closed: list[str]
    cancelled: int
    provinces: dict[str, list[Directive]]  # province code → its active directives, newest first

    @property
    def directives(self) -> list[str]:
        return [d.slug for directives in self.provinces.values() for d in directives]


def start_sweep(session: Session, now: datetime, *, tz: ZoneInfo, directive: Directive | None = None,
                province_code: str | None = None) -> SweepStart:
    """Close the directives whose closing day has come (their queued messages cancelled), cancel
    what is still queued about items no longer open, and list what is left to chase:
    ``directive`` only (nothing when it is not active), or ``province_code``'s, or every one."""
    closed = close_due_directives(session, now, now.astimezone(tz).date())
    cancelled = cancel_settled(session)
    provinces: dict[str, list[Directive]] = {}
    for active in active_directives(session, province_code):
        if directive is None or active.id == directive.id:
            provinces.setdefault(active.province_code, []).append(active)
    return SweepStart([d.slug for d in closed], cancelled, dict(sorted(provinces.items())))


def sweep(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
          directive: Directive | None = None) -> SweepResult:
    """Enqueue every message the ladder calls for at ``now``; a repeat at ``now`` adds none.

    First closes the directives whose closing day has come (their queued messages cancelled),
    then cancels what is still queued about items that are no longer open, so nothing chases
    an item done since the last sweep even if its use case did not cancel it. ``directive``:
    sweep only that one (nothing when it is not active); default: every active directive.
    Province by province, district by district, one bulk insert per province: what the
    `escalation-sweep` flow does in tasks.
    """
    start = start_sweep(session, now, tz=tz, directive=directive)
    result = SweepResult(cancelled=start.cancelled, closed=start.closed,
                         directives=[d.slug for d in _newest_first(start)])
    for province in read_provinces(session, now, tz=tz, base_url=base_url, start=start):
        for district in province.district_codes:
            province.district(district)
        result.add(province.write(session))
    return result


def _newest_first(start: SweepStart) -> list[Directive]:
    """The swept directives in ``active_directives``' order (newest letter first)."""
    every = [d for directives in start.provinces.values() for d in directives]
    return sorted(every, key=lambda d: (d.issued_on, d.id), reverse=True)


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


@dataclass(frozen=True)
class DistrictOutcome:
    """What deciding one district gave: where it stands, and the open items a rung is due for."""

    code: str
    name_th: str
    standing: DistrictStanding
    due_items: int


def read_provinces(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
                   start: SweepStart) -> list[ProvinceSweep]:
    """What every province of the sweep needs, read in a few queries for all of them (the open
    items, the districts, the people, the items' counts, the LINE groups), one ``ProvinceSweep``
    each: at national scale a query per province would cost more than the deciding."""
    directives = [d for ds in start.provinces.values() for d in ds]
    if not directives:
        return []
    rules = {d.id: rules_for(d) for d in directives}
    today = now.astimezone(tz).date()
    horizon = max(r.calendar.add_working_days(today, _lookahead(r.ladder)) for r in rules.values())
    ids = list(rules)
    items: dict[str, list[tuple[OpenItem, DirectiveStep]]] = defaultdict(list)
    province_of = {d.id: d.province_code for d in directives}
    for item, step in open_items_due_by(session, horizon, ids):
        items[province_of[item.directive_id]].append((item, step))
    districts: dict[str, list[District]] = defaultdict(list)
    for district in districts_in(session, list(start.provinces)):
        districts[district.province_code].append(district)
    people: dict[str, list[User]] = defaultdict(list)
    for user in active_users(session):
        people[user.province_code].append(user)
    counts = item_counts_by_district(session, ids, today)
    groups = {code: group.group_id for code, group in groups_by_district(
        session, [d.code for ds in districts.values() for d in ds]).items()}
    return [ProvinceSweep(now, tz=tz, base_url=base_url, province_code=code, directives=ds,
                          rules=rules, districts=districts[code], people=people[code],
                          items=items[code], counts=counts, groups=groups)
            for code, ds in start.provinces.items()]


class ProvinceSweep:
    """One province's part of a sweep, on what ``read_provinces`` read: each district is decided
    (``district``, in any order, from any thread: nothing is read or written there), then
    ``write`` enqueues every row of the province in one insert."""

    def __init__(self, now: datetime, *, tz: ZoneInfo, base_url: str, province_code: str,
                 directives: list[Directive], rules: dict[int, DirectiveRules],
                 districts: list[District], people: list[User],
                 items: list[tuple[OpenItem, DirectiveStep]],
                 counts: dict[str, tuple[int, int, int]], groups: dict[str, str]) -> None:
        self.now, self.base_url, self.province_code = now, base_url, province_code
        self.today = now.astimezone(tz).date()
        self.directives = {d.id: d for d in directives}
        self.rules = {d_id: rules[d_id] for d_id in self.directives}
        alike: dict[Hashable, int] = {}  # rules compared once here, then by a small number
        self.rules_key = {d_id: alike.setdefault(_rules_key(r), len(alike)) for d_id, r in self.rules.items()}
        self.decided: dict[tuple[int, date], tuple[tuple[RungDue, ...], int]] = {}
        self.send_at = {d_id: r.calendar.next_send_slot(now, tz) for d_id, r in self.rules.items()}
        self.districts = {d.code: d for d in districts}
        self.people: dict[tuple[Role, str, str | None], list[User]] = defaultdict(list)
        for user in people:
            in_district = user.district_code if user.role in DISTRICT_ROLES else None
            self.people[(user.role, user.province_code, in_district)].append(user)
        self.items = items
        self.by_district: dict[str, list[tuple[OpenItem, DirectiveStep]]] = defaultdict(list)
        for item, step in self.items:
            self.by_district[item.district_code].append((item, step))
        self.counts = counts
        self.groups = groups
        self.due: dict[str, list[tuple[OpenItem, RungDue, int]]] = {}
        self._lock = Lock()

    @property
    def district_codes(self) -> list[str]:
        """Every district of the province, by code (one without items stands at "nothing")."""
        return sorted(self.districts.keys() | self.by_district.keys())

    def district(self, code: str) -> DistrictOutcome:
        """Decide the district's open items (the rung due today, if any) and say where it stands."""
        due = []
        for item, _step in self.by_district.get(code, []):
            rungs, days = self._decide(item.directive_id, item.due_on)
            due += [(item, rung, days) for rung in rungs if not rung.rung.via_digest]
        with self._lock:
            self.due[code] = due
        district = self.districts.get(code)
        return DistrictOutcome(code, district.name_th if district else code,
                               DistrictStanding(*self.counts.get(code, (0, 0, 0))),
                               len({item.id for item, _rung, _days in due}))

    def write(self, session: Session) -> SweepResult:
        """Every row of the province at once: ``add_to`` a batch of its own, written."""
        batch = OutboxBatch(session, self.now)
        self.add_to(batch)
        return self.result_of(batch.write())

    def add_to(self, batch: OutboxBatch) -> None:
        """Every row of the province, counted under its code (``batch.part``), into a batch that
        may hold other provinces' too (the flow writes every province's in one transaction; a
        district not decided yet is decided first). Rows are added in the items' order: due
        date, district, step; ``OutboxBatch.write`` reads the keys already queued in one go, so
        a repeat sweep renders nothing (tidtam/app/outbox.py)."""
        for code in self.by_district.keys() - self.due.keys():
            self.district(code)
        decided: dict[int, list[tuple[RungDue, int]]] = defaultdict(list)
        for due_here in self.due.values():
            for item, rung, days in due_here:
                decided[item.id].append((rung, days))
        batch.part = self.province_code
        grouped: dict[tuple[int, RungDue], list[tuple[OpenItem, int]]] = defaultdict(list)
        steps: dict[int, DirectiveStep] = {}
        for item, step in self.items:
            for due, days in decided.get(item.id, ()):
                if due.rung.grouped:
                    steps[step.id] = step
                    grouped[(step.id, due)].append((item, days))
                else:
                    self._for_item(batch, step, item, due, abs(days))
        for (step_id, due), late in grouped.items():
            self._grouped(batch, steps[step_id], due, late)
        batch.part = None

    def result_of(self, written: Enqueued) -> SweepResult:
        """The province's part of a written batch (``add_to``), as a sweep counts it."""
        mine = written.parts.get(self.province_code, Enqueued())
        return SweepResult(enqueued=mine.enqueued, already_queued=mine.already_queued,
                           no_channel=mine.no_channel, by_rung=mine.by_rung,
                           items_considered=len(self.items))

    def _decide(self, directive_id: int, due_on: date) -> tuple[tuple[RungDue, ...], int]:
        """The rungs due today for an item due on ``due_on`` (the district's and an escalation on
        top, ``domain.ladder.rungs_due``), and the working days from it to today.

        Worked out once per rules and due date: the items of a step share one due date, and
        directives with the same ladder and calendar decide alike.
        """
        key = (self.rules_key[directive_id], due_on)
        if key not in self.decided:
            rule = self.rules[directive_id]
            self.decided[key] = (rungs_due(due_on, self.today, rule.ladder, rule.calendar),
                                 rule.calendar.working_days_between(due_on, self.today))
        return self.decided[key]

    def _recipients(self, rung: EscalationRung, province: str, district: str | None) -> list[User]:
        people = []
        for role in rung.audience:
            people += self.people[(role, province, district if role in DISTRICT_ROLES else None)]
        return people

    def _for_item(self, batch: OutboxBatch, step: DirectiveStep, item: OpenItem, due: RungDue,
                  days: int) -> None:
        directive = self.directives[item.directive_id]
        message = Message(lambda: render_message(
            TEMPLATE_FOR_RUNG.get(due.rung.code, "late"), directive=directive, step=step,
            district=self.districts[item.district_code], districts_late=[], rung=due.rung.code,
            due_on=item.due_on, days=days, base_url=self.base_url, item_id=item.id))
        row = dict(rung=due.rung.code, occurrence=due.occurrence, subject_ref=f"item:{item.id}",
                   send_at=self.send_at[directive.id], district_code=item.district_code,
                   item_id=item.id, step_id=step.id)
        for user in self._recipients(due.rung, directive.province_code, item.district_code):
            for channel in due.rung.channels:
                batch.to_user(user, channel, message, **row)
        group = self.groups.get(item.district_code)
        if group and Channel.LINE in due.rung.channels and _speaks_to_district(due.rung):
            batch.add(Channel.LINE, message, address=group, recipient_ref=f"line-group:{group}",
                      who=f"LINE group of district {item.district_code}", **row)

    def _grouped(self, batch: OutboxBatch, step: DirectiveStep, due: RungDue,
                 late: list[tuple[OpenItem, int]]) -> None:
        directive = self.directives[step.directive_id]

        def render() -> tuple[str, str]:
            warned = warnings_sent(batch.session, [item.id for item, _ in late],
                                   self.rules[directive.id].ladder.district_codes)
            districts_late = [{"code": item.district_code,
                               "name_th": self.districts[item.district_code].name_th,
                               "days_late": days, "warned": warned.get(item.id, 0)}
                              for item, days in late]
            return render_message(
                TEMPLATE_FOR_RUNG.get(due.rung.code, "coordinator"), directive=directive, step=step,
                district=None, districts_late=districts_late, rung=due.rung.code, due_on=step.due_on,
                days=max(d["days_late"] for d in districts_late), base_url=self.base_url,
                item_id=None)

        message = Message(render)
        for user in self._recipients(due.rung, directive.province_code, None):
            for channel in due.rung.channels:
                batch.to_user(user, channel, message, rung=due.rung.code,
                              occurrence=due.occurrence, subject_ref=f"step:{step.id}",
                              send_at=self.send_at[directive.id], district_code=None,
                              item_id=None, step_id=step.id)


def warnings_sent(session: Session, item_ids: list[int], rungs: tuple[str, ...]) -> dict[int, int]:
    """How many times each item's district was actually told of it since its due date: the
    distinct (rung, occurrence) among its rows of ``rungs`` that were sent (a row still queued,
    failed or without a channel told nobody). What lets the provincial head's message say the
    districts "have been warned" only when they were."""
    if not item_ids or not rungs:
        return {}
    told: dict[int, set[tuple[str, ...]]] = defaultdict(set)
    for item_id, key in session.execute(
            select(OutboxMessage.item_id, OutboxMessage.idempotency_key)
            .where(col(OutboxMessage.item_id).in_(item_ids), col(OutboxMessage.rung).in_(rungs),
                   OutboxMessage.status == OutboxStatus.SENT)):
        told[item_id].add(tuple(key.split("|")[:2]))  # rung|occurrence|...
    return {item_id: len(times) for item_id, times in told.items()}


def _speaks_to_district(rung: EscalationRung) -> bool:
    return any(audience in DISTRICT_ROLES for audience in rung.audience)
