"""What the digest, compile, launch and ops-alert flows share: typed parameters, and running the
same code tracked (a flow run on a Prefect server) or untracked (`flow.fn`, when `tidtam …`
finds no server).

Parameters are checked by Prefect before the flow starts (``validate_parameters``, pydantic):
an instant without a UTC offset, a malformed slug or province code fails the run at once with a
Thai and English message, from the Prefect UI, a deployment run or a command alike.

Untracked, there is no run context: tasks run as plain functions (no retries), the logger is an
ordinary one on stderr, and no artifact is published (tidtam/flows/report_artifacts.py).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator

from domain.errors import InvalidInput

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
PROVINCE_CODE = re.compile(r"^\d{2}$")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"now {value.isoformat()} has no UTC offset: give one, e.g. 2024-08-13T08:00:00+07:00",
            f"now {value.isoformat()} ไม่ได้ระบุเขตเวลา ต้องระบุ เช่น 2024-08-13T08:00:00+07:00")
    return value


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise InvalidInput(f"directive_slug {value!r} is not a slug (a-z, 0-9 and dashes), "
                           "see `tidtam directives`",
                           f"directive_slug {value!r} ไม่ใช่รหัสหนังสือสั่งการ (a-z 0-9 และ -) "
                           "ดูได้จากคำสั่ง `tidtam directives`")
    return value


def _province(value: str) -> str:
    if not PROVINCE_CODE.match(value):
        raise InvalidInput(f"province_code {value!r} is not a two-digit province code, e.g. 27",
                           f"province_code {value!r} ไม่ใช่รหัสจังหวัดสองหลัก เช่น 27")
    return value


Instant = Annotated[datetime, AfterValidator(_aware)]
"""An aware instant (ISO-8601 with its offset in the Prefect UI or a deployment's parameters)."""
DirectiveSlug = Annotated[str, AfterValidator(_slug)]
ProvinceCode = Annotated[str, AfterValidator(_province)]


def in_flow_run() -> bool:
    """Whether this code runs inside a tracked flow run (not ``flow.fn``)."""
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def resolve_now(now: datetime | None) -> datetime:
    """The instant a run acts at: the one given (aware: ``flow.fn`` bypasses Prefect's check),
    else this process's clock."""
    from tidtam.infra.clock import process_clock

    return _aware(now) if now is not None else process_clock().now()


def call(task, *args: Any, **kwargs: Any) -> Any:
    """Run ``task``: a task run (with its retries) inside a flow run, the plain function outside."""
    return task(*args, **kwargs) if in_flow_run() else task.fn(*args, **kwargs)


def run_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger (its lines in the Prefect UI), else ``prefect.tidtam.<name>``."""
    if in_flow_run():
        from prefect import get_run_logger

        return get_run_logger()
    from prefect.logging import get_logger

    return get_logger(f"tidtam.{name}")


def run_parameters() -> dict[str, Any]:
    """The validated parameters of the flow run being named (for ``flow_run_name`` callables)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return dict(context.parameters) if context and context.parameters else {}


def named(flow: str, instant: datetime | None, *parts: str | None) -> str:
    """`flow · part · … · 6 ส.ค. 2567 08:00` in the office's time zone (domain.runs)."""
    from domain.runs import run_name
    from tidtam.infra.settings import get_settings

    return run_name(flow, resolve_now(instant), get_settings().tz, *parts)
