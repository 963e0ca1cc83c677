"""Where a district stands: the rule behind the sweep's district task runs and the board's counts."""

from __future__ import annotations

from datetime import date

import pytest

from domain.standing import DistrictStanding, Standing, is_late

DUE = date(2024, 8, 9)


@pytest.mark.parametrize(("is_open", "today", "late"), [
    (True, date(2024, 8, 8), False),   # before the due day
    (True, DUE, False),                # on it: due, not late yet
    (True, date(2024, 8, 10), True),   # the day after
    (False, date(2024, 9, 1), False),  # done (or waived) is never late
])
def test_late_means_open_after_the_due_day(is_open, today, late):
    assert is_late(is_open, DUE, today) is late


@pytest.mark.parametrize(("items", "settled", "late", "standing", "label"), [
    (24, 24, 0, Standing.ALL_DONE, "ครบแล้ว / all done"),
    (24, 10, 0, Standing.ON_TRACK, "ตามกำหนด / on track"),
    (24, 10, 1, Standing.LATE, "ช้า 1 รายการ / 1 late"),
    (24, 20, 4, Standing.LATE, "ช้า 4 รายการ / 4 late"),
    (0, 0, 0, Standing.NOTHING, "ไม่มีรายการ / nothing tracked"),
])
def test_a_districts_standing_and_its_task_run_state_name(items, settled, late, standing, label):
    counted = DistrictStanding(items, settled, late)
    assert (counted.standing, counted.label) == (standing, label)

