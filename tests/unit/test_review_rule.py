"""The review rule (domain/review.py): when a report still waiting for the province's review
reminds the coordinators, on the 2567 calendar of a Sa Kaeo office."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import OfficeHours, WorkCalendar
from domain.directive import DirectiveSpec
from domain.review import DEFAULT_REVIEW_WITHIN_WORKING_DAYS, review_due_on, review_nudge_at

BKK = ZoneInfo("Asia/Bangkok")
CAL = WorkCalendar()


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BKK)


@pytest.mark.parametrize(("submitted", "days", "late_on", "why"), [
    (bkk(2024, 8, 5, 10), 3, date(2024, 8, 8), "Monday → Thursday"),
    (bkk(2024, 8, 7, 15), 3, date(2024, 8, 13), "Wed → Thu, Fri, (Sat, Sun, Mother's Day) Tue"),
    (bkk(2024, 8, 9, 16, 45), 3, date(2024, 8, 15), "Friday after hours: Tue, Wed, Thu"),
    (bkk(2024, 8, 10, 9), 3, date(2024, 8, 15), "Saturday counts from the next working day"),
    (bkk(2024, 7, 19, 9), 1, date(2024, 7, 23), "Fri → (Asarnha Bucha in lieu Mon 22) Tue"),
    (bkk(2024, 8, 5, 10), 5, date(2024, 8, 13), "five working days over a holiday"),
    (datetime(2024, 8, 4, 18, 0, tzinfo=UTC), 3, date(2024, 8, 8),
     "01:00 Monday in Bangkok is Monday, not the UTC Sunday"),
])
def test_the_review_is_late_n_working_days_after_the_submission(submitted, days, late_on, why):
    assert review_due_on(submitted, days, CAL, BKK) == late_on, why


def test_the_reminder_goes_at_the_offices_opening_on_that_day():
    assert review_nudge_at(bkk(2024, 8, 7, 15), 3, CAL, BKK) == datetime(2024, 8, 13, 1, 30,
                                                                           tzinfo=UTC)
    early = WorkCalendar(office_hours=OfficeHours(start=datetime(2000, 1, 1, 7).time(),
                                                  end=datetime(2000, 1, 1, 15).time()))
    assert review_nudge_at(bkk(2024, 8, 5, 10), 3, early, BKK) == bkk(2024, 8, 8, 7)


def test_the_provinces_own_closures_are_not_counted():
    closed = WorkCalendar(extra_closures=[date(2024, 8, 6)])
    assert review_due_on(bkk(2024, 8, 5, 10), 3, closed, BKK) == date(2024, 8, 9)


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError):
        review_due_on(datetime(2024, 8, 5, 10), 3, CAL, BKK)


def test_the_yaml_setting_defaults_to_three_and_is_bounded():
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    spec = load_directive(DEFAULT_DIRECTIVE)
    assert spec.review_within_working_days == DEFAULT_REVIEW_WITHIN_WORKING_DAYS == 3
    data = spec.model_dump(mode="json")
    assert DirectiveSpec.model_validate({**data, "review_within_working_days": 5}
                                        ).review_within_working_days == 5
    with pytest.raises(ValueError):
        DirectiveSpec.model_validate({**data, "review_within_working_days": 0})
