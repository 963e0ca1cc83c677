"""escalation-sweep: open items and due dates → the ladder's rung at `now` → outbox rows.

Scheduled in prefect.yaml (08:30 Mon–Fri, Asia/Bangkok, one run at a time); `tidtam sweep --now …`
runs it once. Rows get the next office-hour slot as their send time, so a run on a holiday sends
nothing that day. Every active directive of every province, or one province's, or the one named.

In the Prefect UI a run reads as the process it drives: `escalation-sweep · สระแก้ว · 14 ส.ค.
2567 08:30`; a task run per province, named by the province, and within it a task run per
district (`เมืองสระแก้ว 2701`) whose final state says where the district stands (`ครบแล้ว / all
done`, `ตามกำหนด / on track`, `ช้า 2 รายการ / 2 late`: the board's counts at that instant); each
directive's board as a table artifact (`board-<slug>`) and its progress (`progress-<slug>`).
Every task that meets the database retries on transient database errors only (flows/_runs.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.states import Completed, State
from prefect.utilities.annotations import quote
from pydantic import AfterValidator, BaseModel, Field
from sqlmodel import Session

from domain.errors import InvalidInput
from domain.runs import WHOLE_COUNTRY, district_task_name, run_name
from flows._runs import TASK_RETRIES
from flows.artifacts import board_artifacts, publish
from models.directive import directives_by_id
from models.org import get_province
from tidtam.app.boards import boards_of
from tidtam.app.directives import find_directive
from tidtam.app.escalation import DistrictOutcome, ProvinceSweep, read_provinces, start_sweep
from tidtam.infra.clock import process_clock
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings

FLOW = "escalation-sweep"
# Per-district task runs when the run covers at most this many provinces (bench/README.md, P1
# whole flow): the whole country's 878 district task runs took the national flow run to 8.8-12.4 s
# and kept the Prefect server busy for a minute after; 76 province task runs alone 2.6-6.0 s;
# one province's nine district task runs cost well under a second.
DISTRICT_TASKS_UP_TO = 3


def aware(value: datetime) -> datetime:
    """A flow's `now` must say its time zone: 08:30 means nothing without one."""
    if value.tzinfo is None:
        raise InvalidInput(f"now {value.isoformat()} needs a timezone offset, e.g. "
                           "2024-08-14T08:30:00+07:00",
                           "now: ต้องระบุเขตเวลา เช่น 2024-08-14T08:30:00+07:00")
    return value


Instant = Annotated[datetime, AfterValidator(aware)]


class DistrictReport(BaseModel):
    code: str
    name_th: str
    standing: str = Field(description="the district task run's final state name")
    items: int
    settled: int
    late: int
    due_items: int = Field(description="open items a rung of the ladder is due for now")


class ProvinceReport(BaseModel):
    code: str
    name_th: str
    directives: list[str]
    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    items_considered: int = 0
    by_rung: dict[str, int] = Field(default_factory=dict)
    districts: list[DistrictReport] = Field(default_factory=list)


class SweepReport(BaseModel):
    """What a run did; its first eight fields are `tidtam sweep --json`'s since before."""

    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    items_considered: int = 0
    cancelled: int = 0
    by_rung: dict[str, int] = Field(default_factory=dict)
    closed: list[str] = Field(default_factory=list, description="closed automatically by this run")
    directives: list[str] = Field(default_factory=list, description="the active directives swept")
    now: datetime
    district_tasks: bool
    provinces: list[ProvinceReport] = Field(default_factory=list)
    boards_published: int = Field(0, description="artifacts written: tables and progress figures")
    boards_unchanged: int = Field(0, description="boards whose table artifact was already current")


class ProvincePlan(BaseModel):
    code: str
    name_th: str
    directive_ids: list[int]


class SweepPlan(BaseModel):
    closed: list[str]
    cancelled: int
    directives: list[str]
    provinces: list[ProvincePlan]


# --- The run's name --------------------------------------------------------------------------

def sweep_run_name() -> str:
    """`escalation-sweep · สระแก้ว · 14 ส.ค. 2567 08:30`: the place swept (the province named,
    the named directive's, the one province with active directives, else ทั้งประเทศ)."""
    parameters = FlowRunContext.get().parameters
    settings = get_settings()
    instant = parameters.get("now") or process_clock().now()
    slug = parameters.get("directive_slug")
    return run_name(FLOW, instant, settings.tz, _place(parameters.get("province_code"), slug), slug)


def _place(province_code: str | None, slug: str | None) -> str:
    """The province's Thai name; a database that does not answer yet names no place wrongly."""
    try:
        with session_scope(get_engine()) as session:
            if slug:
                province_code = find_directive(session, slug).province_code
            codes = [province_code] if province_code else _active_provinces(session)
            province = get_province(session, codes[0]) if len(codes) == 1 else None
            return province.name_th if province else (province_code or WHOLE_COUNTRY)
    except Exception:  # noqa: BLE001 - a name is no reason to fail the run; the tasks will say
        return province_code or WHOLE_COUNTRY


def _active_provinces(session: Session) -> list[str]:
    from models.directive import active_directives

    return sorted({d.province_code for d in active_directives(session)})


# --- The tasks -------------------------------------------------------------------------------

@task(name="start-sweep", task_run_name="ปิดหนังสือที่ครบกำหนด · อ่านงานที่ค้าง",
      cache_policy=NO_CACHE, **TASK_RETRIES)
def start(now: datetime, directive_slug: str | None, province_code: str | None,
          ) -> tuple[SweepPlan, list[ProvinceSweep]]:
    """Close what is due to close, cancel what no longer needs saying, and read what every
    province to sweep needs, in a few queries for all of them."""
    settings = get_settings()
    with session_scope(get_engine()) as session:
        directive = find_directive(session, directive_slug) if directive_slug else None
        begun = start_sweep(session, now, tz=settings.tz, directive=directive,
                            province_code=province_code)
        provinces = read_provinces(session, now, tz=settings.tz, base_url=settings.base_url,
                                   start=begun)
        names = {code: _province_name(session, code) for code in begun.provinces}
        plan = SweepPlan(closed=begun.closed, cancelled=begun.cancelled, directives=begun.directives,
                         provinces=[ProvincePlan(code=code, name_th=names[code],
                                                 directive_ids=[d.id for d in directives])
                                    for code, directives in begun.provinces.items()])
    return plan, provinces


def _province_name(session: Session, code: str) -> str:
    province = get_province(session, code)
    return province.name_th if province else code


@task(name="sweep-province", task_run_name="{plan.name_th}", cache_policy=NO_CACHE, **TASK_RETRIES)
def sweep_province(province: ProvinceSweep, plan: ProvincePlan, district_tasks: bool,
                   ) -> ProvinceReport:
    """Decide each district of the province (a task run each, or in this one), then enqueue the
    province's rows in one insert."""
    codes = province.district_codes
    if district_tasks and FlowRunContext.get() is not None:
        labels = [district_task_name(province.districts[c].name_th, c) for c in codes]
        futures = decide_district.map(unmapped(quote(province)), codes, labels)
        districts = [future.result() for future in futures]
    else:
        districts = [_report(province.district(code)) for code in codes]
    with session_scope(get_engine()) as session:
        written = province.write(session)
    return ProvinceReport(code=plan.code, name_th=plan.name_th,
                          directives=[d.slug for d in province.directives.values()],
                          enqueued=written.enqueued, already_queued=written.already_queued,
                          no_channel=written.no_channel, items_considered=written.items_considered,
                          by_rung=written.by_rung, districts=districts)


@task(name="district", task_run_name="{label}", cache_policy=NO_CACHE)
def decide_district(province: ProvinceSweep, code: str, label: str) -> State:
    """One district's items of every active directive: its rungs due now, and where it stands
    (the final state's name). Reads and writes nothing: the province task did and will."""
    report = _report(province.district(code))
    return Completed(name=report.standing, message=label, data=report)


def _report(outcome: DistrictOutcome) -> DistrictReport:
    s = outcome.standing
    return DistrictReport(code=outcome.code, name_th=outcome.name_th, standing=s.label,
                          items=s.items, settled=s.settled, late=s.late, due_items=outcome.due_items)


@task(name="publish-boards", task_run_name="กระดานติดตาม · board artifacts", cache_policy=NO_CACHE,
      **TASK_RETRIES)
def publish_boards(now: datetime, directive_ids: list[int]) -> tuple[int, int]:
    """Each swept directive's board as a table artifact and its progress, read in a few queries."""
    settings = get_settings()
    with session_scope(get_engine()) as session:
        directives = directives_by_id(session, directive_ids)
        boards = boards_of(session, directives, now.astimezone(settings.tz).date())
        made = [board_artifacts(b, now, settings.tz) for b in boards]
    published = publish(made)
    _logger().info("board artifacts: %d boards, %d artifacts written, %d boards unchanged, %.2f s",
                   published.boards, published.published, published.unchanged, published.seconds)
    return published.published, published.unchanged


# --- The flow --------------------------------------------------------------------------------

@flow(name=FLOW, flow_run_name=sweep_run_name, validate_parameters=True)
def escalation_sweep(now: Instant | None = None, directive_slug: str | None = None,
                     province_code: str | None = None, district_tasks: bool | None = None,
                     ) -> SweepReport:
    """Enqueue the messages due at `now` (an aware instant; default: this process's clock), for
    every active directive, one province's (`province_code`) or only `directive_slug` (an
    unknown slug: NotFound listing the active). `district_tasks`: a task run per district
    (default: when the run covers at most DISTRICT_TASKS_UP_TO provinces)."""
    instant = aware(now) if now else process_clock().now()
    tracked = FlowRunContext.get() is not None
    plan, provinces = _call(start, instant, directive_slug, province_code)
    per_district = (len(plan.provinces) <= DISTRICT_TASKS_UP_TO if district_tasks is None
                    else district_tasks)
    report = SweepReport(now=instant, district_tasks=per_district and tracked,
                         cancelled=plan.cancelled, closed=plan.closed, directives=plan.directives)
    swept = [d_id for province in plan.provinces for d_id in province.directive_ids]
    # The sweep changes no item, so the boards are what they are once `start` has closed what
    # was due: published (server-bound) while the provinces are decided (database-bound).
    boards = publish_boards.submit(instant, swept) if tracked and swept else None
    for province, province_plan in zip(provinces, plan.provinces, strict=True):
        part = _call(sweep_province, quote(province) if tracked else province, province_plan,
                     per_district)
        report.provinces.append(part)
        for name in ("enqueued", "already_queued", "no_channel", "items_considered"):
            setattr(report, name, getattr(report, name) + getattr(part, name))
        for rung, n in part.by_rung.items():
            report.by_rung[rung] = report.by_rung.get(rung, 0) + n
    if boards is not None:
        report.boards_published, report.boards_unchanged = boards.result()
    _log(report)
    return report


def _call(work, *args):
    """A task run inside a tracked flow run; the plain function when the flow runs untracked
    (`flow.fn`, no Prefect server): the same work either way."""
    return work(*args) if FlowRunContext.get() is not None else work.fn(*args)


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - MissingContextError: run untracked
        return logging.getLogger("tidtam.flows.escalation_sweep")


def _log(report: SweepReport) -> None:
    logger = _logger()
    late = sum(d.late > 0 for p in report.provinces for d in p.districts)
    logger.info("escalation-sweep at %s: %d enqueued, %d already queued, %d without a channel, "
                "%d cancelled (items done since); %d active directive(s) in %d province(s); "
                "%d district(s) late", report.now.isoformat(), report.enqueued,
                report.already_queued, report.no_channel, report.cancelled,
                len(report.directives), len(report.provinces), late)
    for slug in report.closed:
        logger.info("escalation-sweep: closed %s automatically (close_after_working_days)", slug)


if __name__ == "__main__":
    escalation_sweep()
