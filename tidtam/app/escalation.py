"""The escalation sweep's work: find open items, ask the ladder which rung applies, enqueue.

Runs inside the `escalation-sweep` flow; `now` is always given. Rungs marked ``via_digest``
(by default the coordinator's) enqueue nothing here: the `coordinator-digest` flow carries them.

One run handles every active directive of every province (or the one it is given): a directive
whose closing day has come is closed first (``close_due_directives``), and a loaded or closed
directive is never chased. Idempotency keys name the item or step (``item:{id}``,
``step:{id}``), which belong to one directive, so two letters never share a key.

The work is set-wise (issue 17, P1): what every province needs is read in a few queries as plain
rows (``read_provinces``), each rung is decided once per ladder and due date for the whole
country, and every province's rows are written at once (``write_provinces``: the keys already
there read per rung and day, only new rows rendered, one INSERT … ON CONFLICT DO NOTHING). A
``ProvinceSweep`` still decides district by district, so the flow can show each province and
each district as a task run of its own, and each district's standing (``domain.standing``) is
the board's, at the same instant.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from threading import Lock
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import String, Text, cast, type_coerce
from sqlmodel import Session, col, select

from domain.access import DISTRICT_ROLES, Role
from domain.calendar import WorkCalendar
from domain.directive import DirectiveSpec
from domain.ladder import EscalationRung, Ladder, RungDue, key_prefix, key_suffix, rungs_due
from domain.standing import DistrictStanding
from models.directive import (
    Directive,
    OpenItem,
    StepRow,
    active_directives,
    item_counts_by_district,
    open_item_rows,
)
from models.line import groups_by_district
from models.org import District
from models.outbox import (
    Channel,
    OutboxMessage,
    OutboxStatus,
    addressing,
    cancel_for_settled_items,
    cancel_grouped_for_closed_steps,  # noqa: F401  (tests reach it here)
    insert_new_rows,
    keys_present,
)
from models.user import User
from notifications.render import render_message
from tidtam.app.directives import close_due_directives
from tidtam.app.outbox import Enqueued

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
    cancelled, and the active directives left to chase, by province, with their rules."""

    closed: list[str]
    cancelled: int
    provinces: dict[str, list[Directive]]  # province code → its active directives, newest first
    rules: dict[int, DirectiveRules] = field(default_factory=dict)  # directive id → its rules

    @property
    def directives(self) -> list[str]:
        return [d.slug for directives in self.provinces.values() for d in directives]


def start_sweep(session: Session, now: datetime, *, tz: ZoneInfo, directive: Directive | None = None,
                province_code: str | None = None) -> SweepStart:
    """Close the directives whose closing day has come (their queued messages cancelled), cancel
    what is still queued about items no longer open, and list what is left to chase:
    ``directive`` only (nothing when it is not active), or ``province_code``'s, or every one.

    The active directives are read once, and each one's definition validated once
    (``_specs``: kept from sweep to sweep while its stored text is the same), for closing and
    for the rules alike."""
    every = active_directives(session, definitions=False)  # _specs reads them as stored
    specs = _specs(session, every)
    closed = close_due_directives(session, now, now.astimezone(tz).date(), active=every,
                                  spec_of=lambda d: specs[d.id][0])
    cancelled = cancel_settled(session)
    shut = {d.id for d in closed}
    provinces: dict[str, list[Directive]] = {}
    for active in every:
        if active.id in shut or (province_code and active.province_code != province_code):
            continue
        if directive is None or active.id == directive.id:
            provinces.setdefault(active.province_code, []).append(active)
    rules = {d.id: specs[d.id][1] for ds in provinces.values() for d in ds}
    return SweepStart([d.slug for d in closed], cancelled, dict(sorted(provinces.items())), rules)


# directive id → (its definition as stored, validated, its rules); see ``_specs``
_SPECS: dict[int, tuple[str, DirectiveSpec, DirectiveRules]] = {}
_SPECS_KEPT = 4096


def _specs(session: Session, directives: list[Directive],
           ) -> dict[int, tuple[DirectiveSpec, DirectiveRules]]:
    """Each directive's definition validated (``DirectiveSpec``) and its rules (``rules_for``),
    kept by id and the definition's stored text (read in one query): a sweep decodes and
    validates only a definition it has not seen as it is now, so a repeat sweep none."""
    if not directives:
        return {}
    session.flush()  # a definition changed in this session is read as it will be stored
    stored = dict(session.connection().execute(
        select(Directive.id, cast(col(Directive.definition), Text))
        .where(col(Directive.id).in_([d.id for d in directives]))).all())
    if len(_SPECS) > _SPECS_KEPT:
        _SPECS.clear()
    found = {}
    for directive in directives:
        text = stored.get(directive.id)
        kept = _SPECS.get(directive.id)
        if kept is None or text is None or kept[0] != text:
            spec = DirectiveSpec.model_validate(
                directive.definition if text is None else json.loads(text))
            kept = (text, spec, DirectiveRules(spec.ladder, spec.work_calendar()))
            if text is not None:
                _SPECS[directive.id] = kept
        found[directive.id] = kept[1:]
    return found


def sweep(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
          directive: Directive | None = None) -> SweepResult:
    """Enqueue every message the ladder calls for at ``now``; a repeat at ``now`` adds none.

    First closes the directives whose closing day has come (their queued messages cancelled),
    then cancels what is still queued about items that are no longer open, so nothing chases
    an item done since the last sweep even if its use case did not cancel it. ``directive``:
    sweep only that one (nothing when it is not active); default: every active directive.
    Read set-wise (``read_provinces``), decided district by district, written in one go
    (``write_provinces``): what the `escalation-sweep` flow does in tasks.
    """
    with without_cycle_collection():
        start = start_sweep(session, now, tz=tz, directive=directive)
        result = SweepResult(cancelled=start.cancelled, closed=start.closed,
                             directives=[d.slug for d in _newest_first(start)])
        provinces = read_provinces(session, now, tz=tz, base_url=base_url, start=start,
                                   standings=False)
        for part in write_provinces(session, now, provinces):
            result.add(part)
        # Freed here, while collection is still paused: alive when it resumes, the provinces'
        # ~100,000 young objects would be walked by the collection that resuming sets off.
        del provinces, start
    return result


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """No automatic cyclic garbage collection inside the block (as it was after it).

    The national sweep makes some 100,000 short-lived objects (rows, keys, tuples), which
    reference counting frees; each of the collections they would trigger walks every
    long-lived object of the process (150,000 and more: SQLAlchemy, Prefect, the models),
    and took two thirds of deciding the country's messages (bench/README.md, P1).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _newest_first(start: SweepStart) -> list[Directive]:
    """The swept directives in ``active_directives``' order (newest letter first)."""
    every = [d for directives in start.provinces.values() for d in directives]
    return sorted(every, key=lambda d: (d.issued_on, d.id), reverse=True)


# --- Cancelling what no longer needs saying -----------------------------------------------------

def cancel_settled(session: Session) -> int:
    """Cancel queued messages whose items are all done: per-item rows and grouped rows."""
    return cancel_for_settled_items(session)


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


class _Due(NamedTuple):
    """A rung due today as the sweep uses it: the rung and its occurrence, the keys' start
    (``rung|occurrence|``) and the rung's number in this sweep (what is worked out per rung,
    such as its recipients in a district, is looked up by it)."""

    due: RungDue
    head: str
    number: int


class _Decisions:
    """The rungs due today per rules and due date, shared by the provinces of one sweep (most
    follow alike rules: each due date is decided once for the country). Rules and rungs are
    compared by value once, then by a small number; the rules are kept, so an identity key
    stays theirs."""

    def __init__(self) -> None:
        self.numbers: dict[Hashable, int] = {}
        self.by_identity: dict[int, int] = {}
        self.kept: list[DirectiveRules] = []
        self.rungs: dict[EscalationRung, int] = {}
        self.decided: dict[tuple[int, date], tuple[tuple[_Due, ...], int]] = {}
        self._lock = Lock()

    def number(self, rules: DirectiveRules) -> int:
        found = self.by_identity.get(id(rules))  # the same rules object: compared once
        if found is None:
            self.kept.append(rules)  # kept alive, so its id stays its own
            found = self.by_identity[id(rules)] = self.numbers.setdefault(
                _rules_key(rules), len(self.numbers))
        return found

    def decide(self, number: int, rules: DirectiveRules, due_on: date, today: date,
               ) -> tuple[tuple[_Due, ...], int]:
        """The rungs of ``domain.ladder.rungs_due`` that enqueue something (not ``via_digest``)
        and the working days from ``due_on`` to today, once per rules and due date."""
        key = (number, due_on)
        found = self.decided.get(key)
        if found is not None:
            return found
        with self._lock:  # districts may be decided from several threads (the flow's tasks)
            found = self.decided.get(key)
            if found is not None:
                return found
            dues = tuple(_Due(due, key_prefix(due.rung.code, due.occurrence, ""),
                              self.rungs.setdefault(due.rung, len(self.rungs)))
                         for due in rungs_due(due_on, today, rules.ladder, rules.calendar)
                         if not due.rung.via_digest)
            found = self.decided[key] = (
                dues, rules.calendar.working_days_between(due_on, today))
        return found


def _lookahead(ladder: Ladder) -> int:
    return max(0, -min(r.offset for r in ladder.rungs))


@dataclass(frozen=True)
class DistrictOutcome:
    """What deciding one district gave: where it stands, and the open items a rung is due for."""

    code: str
    name_th: str
    standing: DistrictStanding
    due_items: int


class DistrictRow(NamedTuple):
    """A district as a message names it (plain row)."""

    code: str
    province_code: str
    name_th: str
    name_en: str


class PersonRow(NamedTuple):
    """Who a rung may speak to, with their addresses (plain row)."""

    id: int
    username: str
    role: Role
    province_code: str | None
    district_code: str | None
    email: str | None
    line_user_id: str | None
    line_route_error: str | None


def _districts(session: Session, province_codes: list[str]) -> list[DistrictRow]:
    make = tuple.__new__  # rows fetched at once (iterating a result fetches one by one)
    return [make(DistrictRow, row) for row in session.connection().execute(
        select(District.code, District.province_code, District.name_th, District.name_en)
        .where(col(District.province_code).in_(province_codes)).order_by(District.code)).all()]


_ROLES = {str(role.value): role for role in Role}


def _people(session: Session, province_codes: list[str]) -> list[PersonRow]:
    """Everyone active in these provinces, by id (``models.user.active_users``' order). The
    role is read as text and looked up (the column's enum type converts row by row)."""
    make, roles = tuple.__new__, _ROLES
    return [make(PersonRow, (person_id, username, roles.get(role) or Role(role), *rest))
            for person_id, username, role, *rest in session.connection().execute(
                select(User.id, User.username, type_coerce(User.role, String), User.province_code,
                       User.district_code, User.email, User.line_user_id, User.line_route_error)
                .where(User.is_active == True, col(User.province_code).in_(province_codes))  # noqa: E712
                .order_by(User.id)).all()]


def read_provinces(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
                   start: SweepStart, standings: bool = True) -> list[ProvinceSweep]:
    """What every province of the sweep needs, read in a few queries for all of them, as plain
    rows (the open items and their steps, the districts, the people, the items' counts, the LINE
    groups), one ``ProvinceSweep`` each: at national scale a query per province, or an ORM
    object per row, would cost more than the deciding."""
    directives = [d for ds in start.provinces.values() for d in ds]
    if not directives:
        return []
    rules = (start.rules if all(d.id in start.rules for d in directives)
             else _rules_of(directives))
    today = now.astimezone(tz).date()
    horizon = max(r.calendar.add_working_days(today, _lookahead(r.ladder)) for r in rules.values())
    ids = list(rules)
    items: dict[str, list[OpenItem]] = defaultdict(list)
    province_of = {d.id: d.province_code for d in directives}
    open_items, steps = open_item_rows(session, horizon, ids)
    for item in open_items:
        items[province_of[item.directive_id]].append(item)
    codes = list(start.provinces)
    districts: dict[str, list[DistrictRow]] = defaultdict(list)
    for district in _districts(session, codes):
        districts[district.province_code].append(district)
    people: dict[str, list[PersonRow]] = defaultdict(list)
    for person in _people(session, codes):
        people[person.province_code].append(person)
    # Where each district stands (``ProvinceSweep.district``: the flow's district task runs);
    # ``sweep`` alone never asks.
    counts = item_counts_by_district(session, ids, today) if standings else {}
    groups = {code: group.group_id for code, group in groups_by_district(
        session, [d.code for ds in districts.values() for d in ds]).items()}
    decisions = _Decisions()
    return [ProvinceSweep(now, tz=tz, base_url=base_url, province_code=code, directives=ds,
                          rules=rules, districts=districts[code], people=people[code],
                          items=items[code], steps=steps, counts=counts, groups=groups,
                          decisions=decisions)
            for code, ds in start.provinces.items()]


def _rules_of(directives: list[Directive]) -> dict[int, DirectiveRules]:
    """``rules_for`` each directive, worked out once for directives whose ladder, closures and
    office hours are written alike (a national letter's copies)."""
    alike: dict[str, DirectiveRules] = {}
    rules = {}
    for directive in directives:
        definition = directive.definition
        key = json.dumps([definition.get(part) for part in _RULE_PARTS], sort_keys=True,
                         default=str)
        if key not in alike:
            alike[key] = rules_for(directive)
        rules[directive.id] = alike[key]
    return rules


_RULE_PARTS = ("ladder", "closures", "office_hours")  # all DirectiveRules is made of


class _To(NamedTuple):
    """A recipient on a channel: the key's end, the row's address columns (channel, recipient,
    status, last_error), who it is."""

    suffix: str
    addressing: tuple[Any, Any, Any, Any]
    no_address: bool
    user_id: int | None


class _Message(NamedTuple):
    """A message the sweep means to enqueue, as little as lets its keys be made and checked
    before anything else is: its key's first part (rung, occurrence, subject), the rung due,
    the district its recipients are found in (None: a step's grouped message), and what it is
    about: the item and its working days late, or the step and its late items with theirs.
    Its recipients and text are worked out only if some key of it is new
    (``ProvinceSweep.recipients``, ``ProvinceSweep.text``)."""

    prefix: str
    suffixes: tuple[str, ...]  # the ends of its keys: ``prefix + suffix`` each (``_suffixes``)
    due: _Due
    district: str | None
    subject: OpenItem | StepRow
    days: int | list[tuple[OpenItem, int]]


class ProvinceSweep:
    """One province's part of a sweep, on what ``read_provinces`` read: each district is decided
    (``district``, in any order, from any thread: nothing is read or written there), then
    ``write`` (or ``write_provinces``, for many) enqueues every row of the province at once."""

    def __init__(self, now: datetime, *, tz: ZoneInfo, base_url: str, province_code: str,
                 directives: list[Directive], rules: dict[int, DirectiveRules],
                 districts: list[DistrictRow], people: list[PersonRow], items: list[OpenItem],
                 steps: dict[int, StepRow], counts: dict[str, tuple[int, int, int]],
                 groups: dict[str, str],
                 decisions: _Decisions | None = None) -> None:
        self.now, self.base_url, self.province_code = now, base_url, province_code
        self.today = now.astimezone(tz).date()
        self.directives = {d.id: d for d in directives}
        self.rules = {d_id: rules[d_id] for d_id in self.directives}
        self.decisions = decisions or _Decisions()  # read_provinces shares one among them
        self.rules_key = {d_id: self.decisions.number(r) for d_id, r in self.rules.items()}
        self.send_at = {d_id: r.calendar.next_send_slot(now, tz) for d_id, r in self.rules.items()}
        self.districts = {d.code: d for d in districts}
        self.people: dict[tuple[Role, str, str | None], list[PersonRow]] = defaultdict(list)
        for person in people:
            in_district = person.district_code if person.role in DISTRICT_ROLES else None
            self.people[(person.role, person.province_code, in_district)].append(person)
        self.items = items
        self.steps = steps
        self.counts = counts
        self.groups = groups
        self._who: dict[tuple[int, str | None], list[tuple[str, PersonRow | None, str, str | None]]] = {}
        self._suffixes: dict[tuple[int, str | None], tuple[str, ...]] = {}
        self._to: dict[tuple[int, str | None], list[_To]] = {}

    @cached_property
    def by_district(self) -> dict[str, list[OpenItem]]:
        """The province's open items by district (the flow's district task runs; a ``sweep``
        never asks)."""
        found: dict[str, list[OpenItem]] = defaultdict(list)
        for item in self.items:
            found[item.district_code].append(item)
        return found

    @property
    def district_codes(self) -> list[str]:
        """Every district of the province, by code (one without items stands at "nothing")."""
        return sorted(self.districts.keys() | self.by_district.keys())

    def district(self, code: str) -> DistrictOutcome:
        """Decide the district's open items (the rungs due today, if any) and say where it
        stands. Reads and writes nothing (any order, any thread): ``messages`` decides alike."""
        due_items = set()
        for item in self.by_district.get(code, []):
            dues, _days = self._decide(item.directive_id, item.due_on)
            if dues:
                due_items.add(item.id)
        district = self.districts.get(code)
        return DistrictOutcome(code, district.name_th if district else code,
                               DistrictStanding(*self.counts.get(code, (0, 0, 0))), len(due_items))

    def write(self, session: Session) -> SweepResult:
        """Every row of the province at once (``write_provinces`` of this one)."""
        [result] = write_provinces(session, self.now, [self])
        return result

    def messages(self) -> list[_Message]:
        """Every message of the province, in the items' order (due date, district, step), each
        item's district rung before its escalation, the grouped messages after every item's.
        Decided here as ``district`` decides (the same cached ``_decide``), whether or not the
        districts were decided before. Plain tuples: nothing is rendered or addressed here."""
        messages: list[_Message] = []
        add, make = messages.append, tuple.__new__  # a NamedTuple's own __new__ is Python code
        grouped: dict[tuple[int, int, date], tuple[_Due, list[tuple[OpenItem, int]]]] = {}
        plans: dict[tuple[int, date], tuple[tuple[tuple[_Due, bool], ...], int, int]] = {}
        suffixes = self._suffixes
        for item in self.items:
            item_id, directive_id, step_id, district, due_on = item
            plan = plans.get((directive_id, due_on))
            if plan is None:  # once per directive and due date (the items of a step share one)
                dues, days = self._decide(directive_id, due_on)
                plan = plans[(directive_id, due_on)] = (
                    tuple((due, due.due.rung.grouped) for due in dues), days, abs(days))
            dues, days, late = plan
            for due, is_grouped in dues:
                if is_grouped:
                    key = (step_id, due.number, due.due.occurrence)
                    grouped.setdefault(key, (due, []))[1].append((item, days))
                    continue
                ends = suffixes.get((due.number, district))
                if ends is None:
                    ends = self._suffixes_of(due, district)
                add(make(_Message, (f"{due.head}item:{item_id}", ends, due, district, item, late)))
        for (step_id, _number, _occurrence), (due, late_items) in grouped.items():
            ends = suffixes.get((due.number, None))
            if ends is None:
                ends = self._suffixes_of(due, None)
            add(_Message(f"{due.head}step:{step_id}", ends, due, None, self.steps[step_id],
                         late_items))
        return messages

    def _suffixes_of(self, due: _Due, district: str | None) -> tuple[str, ...]:
        """The ends of a message's keys (``prefix + suffix`` each), one per recipient and
        channel, in ``recipients``' order; worked out once per rung and district."""
        found = self._suffixes[(due.number, district)] = tuple(
            suffix for suffix, _person, _channel, _group in self._whom(due, district))
        return found

    def recipients(self, message: _Message) -> list[_To]:
        """Everyone the message goes to, on each channel (``suffixes``' order), with the
        addresses of its rows; worked out once per rung and district, for new messages only."""
        at = (message.due.number, message.district)
        found = self._to.get(at)
        if found is None:
            found = self._to[at] = [
                _person_to(suffix, person, channel) if person is not None
                else _to(suffix, channel, group,
                         f"LINE group of district {message.district}", None)
                for suffix, person, channel, group in self._whom(message.due, message.district)]
        return found

    def text(self, message: _Message, warned: _Warned) -> tuple[str, str]:
        """The message's (subject, body), rendered (only ever for a message with a new row)."""
        code = message.due.due.rung.code
        if message.district is not None:
            item = message.subject
            return render_message(
                TEMPLATE_FOR_RUNG.get(code, "late"), directive=self.directives[item.directive_id],
                step=self.steps[item.step_id], district=self.districts[item.district_code],
                districts_late=[], rung=code, due_on=item.due_on, days=message.days,
                base_url=self.base_url, item_id=item.id)
        step, late = message.subject, message.days
        told = warned.of(self.rules[step.directive_id].ladder.district_codes)
        districts_late = [{"code": item.district_code,
                           "name_th": self.districts[item.district_code].name_th,
                           "days_late": days, "warned": told.get(item.id, 0)}
                          for item, days in late]
        return render_message(
            TEMPLATE_FOR_RUNG.get(code, "coordinator"), directive=self.directives[step.directive_id],
            step=step, district=None, districts_late=districts_late, rung=code,
            due_on=step.due_on, days=max(d["days_late"] for d in districts_late),
            base_url=self.base_url, item_id=None)

    def want_warnings(self, message: _Message, warned: _Warned) -> None:
        """A new grouped message counts its districts' warnings (``text``): say which, before
        any text is rendered, so one query reads them all."""
        if message.district is None:
            step = message.subject
            warned.want(self.rules[step.directive_id].ladder.district_codes,
                        [item.id for item, _days in message.days])

    def about(self, message: _Message) -> tuple[str, datetime, str | None, int | None, int]:
        """What the message's rows say they are about: rung, send time, district, item, step."""
        subject = message.subject
        if message.district is not None:
            return (message.due.due.rung.code, self.send_at[subject.directive_id],
                    subject.district_code, subject.id, subject.step_id)
        return (message.due.due.rung.code, self.send_at[subject.directive_id], None, None,
                subject.id)

    def result_of(self, written: Enqueued) -> SweepResult:
        """The province's part of what was written, as a sweep counts it."""
        mine = written.parts.get(self.province_code, Enqueued())
        return SweepResult(enqueued=mine.enqueued, already_queued=mine.already_queued,
                           no_channel=mine.no_channel, by_rung=mine.by_rung,
                           items_considered=len(self.items))

    def _decide(self, directive_id: int, due_on: date) -> tuple[tuple[_Due, ...], int]:
        """The rungs due today for an item due on ``due_on`` (the district's and an escalation on
        top, ``domain.ladder.rungs_due``; those ``via_digest`` left out), and the working days
        from it to today.

        Worked out once per rules and due date: the items of a step share one due date, and
        directives with the same ladder and calendar decide alike.
        """
        return self.decisions.decide(self.rules_key[directive_id], self.rules[directive_id],
                                     due_on, self.today)

    def _whom(self, due: _Due, district: str | None,
              ) -> list[tuple[str, PersonRow | None, str, str | None]]:
        """Everyone a rung speaks to about a district's item (``district``) or a step (None), on
        each of its channels, in the order of its audience, the people's ids and its channels;
        for an item, the district's LINE group after them: (key suffix, person or None,
        channel, LINE group or None). Worked out once per rung and district."""
        at = (due.number, district)
        found = self._who.get(at)
        if found is None:
            rung, found = due.due.rung, []
            channels = [str(channel) for channel in rung.channels]
            for role in rung.audience:
                place = district if role in DISTRICT_ROLES else None
                for person in self.people.get((role, self.province_code, place), ()):
                    # key_suffix(f"user:{id}", channel) without its checks: neither part can
                    # hold a "|" (an integer, a channel's name)
                    found += [(f"|user:{person.id}|{channel}", person, channel, None)
                              for channel in channels]
            group = self.groups.get(district) if district is not None else None
            if group and Channel.LINE in rung.channels and _speaks_to_district(rung):
                found.append((key_suffix(f"line-group:{group}", str(Channel.LINE)), None,
                              Channel.LINE, group))
            self._who[at] = found
        return found


def _person_to(suffix: str, person: PersonRow, channel: str) -> _To:
    return _to(suffix, channel, _address_of(person, channel), person.username, person.id)


def _address_of(person: PersonRow, channel: str) -> str | None:
    """``tidtam.app.outbox.address_of`` for a plain row."""
    if channel == Channel.EMAIL:
        return person.email or None
    if channel == Channel.LINE:
        return None if person.line_route_error else (person.line_user_id or None)
    return None


def _to(suffix: str, channel: str, address: str | None, who: str, user_id: int | None) -> _To:
    where = addressing(channel, address, who)
    return _To(suffix, (where["channel"], where["recipient"], where["status"],
                        where["last_error"]), address is None, user_id)


class _Warned:
    """How many times each district was told of its late items (``warnings_sent``), for every
    grouped message of a write: read in one query per set of rungs, when the first grouped
    message is rendered (a repeat sweep renders none, and reads nothing)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.wanted: dict[tuple[str, ...], set[int]] = defaultdict(set)
        self.read: dict[tuple[str, ...], dict[int, int]] = {}

    def want(self, rungs: tuple[str, ...], item_ids: list[int]) -> None:
        self.wanted[rungs].update(item_ids)

    def of(self, rungs: tuple[str, ...]) -> dict[int, int]:
        if rungs not in self.read:
            self.read[rungs] = warnings_sent(self.session, sorted(self.wanted[rungs]), rungs)
        return self.read[rungs]


def write_provinces(session: Session, now: datetime, provinces: list[ProvinceSweep],
                    ) -> list[SweepResult]:
    """Every province's rows in one go, each province's counted apart. Keys first: every
    message's keys are made (plain strings, nothing rendered or addressed) and the database is
    asked set-wise which are there (``keys_present``: on SQLite one ``group_concat`` over the
    key index's range per rung and day); a message whose keys are all there is counted and
    dropped, so a repeat sweep builds nothing more. Only the new messages are addressed and
    rendered, and their new rows inserted in one INSERT … ON CONFLICT (idempotency_key) DO
    NOTHING (a key another sweep wrote meanwhile is skipped). Rows go in in the order the
    provinces and their items come, a key repeated within the write once."""
    with without_cycle_collection():
        return _write(session, now, provinces)


_COLUMNS = ("idempotency_key", "channel", "recipient", "status", "last_error", "user_id", "rung",
            "next_try_at", "created_at", "district_code", "item_id", "step_id", "subject", "body")


def _write(session: Session, now: datetime, provinces: list[ProvinceSweep]) -> list[SweepResult]:
    planned: list[tuple[ProvinceSweep, list[tuple[_Message, list[str]]]]] = []
    heads: set[str] = set()
    every_key: list[str] = []
    for province in provinces:
        mine = []
        for message in province.messages():
            prefix = message.prefix
            keys = [prefix + suffix for suffix in message.suffixes]
            mine.append((message, keys))
            heads.add(message.due.head)
            every_key += keys
        planned.append((province, mine))
    present = keys_present(session, every_key, heads)
    del every_key
    written = Enqueued()
    new_messages = []
    there = present.__contains__
    for province, mine in planned:
        already = 0
        for message, keys in mine:
            if all(map(there, keys)):  # a repeat: every row of it is there already
                already += len(keys)
            else:
                new_messages.append((province, message, keys))
        part = written.parts.setdefault(province.province_code, Enqueued())
        written.already_queued += already
        part.already_queued += already
    del planned
    if not new_messages:
        return [province.result_of(written) for province in provinces]
    warned = _Warned(session)
    for province, message, _keys in new_messages:
        province.want_warnings(message, warned)
    rows: list[tuple] = []
    taken: set[str] = set()
    for province, message, keys in new_messages:
        text = None
        rung, send_at, district_code, item_id, step_id = province.about(message)
        for key, to in zip(keys, province.recipients(message), strict=True):
            if key in present or key in taken:
                continue
            taken.add(key)
            if text is None:
                text = province.text(message, warned)
            rows.append((key, *to.addressing, to.user_id, rung, send_at, now, district_code,
                         item_id, step_id, *text))
    inserted = insert_new_rows(session, _COLUMNS, rows) if rows else set()
    for province, message, keys in new_messages:
        counts = (written, written.parts.setdefault(province.province_code, Enqueued()))
        if inserted.isdisjoint(keys):  # every row of the message was there already
            for count in counts:
                count.already_queued += len(keys)
            continue
        rung = message.due.due.rung.code
        for key, to in zip(keys, province.recipients(message), strict=True):
            fresh = key in inserted
            inserted.discard(key)  # a key repeated within the write counts once
            for count in counts:
                if fresh:
                    count.enqueued += 1
                    count.no_channel += to.no_address
                    count.by_rung[rung] = count.by_rung.get(rung, 0) + 1
                else:
                    count.already_queued += 1
    return [province.result_of(written) for province in provinces]


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
