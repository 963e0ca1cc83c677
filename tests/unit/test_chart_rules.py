"""The reporting-rate chart's numbers and geometry (domain/charts.py), on the FY 2567 Sa Kaeo
timeline: launched 12 Jul 2567, steps due from 17 Jul to 9 Aug 2567."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.charts import (
    LARGE,
    SMALL,
    DueMark,
    RatePoint,
    Scale,
    Settlement,
    chart_span,
    due_marks,
    geometry,
    line_path,
    rate_series,
    settled_day,
    step_path,
    tick_label,
    x_ticks,
)
from domain.directive import load_directive
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

BANGKOK = ZoneInfo("Asia/Bangkok")
LAUNCH = date(2024, 7, 12)  # ๑๒ ก.ค. ๒๕๖๗, the letter's day
STEPS = [(s.code, s.due_on) for s in load_directive(DEFAULT_DIRECTIVE).steps]
DISTRICTS = 9


def d(day: int, month: int = 7) -> date:
    return date(2024, month, day)


def test_the_fy2567_letter_gives_eight_due_days_from_17_july_to_9_august():
    marks = due_marks(STEPS)
    assert [(m.day, m.codes) for m in marks] == [
        (d(17), ("G1", "A1")), (d(19), ("G2", "A2")), (d(31), ("G3", "G4", "A3")),
        (d(2, 8), ("G5",)), (d(7, 8), ("G6", "G7")), (d(9, 8), ("G8", "R1"))]


@pytest.mark.parametrize(("today", "until", "span"), [
    (d(18), None, (LAUNCH, d(9, 8))),           # mid-campaign: to the last due day
    (d(20, 8), None, (LAUNCH, d(20, 8))),       # after it: on to today
    (d(1, 12), d(20, 8), (LAUNCH, d(20, 8))),   # closed on 20 Aug: stops there
    (d(1, 12), d(1, 8), (LAUNCH, d(9, 8))),     # closed early: still shows every due day
])
def test_the_span_runs_from_the_launch_to_the_last_due_day_or_today(today, until, span):
    assert chart_span(LAUNCH, (day for _, day in STEPS), today, until) == span


@pytest.mark.parametrize(("done", "at", "day"), [
    (False, None, None),                                           # open: never settled
    (True, datetime(2024, 7, 17, 16, 59, tzinfo=UTC), d(17)),      # 23:59 Bangkok, the 17th
    (True, datetime(2024, 7, 17, 17, 0, tzinfo=UTC), d(18)),       # 00:00 Bangkok: the 18th
    (True, None, LAUNCH),                                          # settled, time unknown
])
def test_an_item_counts_on_the_office_day_it_was_settled(done, at, day):
    assert settled_day(done, at, BANGKOK, LAUNCH) == day


def campaign(today: date) -> list[RatePoint]:
    """Nine districts × twelve steps; on 16 Jul three districts did G1, on the 17th all nine
    did A1, on the 22nd two did G2 late, one R1 on 9 Aug."""
    items = []
    for code, due in STEPS:
        for district in range(DISTRICTS):
            settled = {"G1": d(16) if district < 3 else None, "A1": d(17),
                       "G2": d(22) if district < 2 else None,
                       "R1": d(9, 8) if district == 0 else None}.get(code)
            items.append(Settlement(due, settled))
    start, end = chart_span(LAUNCH, (due for _, due in STEPS), today)
    return rate_series(items, start, end, today)


@pytest.mark.parametrize(("today", "day", "done", "due"), [
    (d(18), LAUNCH, 0, 0),
    (d(18), d(16), 3, 0),
    (d(18), d(17), 12, 18),     # G1 and A1 due: 18 of 108
    (d(18), d(18), 12, 18),
    (d(18), d(19), None, 36),   # after today: nothing known yet, the due line goes on
    (d(18), d(9, 8), None, 108),
    (d(10, 8), d(22), 14, 36),
    (d(10, 8), d(9, 8), 15, 108),
    (d(10, 8), d(10, 8), 15, 108),
])
def test_the_series_counts_settled_and_due_items_at_each_days_end(today, day, done, due):
    point = next(p for p in campaign(today) if p.day == day)
    assert (point.expected, point.done, point.due) == (108, done, due)


def test_the_series_has_one_point_a_day_and_never_goes_down():
    series = campaign(d(10, 8))
    assert [p.day for p in series][:3] == [LAUNCH, d(13), d(14)]
    assert len(series) == (d(10, 8) - LAUNCH).days + 1
    done = [p.done for p in series]
    assert done == sorted(done)
    assert (series[-1].percent, series[-1].due_percent) == (13, 100)  # 15/108, rounded down


def test_an_item_settled_after_today_is_not_counted_yet():
    series = rate_series([Settlement(d(17), d(20))], LAUNCH, d(19), today=d(19))
    assert [p.done for p in series][-1] == 0


def test_nothing_expected_is_zero_not_a_division_by_zero():
    point = rate_series([], LAUNCH, LAUNCH, LAUNCH)[0]
    assert (point.share, point.due_share, point.percent) == (0.0, 0.0, 0)


@pytest.mark.parametrize(("start", "end", "ticks"), [
    (d(12), d(12), [d(12)]),
    (d(12), d(18), [d(12) + (d(13) - d(12)) * n for n in range(7)]),            # daily
    (d(12), d(24), [d(12), d(14), d(16), d(18), d(20), d(22), d(24)]),          # every 2 days
    (d(12), d(9, 8), [d(12), d(19), d(26), d(2, 8), d(9, 8)]),                 # weekly
    (d(12), d(30, 9), [d(12), d(26), d(9, 8), d(23, 8), d(6, 9), d(20, 9)]),    # fortnightly
    (d(12), date(2025, 3, 1), [d(1, 8), d(1, 9), d(1, 10), d(1, 11), d(1, 12),
                               date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]),
    (d(12), date(2025, 12, 1), [d(1, 8), d(1, 11), date(2025, 2, 1), date(2025, 5, 1),
                                date(2025, 8, 1), date(2025, 11, 1)]),  # every third month
])
def test_x_ticks_keep_to_eight_labels_or_so(start, end, ticks):
    assert x_ticks(start, end) == ticks


@pytest.mark.parametrize(("day", "lang", "with_year", "label"), [
    (d(17), "th", False, "17 ก.ค."),
    (d(17), "th", True, "17 ก.ค. 67"),   # B.E. 2567
    (d(9, 8), "en", False, "9 Aug"),
    (d(9, 8), "en", True, "9 Aug 2024"),
])
def test_tick_labels_are_thai_with_buddhist_years_or_english(day, lang, with_year, label):
    assert tick_label(day, lang, with_year) == label


@pytest.mark.parametrize(("day", "share", "xy"), [
    (LAUNCH, 0.0, (58, 254)),                 # bottom left of the small frame's plot
    (d(9, 8), 1.0, (704, 34)),                # top right
    (d(24), 0.5, (58 + 12 * 646 / 28, 144)),  # half way up, 12 of 28 days across
])
def test_the_scale_puts_days_across_and_shares_up(day, share, xy):
    scale = Scale(LAUNCH, d(9, 8), SMALL)
    assert (scale.x(day), scale.y(share)) == (round(xy[0], 1), xy[1])
    assert scale.share_at(scale.y(share)) == pytest.approx(share)


@pytest.mark.parametrize(("points", "line", "steps"), [
    ([], "", ""),
    ([(0, 10)], "M0,10", "M0,10"),
    ([(0, 10), (5, 10), (10, 4)], "M0,10 L5,10 L10,4", "M0,10 L5,10 L10,10 L10,4"),
])
def test_paths_a_line_and_a_staircase(points, line, steps):
    assert (line_path(points), step_path(points)) == (line, steps)


def test_geometry_marks_due_days_and_today_and_stops_the_settled_line_at_today():
    series = campaign(d(18))
    marks = due_marks(STEPS)
    g = geometry(series, marks, d(18), LARGE)
    scale = g.scale
    assert len(g.done_points) == 7  # 12 … 18 Jul
    assert [round(scale.share_at(y) * 108) for _, y in g.done_points] == [0, 0, 0, 0, 3, 12, 12]
    assert [m.point.day for m in g.done_markers] == [d(17), d(18)]  # a due day, today
    assert [m.point.day for m in g.due_markers] == [m.day for m in marks]
    assert [line.mark for line in g.due_lines] == marks
    assert g.today_x == scale.x(d(18))
    assert [t.percent for t in g.y_ticks] == [0, 25, 50, 75, 100]
    assert g.due_path.startswith(f"M{scale.x(LAUNCH)},{scale.y(0)}")
    assert g.due_path.endswith(f"L{scale.x(d(9, 8))},{scale.y(1)}")
    assert not g.spans_years


def test_a_due_mark_groups_the_steps_of_one_day():
    assert due_marks([("B", d(2)), ("A", d(1)), ("C", d(2))]) == [
        DueMark(d(1), ("A",)), DueMark(d(2), ("B", "C"))]
