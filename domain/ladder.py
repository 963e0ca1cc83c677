"""The escalation ladder: who is told, how, and when, as an item stays open past its due date.

Two tracks run side by side (docs/architecture.md, "The escalation ladder"):

- the district's: the notices (rungs at or before the due date: ``reminder-3``, ``reminder-1``,
  ``due-today``), each said once, then ``late`` every ``late.every`` working days, at most
  ``late.up_to`` times, until the item is done;
- the escalations (rungs after the due date: ``coordinator``, ``provincial-head``), one at a
  time, each repeated every ``renotify_every`` working days until the next one starts.

An escalation comes on top of the district's track, never instead of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from domain.access import Role
from domain.calendar import WorkCalendar
from domain.errors import InvalidInput

CHANNELS = ("line", "email", "webhook")


# Who a rung may speak to: the roles that carry out or answer for a province's work.
AUDIENCES = (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD, Role.COORDINATOR, Role.PROVINCIAL_HEAD)
DISTRICT_AUDIENCES = (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD)
LATE = "late"  # the code of the district's repeated reminders after the due date


@dataclass(frozen=True)
class EscalationRung:
    """One step of the ladder: reached ``offset`` working days from the due date.

    ``via_digest``: the rung speaks to the coordinators through their daily digest (the
    `coordinator-digest` flow) instead of messages of its own. Left out, it is true for a
    rung whose only audience is the coordinator (docs/architecture.md, "The escalation ladder":
    escalations to a coordinator are grouped into the digest); write ``via_digest: false`` where
    the digest is not deployed.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    code: str
    offset: int
    audience: tuple[Role, ...]
    channels: tuple[str, ...]
    grouped: bool = False
    via_digest: bool | None = None

    def __post_init__(self) -> None:
        if not self.audience:
            raise InvalidInput(f"rung {self.code}: audience is empty",
                               f"ขั้น {self.code}: ไม่ได้ระบุผู้รับ")
        outside = [str(role) for role in self.audience if role not in AUDIENCES]
        if outside:
            raise InvalidInput(f"rung {self.code}: the ladder does not speak to {', '.join(outside)}",
                               f"ขั้น {self.code}: ส่งถึง {', '.join(outside)} ไม่ได้")
        coordinators_only = tuple(self.audience) == (Role.COORDINATOR,)
        if self.via_digest is None:
            object.__setattr__(self, "via_digest", coordinators_only)
        elif self.via_digest and not coordinators_only:
            raise InvalidInput(f"rung {self.code}: via_digest needs audience [coordinator] only",
                               f"ขั้น {self.code}: via_digest ใช้ได้เมื่อผู้รับมีเพียง coordinator")
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels:
            raise InvalidInput(f"rung {self.code}: channels must be some of {', '.join(CHANNELS)}",
                               f"ขั้น {self.code}: ช่องทางต้องเป็น {', '.join(CHANNELS)}")


@dataclass(frozen=True)
class LateRule:
    """After the due date, while the item is open, its district hears again every ``every``
    working days (due date + every, + 2 × every, ...), at most ``up_to`` times (None: until done).

    The rung's code is ``late``; it speaks to the district only: the coordinator's and the
    provincial head's rungs run beside it, never instead of it.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    every: int = 2
    up_to: int | None = 5
    audience: tuple[Role, ...] = (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD)
    channels: tuple[str, ...] = ("line", "email")

    def __post_init__(self) -> None:
        if self.every < 1:
            raise InvalidInput("late.every must be at least 1 working day",
                               "late.every ต้องอย่างน้อย 1 วันทำการ")
        if self.up_to is not None and self.up_to < 1:
            raise InvalidInput("late.up_to must be at least 1 (or left out: until done)",
                               "late.up_to ต้องอย่างน้อย 1 ครั้ง (หรือไม่ระบุ: จนกว่าจะเสร็จ)")
        outside = [str(role) for role in self.audience if role not in DISTRICT_AUDIENCES]
        if outside or not self.audience:
            raise InvalidInput(
                f"late speaks to the district only ({', '.join(map(str, DISTRICT_AUDIENCES))}), "
                f"not {', '.join(outside) or 'nobody'}; the coordinator and the provincial head "
                "have rungs of their own",
                f"late แจ้งได้เฉพาะอำเภอ ({', '.join(map(str, DISTRICT_AUDIENCES))}) "
                f"ไม่ใช่ {', '.join(outside) or 'ไม่มีผู้รับ'} ผู้ประสานงานและพัฒนาการจังหวัดมีขั้นของตนเอง")
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels:
            raise InvalidInput(f"late: channels must be some of {', '.join(CHANNELS)}",
                               f"late: ช่องทางต้องเป็น {', '.join(CHANNELS)}")

    @property
    def rung(self) -> EscalationRung:
        """The ``late`` rung as the sweep enqueues it (its offset: the first repeat's)."""
        return EscalationRung(LATE, self.every, self.audience, self.channels)


@dataclass(frozen=True)
class Ladder:
    """The rungs of one directive, sorted by offset; how often an escalation (a rung after the
    due date) repeats; and the district's ``late`` reminders (None: the district hears nothing
    after the due date)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    rungs: tuple[EscalationRung, ...]
    renotify_every: int = 2
    late: LateRule | None = LateRule()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rungs", tuple(sorted(self.rungs, key=lambda r: r.offset)))
        _refuse_repeats("code", [r.code for r in self.rungs], "รหัสขั้น")
        _refuse_repeats("offset", [r.offset for r in self.rungs], "จำนวนวันทำการ")
        if not self.rungs:
            raise InvalidInput("a ladder needs at least one rung", "ต้องมีขั้นการติดตามอย่างน้อย 1 ขั้น")
        if self.renotify_every < 1:
            raise InvalidInput("renotify_every must be at least 1 working day",
                               "renotify_every ต้องอย่างน้อย 1 วันทำการ")
        if LATE in (r.code for r in self.rungs):
            raise InvalidInput("the rung code 'late' is the late: setting's; write late: {every, up_to}",
                               "รหัสขั้น 'late' สงวนไว้สำหรับ late: ให้เขียน late: {every, up_to}")
        for rung in self.escalations:
            if any(role in DISTRICT_AUDIENCES for role in rung.audience):
                raise InvalidInput(
                    f"rung {rung.code}: after the due date the district hears through late:; "
                    "a rung with offset > 0 speaks to the coordinator or the provincial head only",
                    f"ขั้น {rung.code}: หลังวันครบกำหนด อำเภอได้รับแจ้งผ่าน late: "
                    "ขั้นที่ offset มากกว่า 0 แจ้งได้เฉพาะผู้ประสานงานหรือพัฒนาการจังหวัด")

    @property
    def notices(self) -> tuple[EscalationRung, ...]:
        """The rungs at or before the due date: each said once, on its day."""
        return tuple(r for r in self.rungs if r.offset <= 0)

    @property
    def escalations(self) -> tuple[EscalationRung, ...]:
        """The rungs after the due date: one at a time, on top of the district's ``late``."""
        return tuple(r for r in self.rungs if r.offset > 0)

    @property
    def district_codes(self) -> tuple[str, ...]:
        """The codes of the rungs that tell the district after its due date has come: what
        "the district has been warned" counts."""
        told = [r.code for r in self.notices
                if r.offset == 0 and any(a in DISTRICT_AUDIENCES for a in r.audience)]
        return (*told, LATE) if self.late else tuple(told)


def _refuse_repeats(field: str, values: list[Any], label_th: str) -> None:
    """Two rungs with one code or one offset would make the ladder ambiguous."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise InvalidInput(f"rungs repeat {field} {', '.join(repeated)}",
                           f"{label_th}ซ้ำกัน: {', '.join(repeated)}")


_STAFF = (Role.DISTRICT_STAFF,)
_BOTH = ("line", "email")

DEFAULT_LADDER = Ladder(rungs=(
    EscalationRung("reminder-3", -3, _STAFF, _BOTH),
    EscalationRung("reminder-1", -1, _STAFF, _BOTH),
    EscalationRung("due-today", 0, (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD), _BOTH),
    EscalationRung("coordinator", 2, (Role.COORDINATOR,), _BOTH, grouped=True, via_digest=True),
    EscalationRung("provincial-head", 5, (Role.PROVINCIAL_HEAD,), ("email",), grouped=True),
), renotify_every=2, late=LateRule(every=2, up_to=5))

_LADDER_ADAPTER = TypeAdapter(Ladder)


def ladder_from_config(raw: dict | None) -> Ladder:
    """The ladder a directive's YAML (or its stored definition) asks for; None means the default."""
    if raw is None:
        return DEFAULT_LADDER
    try:
        return _LADDER_ADAPTER.validate_python(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'ladder'}: {e['msg']}"
                             for e in error.errors())
        raise InvalidInput(f"invalid escalation ladder: {problems}",
                           f"ขั้นการติดตามไม่ถูกต้อง: {problems}") from None


@dataclass(frozen=True)
class RungDue:
    """The rung an item has reached today, and the working day this occurrence belongs to."""

    rung: EscalationRung
    occurrence: date


def rungs_due(due_on: date, today: date, ladder: Ladder,
              calendar: WorkCalendar) -> tuple[RungDue, ...]:
    """The rungs an open item has reached today: at most one of the district's (a notice or
    ``late``) and one escalation, in that order; empty while nothing is to be said.

    A rung's occurrence is the working day it (or its repeat) began, so a sweep run on any day
    of that window, or run again, names the same occurrence (one message per rung and day).
    """
    district = _district_rung(due_on, today, ladder, calendar)
    escalation = _escalation(due_on, today, ladder, calendar)
    return tuple(due for due in (district, escalation) if due is not None)


def _district_rung(due_on: date, today: date, ladder: Ladder,
                   calendar: WorkCalendar) -> RungDue | None:
    """A notice holds from its day until the next one's; the last (the due date's) until the
    first ``late`` day (with ``late: null``, for ``renotify_every`` working days). The k-th
    ``late`` holds from due + k × every until the (k+1)-th, the ``up_to``-th until its window
    ends; after it the district hears nothing more."""
    every = ladder.late.every if ladder.late else ladder.renotify_every
    late_days = calendar.working_days_between(due_on, today) if today > due_on else 0
    if ladder.late and late_days >= every:
        k = late_days // every
        if ladder.late.up_to is not None and k > ladder.late.up_to:
            return None
        return RungDue(ladder.late.rung, calendar.add_working_days(due_on, k * every))
    notices = ladder.notices
    starts = [calendar.add_working_days(due_on, rung.offset) for rung in notices]
    reached = [i for i, start in enumerate(starts) if start <= today]
    if not reached or late_days >= every:
        return None
    return RungDue(notices[reached[-1]], starts[reached[-1]])


def _escalation(due_on: date, today: date, ladder: Ladder,
                calendar: WorkCalendar) -> RungDue | None:
    """The latest escalation started by today, at its latest repeat."""
    escalations = ladder.escalations
    starts = [calendar.add_working_days(due_on, rung.offset) for rung in escalations]
    reached = [i for i, start in enumerate(starts) if start <= today]
    if not reached:
        return None
    rung, start = escalations[reached[-1]], starts[reached[-1]]
    return RungDue(rung, _latest_repeat(start, today, ladder.renotify_every, calendar))


def reaches(dues: Iterable[RungDue], rung: EscalationRung) -> bool:
    """Whether one of the rungs reached today is ``rung`` or an escalation after it."""
    return any(due.rung.code != LATE and due.rung.offset >= rung.offset for due in dues)


def _latest_repeat(start: date, today: date, every: int, calendar: WorkCalendar) -> date:
    """The last re-notify day <= today; it is before the next rung since today is."""
    repeats = calendar.working_days_between(start, today) // every
    return calendar.add_working_days(start, repeats * every)


def key_prefix(rung: str, occurrence: date, subject_ref: str) -> str:
    """The first three parts of an ``idempotency_key`` (rung, occurrence, subject): shared by the
    rows of one message, which ``key_suffix`` tells apart."""
    parts = (rung, occurrence.isoformat(), subject_ref)
    if any("|" in part for part in parts):
        raise ValueError(f"'|' separates key parts and cannot appear inside one: {parts!r}")
    return "|".join(parts)


def key_suffix(recipient_ref: str, channel: str) -> str:
    """The rest of an ``idempotency_key`` after ``key_prefix``: ``prefix + suffix`` is the key."""
    if "|" in recipient_ref or "|" in channel:
        raise ValueError(f"'|' separates key parts and cannot appear inside one: "
                         f"{(recipient_ref, channel)!r}")
    return f"|{recipient_ref}|{channel}"


def idempotency_key(*, rung: str, occurrence: date, subject_ref: str, recipient_ref: str,
                    channel: str) -> str:
    """The outbox's unique key: one message per rung, occurrence, subject, recipient and channel."""
    parts = (rung, occurrence.isoformat(), subject_ref, recipient_ref, channel)
    if any("|" in part for part in parts):
        raise ValueError(f"'|' separates key parts and cannot appear inside one: {parts!r}")
    return "|".join(parts)
