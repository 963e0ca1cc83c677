"""The one clock: every instant the product acts at comes from here, or from a ``--now`` given.

A process builds its clock once from the settings (``process_clock``) and passes it down; below
the flows and the web app, ``now`` is a plain parameter. Three kinds:

- ``SystemClock``: the real time (production).
- ``DemoClock``: starts at ``TIDTAM_DEMO_NOW`` at a real instant, the *epoch*, and runs on at the
  real pace. Processes that share the epoch (``TIDTAM_DEMO_EPOCH``, which ``tidtam serve`` hands
  to everything it starts) read the same demo time.
- ``FixedClock``: always one instant (a command's ``--now``, tests).

Nothing else in the project calls ``datetime.now()`` or ``date.today()`` (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from tidtam.infra.settings import Settings


class Clock(Protocol):
    """What every clock answers: the current instant, timezone-aware UTC."""

    def now(self) -> datetime: ...


def _real_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return _real_now()


@dataclass(frozen=True)
class FixedClock:
    """Always the same instant: a replayed moment (``--now``) or a test's."""

    instant: datetime

    def __post_init__(self) -> None:
        if self.instant.tzinfo is None:
            raise ValueError(f"a clock's instant needs a time zone, not {self.instant.isoformat()}")

    def now(self) -> datetime:
        return self.instant.astimezone(UTC)


@dataclass(frozen=True)
class DemoClock:
    """Demo time: ``start`` at the real instant ``epoch``, then on at the real pace."""

    start: datetime
    epoch: datetime = field(default_factory=_real_now)

    def now(self) -> datetime:
        return self.start.astimezone(UTC) + (_real_now() - self.epoch)


def clock_from_settings(settings: Settings) -> Clock:
    """The demo clock when ``TIDTAM_DEMO_NOW`` is set (demo mode only), else the real one."""
    if settings.demo_now is None:
        return SystemClock()
    if settings.demo_epoch is None:
        return DemoClock(settings.demo_now)
    return DemoClock(settings.demo_now, settings.demo_epoch)


@lru_cache(maxsize=1)
def process_clock() -> Clock:
    """This process's clock, built once from its settings."""
    from tidtam.infra.settings import get_settings

    return clock_from_settings(get_settings())


def clock_at(instant: datetime | None) -> Clock:
    """A command's clock: the ``--now`` it was given, else the process's."""
    return FixedClock(instant) if instant is not None else process_clock()


def instant_of(value: str | None, option: str = "now") -> datetime:
    """A flow's ``now`` parameter: the ISO-8601 instant given (with its offset), else this
    process's clock's current instant."""
    from domain.calendar import parse_instant

    return parse_instant(value, option) if value else process_clock().now()


def today(clock: Clock, tz: ZoneInfo) -> date:
    """The clock's current day in an office's time zone."""
    return clock.now().astimezone(tz).date()


def epoch_env(clock: Clock) -> dict[str, str]:
    """What children need in their environment to read the same demo time as ``clock``."""
    if isinstance(clock, DemoClock):
        return {"TIDTAM_DEMO_EPOCH": clock.epoch.isoformat()}
    return {}
