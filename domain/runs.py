"""What a Prefect run is called, so that the UI's list of runs reads like a logbook.

`escalation-sweep · สระแก้ว · 14 ส.ค. 2567 08:30`: the flow, the place (a province's Thai name, or
"ทั้งประเทศ" for every province), and the instant the run decided for, in local time with a B.E.
year. Pure: the flows hand in the names they read.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from domain.thaidate import thai_date

WHOLE_COUNTRY = "ทั้งประเทศ"
SEPARATOR = " · "


def run_name(flow: str, instant: datetime, tz: ZoneInfo, *parts: str | None) -> str:
    """`flow · part · … · 14 ส.ค. 2567 08:30`; empty parts are left out."""
    if instant.tzinfo is None:
        raise ValueError("run_name needs a timezone-aware instant")
    local = instant.astimezone(tz)
    when = f"{thai_date(local)} {local:%H:%M}"
    return SEPARATOR.join([flow, *(p for p in parts if p), when])


def district_task_name(district_name: str, district_code: str) -> str:
    """A district's task run: `เมืองสระแก้ว 2701` (the name a coordinator knows, and its code)."""
    return f"{district_name} {district_code}"
