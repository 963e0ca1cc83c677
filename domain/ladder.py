"""The escalation ladder: who is told, how, and when, as an item stays open past its due date."""

from __future__ import annotations

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
class Ladder:
    """The rungs of one directive, sorted by offset, and how often a late rung repeats."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    rungs: tuple[EscalationRung, ...]
    renotify_every: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "rungs", tuple(sorted(self.rungs, key=lambda r: r.offset)))
        _refuse_repeats("code", [r.code for r in self.rungs], "รหัสขั้น")
        _refuse_repeats("offset", [r.offset for r in self.rungs], "จำนวนวันทำการ")
        if not self.rungs:
            raise InvalidInput("a ladder needs at least one rung", "ต้องมีขั้นการติดตามอย่างน้อย 1 ขั้น")
        if self.renotify_every < 1:
            raise InvalidInput("renotify_every must be at least 1 working day",
                               "renotify_every ต้องอย่างน้อย 1 วันทำการ")


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
    EscalationRung("overdue", 0, (Role.DISTRICT_STAFF, Role.DISTRICT_HEAD), _BOTH),
    EscalationRung("coordinator", 2, (Role.COORDINATOR,), _BOTH, grouped=True, via_digest=True),
    EscalationRung("provincial-head", 5, (Role.PROVINCIAL_HEAD,), ("email",), grouped=True),
), renotify_every=2)

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


def rung_due(due_on: date, today: date, ladder: Ladder, calendar: WorkCalendar) -> RungDue | None:
    """Which rung applies to an open item today, or None while it is too early to say anything."""
    starts = [calendar.add_working_days(due_on, rung.offset) for rung in ladder.rungs]
    reached = [i for i, start in enumerate(starts) if start <= today]
    if not reached:
        return None
    rung, start = ladder.rungs[reached[-1]], starts[reached[-1]]
    if rung.offset < 0:
        return RungDue(rung, start)
    return RungDue(rung, _latest_repeat(start, today, ladder.renotify_every, calendar))


def reaches(due: RungDue | None, rung: EscalationRung, ladder: Ladder) -> bool:
    """Whether the rung reached today is ``rung`` or one after it on the ladder."""
    return due is not None and ladder.rungs.index(due.rung) >= ladder.rungs.index(rung)


def _latest_repeat(start: date, today: date, every: int, calendar: WorkCalendar) -> date:
    """The last re-notify day <= today; it is before the next rung since today is."""
    repeats = calendar.working_days_between(start, today) // every
    return calendar.add_working_days(start, repeats * every)


def idempotency_key(*, rung: str, occurrence: date, subject_ref: str, recipient_ref: str,
                    channel: str) -> str:
    """The outbox's unique key: one message per rung, occurrence, subject, recipient and channel."""
    parts = (rung, occurrence.isoformat(), subject_ref, recipient_ref, channel)
    if any("|" in part for part in parts):
        raise ValueError(f"'|' separates key parts and cannot appear inside one: {parts!r}")
    return "|".join(parts)
