"""Where a district stands on its work: all done, on track, or N items late.

One rule for the board (`tidtam status`, the web board's counts) and the sweep's district task
runs, whose final state is named by it: an item is *settled* when it is no longer open (done,
accepted or waived) and *late* when it is still open after its due day. Pure: the counts come in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


def is_late(is_open: bool, due_on: date, today: date) -> bool:
    """Open after its due day (on the due day itself it is not late yet)."""
    return is_open and due_on < today


class Standing(StrEnum):
    ALL_DONE = "all-done"
    ON_TRACK = "on-track"
    LATE = "late"
    NOTHING = "nothing"  # no item of an active directive for this district


@dataclass(frozen=True)
class DistrictStanding:
    """A district's items of every active directive, counted at one day."""

    items: int
    settled: int
    late: int

    @property
    def standing(self) -> Standing:
        if self.items == 0:
            return Standing.NOTHING
        if self.late:
            return Standing.LATE
        return Standing.ALL_DONE if self.settled == self.items else Standing.ON_TRACK

    @property
    def label(self) -> str:
        """`ครบแล้ว / all done`, `ตามกำหนด / on track`, `ช้า 3 รายการ / 3 late`."""
        match self.standing:
            case Standing.LATE:
                return f"ช้า {self.late} รายการ / {self.late} late"
            case Standing.ALL_DONE:
                return "ครบแล้ว / all done"
            case Standing.ON_TRACK:
                return "ตามกำหนด / on track"
        return "ไม่มีรายการ / nothing tracked"
