"""The coordinators' daily digest: one message a working day, on LINE and by email.

It lists, per directive, the districts late on each step, the steps due in the next
``UPCOMING_DAYS`` working days with the districts still open, the reports waiting for review,
and, for the province, the people whose LINE route LINE refused. It carries the ladder's
``via_digest`` rung (the coordinator's): the sweep sends no separate message for it, and the
districts that have reached it are marked "to chase". Runs inside the `coordinator-digest` flow.

A province following several letters gets ONE digest: a section per active directive, headed by
the letter's reference number and title, with that directive's own links. A directive whose
closing day has come is closed first (``close_due_directives``); loaded and closed directives
are never in it. The idempotency key stays one per coordinator, channel and day
(``digest|<day>|province:<code>|user:<id>|<channel>``), whatever the number of letters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from domain.access import Role
from domain.calendar import WorkCalendar
from domain.ladder import reaches, rungs_due
from models.directive import (
    Directive,
    DirectiveStep,
    TrackedItem,
    active_directives,
    open_items_due_by,
)
from models.org import District, Province
from models.outbox import Channel
from models.report import ReportStatus, reports_of
from models.user import User, active_users, broken_routes
from notifications.render import render_message
from tidtam.app.directives import close_due_directives
from tidtam.app.escalation import DirectiveRules, rules_for
from tidtam.app.outbox import Message, OutboxBatch

UPCOMING_DAYS = 3
CHANNELS = (Channel.LINE, Channel.EMAIL)
RUNG = "digest"


@dataclass(frozen=True)
class DistrictLine:
    """A district on a step's line: how late (0 before the due date), and whether to chase it."""

    code: str
    name_th: str
    days_late: int
    to_chase: bool  # it has reached the ladder's via_digest rung (or a later one)


@dataclass(frozen=True)
class StepLine:
    """One step and the districts it concerns: late ones, or those still open before its due date.

    ``everyone``: every district of the province, all equally late, so one phrase says it.
    """

    step: DirectiveStep
    districts: list[DistrictLine]
    everyone: bool = False


@dataclass(frozen=True)
class WaitingReport:
    district_code: str
    name_th: str
    submitted_at: datetime | None


@dataclass(frozen=True)
class DirectiveDigest:
    directive: Directive
    late: list[StepLine]
    upcoming: list[StepLine]
    waiting: list[WaitingReport]

    @property
    def empty(self) -> bool:
        return not (self.late or self.upcoming or self.waiting)

    @property
    def any_to_chase(self) -> bool:
        return any(d.to_chase for line in self.late for d in line.districts)


@dataclass(frozen=True)
class Digest:
    """What one province's coordinators are told today."""

    province: Province
    today: date
    sections: list[DirectiveDigest]
    broken: list[User]

    @property
    def empty(self) -> bool:
        return not (self.sections or self.broken)

    @property
    def late_count(self) -> int:
        """Late (district, step) pairs over every directive."""
        return sum(len(line.districts) for s in self.sections for line in s.late)

    @property
    def waiting_count(self) -> int:
        return sum(len(s.waiting) for s in self.sections)


@dataclass
class DigestResult:
    provinces: int = 0
    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    skipped: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # slugs closed automatically by this run
    # Each digest told and the coordinators it went to (for the flow's artifacts), in order.
    told: list[tuple[Digest, list[User]]] = field(default_factory=list, repr=False)


# --- What the digest says (plain computation over rows already read) ---------------------------

def late_and_upcoming(items: Iterable[tuple[TrackedItem, DirectiveStep]], rules: DirectiveRules,
                      districts: dict[str, District], today: date, *, province_districts: int,
                      upcoming_days: int = UPCOMING_DAYS) -> tuple[list[StepLine], list[StepLine]]:
    """Open items of one directive split into late (due before today) and due within
    ``upcoming_days`` working days (today included), each grouped by step, by due date."""
    digest_rung = next((r for r in rules.ladder.rungs if r.via_digest), None)
    horizon = rules.calendar.add_working_days(today, upcoming_days)
    late: dict[int, list[DistrictLine]] = defaultdict(list)
    upcoming: dict[int, list[DistrictLine]] = defaultdict(list)
    steps: dict[int, DirectiveStep] = {}
    for item, step in items:
        steps[step.id] = step
        name = districts[item.district_code].name_th
        if item.due_on < today:
            due = rungs_due(item.due_on, today, rules.ladder, rules.calendar)
            chase = digest_rung is not None and reaches(due, digest_rung)
            days = rules.calendar.working_days_between(item.due_on, today)
            late[step.id].append(DistrictLine(item.district_code, name, days, chase))
        elif item.due_on <= horizon:
            upcoming[step.id].append(DistrictLine(item.district_code, name, 0, False))
    return _by_step(late, steps, province_districts), _by_step(upcoming, steps, province_districts)


def _by_step(lines: dict[int, list[DistrictLine]], steps: dict[int, DirectiveStep],
             province_districts: int) -> list[StepLine]:
    ordered = sorted(lines, key=lambda step_id: (steps[step_id].due_on, steps[step_id].order))
    return [StepLine(steps[step_id], sorted(lines[step_id], key=lambda d: (-d.days_late, d.code)),
                     _everyone(lines[step_id], province_districts))
            for step_id in ordered]


def _everyone(districts: list[DistrictLine], province_districts: int) -> bool:
    return (len(districts) == province_districts > 1
            and len({(d.days_late, d.to_chase) for d in districts}) == 1)


# --- Reading and enqueueing --------------------------------------------------------------------

def build_digests(session: Session, today: date, province_code: str | None = None) -> list[Digest]:
    """Each province's digest for ``today`` (or only ``province_code``'s): a section per active
    directive (loaded and closed ones never); a directive whose offices are closed today
    (holiday, weekend, closure) says nothing, and a province with nothing to say gets no digest."""
    directives = sorted(active_directives(session, province_code), key=lambda d: d.id)
    rules = {d.id: rules_for(d) for d in directives}
    working = [d for d in directives if rules[d.id].calendar.is_working_day(today)]
    if not working:
        return []
    districts = {d.code: d for d in session.exec(select(District))}
    horizon = max(rules[d.id].calendar.add_working_days(today, UPCOMING_DAYS) for d in working)
    open_items: dict[int, list[tuple[TrackedItem, DirectiveStep]]] = defaultdict(list)
    for item, step in open_items_due_by(session, horizon):
        open_items[item.directive_id].append((item, step))
    digests = []
    for province_code in sorted({d.province_code for d in working}):
        count = sum(d.province_code == province_code for d in districts.values())
        sections = [_section(session, d, rules[d.id], open_items[d.id], districts, today, count)
                    for d in working if d.province_code == province_code]
        digest = Digest(session.get(Province, province_code), today,
                        [s for s in sections if not s.empty], broken_routes(session, province_code))
        if not digest.empty:
            digests.append(digest)
    return digests


def _section(session: Session, directive: Directive, rules: DirectiveRules,
             items: list[tuple[TrackedItem, DirectiveStep]], districts: dict[str, District],
             today: date, province_districts: int) -> DirectiveDigest:
    late, upcoming = late_and_upcoming(items, rules, districts, today,
                                       province_districts=province_districts)
    waiting = [WaitingReport(r.district_code, districts[r.district_code].name_th, r.submitted_at)
               for r in reports_of(session, directive.id) if r.status == ReportStatus.SUBMITTED]
    return DirectiveDigest(directive, late, upcoming, waiting)


def send_digests(session: Session, now: datetime, *, tz: ZoneInfo, base_url: str,
                 province_code: str | None = None) -> DigestResult:
    """Enqueue today's digest to every active coordinator (of ``province_code`` only, when given),
    once per channel; a re-run adds none.

    Nothing on a day the offices are closed. The rows wait for the first office-hour slot
    (08:30 when the flow runs at 08:00). Directives due to close are closed first, in every
    province.
    """
    today = now.astimezone(tz).date()
    result = DigestResult(closed=[d.slug for d in close_due_directives(session, now, today)])
    coordinators = defaultdict(list)
    for user in active_users(session):
        if user.role == Role.COORDINATOR:
            coordinators[user.province_code].append(user)
    batch = OutboxBatch(session, now)
    for digest in build_digests(session, today, province_code):
        result.provinces += 1
        result.told.append((digest, coordinators[digest.province.code]))
        if not coordinators[digest.province.code]:
            result.skipped.append(f"{digest.province.code}: no active coordinator")
        send_at = _calendar_of(digest).next_send_slot(now, tz)
        messages = {channel: Message(partial(render_message, "digest", digest=digest,
                                             channel=channel.value, base_url=base_url, tz=tz))
                    for channel in CHANNELS}
        for user in coordinators[digest.province.code]:
            for channel in CHANNELS:
                batch.to_user(user, channel, messages[channel], rung=RUNG, occurrence=digest.today,
                              subject_ref=f"province:{digest.province.code}", send_at=send_at)
    written = batch.write()
    result.enqueued, result.already_queued = written.enqueued, written.already_queued
    result.no_channel = written.no_channel
    return result


def _calendar_of(digest: Digest) -> WorkCalendar:
    """The send-time calendar: the first directive's (sections all work today)."""
    if digest.sections:
        return rules_for(digest.sections[0].directive).calendar
    return WorkCalendar()
