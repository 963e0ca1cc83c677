"""Pure rules of tidtam: working days, the escalation ladder, Thai dates, access, directives.

Nothing here touches the database, the network or the clock: ``now``/``today`` are parameters.
"""

from domain.access import can_mark_item, can_review_report, can_see_district
from domain.calendar import OfficeHours, WorkCalendar, thai_government_holidays
from domain.directive import (
    ActivityConditions,
    Category,
    DatePeriod,
    DirectiveError,
    DirectiveSpec,
    OfficeHoursSpec,
    Problem,
    StepSpec,
    load_directive,
    parse_directive,
)
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, TidtamError
from domain.ladder import (
    DEFAULT_LADDER,
    Audience,
    EscalationRung,
    Ladder,
    RungDue,
    idempotency_key,
    ladder_from_config,
    rung_due,
)
from domain.thaidate import (
    THAI_MONTHS,
    THAI_MONTHS_SHORT,
    english_date,
    thai_date,
    thai_datetime,
    to_thai_digits,
)

__all__ = [
    "DEFAULT_LADDER",
    "THAI_MONTHS",
    "THAI_MONTHS_SHORT",
    "ActivityConditions",
    "Audience",
    "Category",
    "Conflict",
    "DatePeriod",
    "DirectiveError",
    "DirectiveSpec",
    "EscalationRung",
    "Forbidden",
    "InvalidInput",
    "Ladder",
    "NotFound",
    "OfficeHours",
    "OfficeHoursSpec",
    "Problem",
    "RungDue",
    "StepSpec",
    "TidtamError",
    "WorkCalendar",
    "can_mark_item",
    "can_review_report",
    "can_see_district",
    "english_date",
    "idempotency_key",
    "ladder_from_config",
    "load_directive",
    "parse_directive",
    "rung_due",
    "thai_date",
    "thai_datetime",
    "thai_government_holidays",
    "to_thai_digits",
]
