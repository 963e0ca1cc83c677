"""escalation-sweep: open items and due dates → the ladder's rung at `now` → outbox rows.

Scheduled in prefect.yaml (08:30 Mon–Fri, Asia/Bangkok, one run at a time); `tidtam sweep --now …`
runs it once. Rows get the next office-hour slot as their send time, so a run on a holiday sends
nothing that day. Every active directive of every province, or one province's, or the one named.

In the Prefect UI a run reads as the process it drives: `escalation-sweep · สระแก้ว · 14 ส.ค.
2567 08:30`; a task run per province, named by the province, and within it a task run per
district (`เมืองสระแก้ว 2701`) whose final state says where the district stands (`ครบแล้ว / all
done`, `ตามกำหนด / on track`, `ช้า 2 รายการ / 2 late`: the board's counts at that instant); each
directive's board as a table artifact (`board-<slug>`) and its progress (`progress-<slug>`).
Province and district tasks only decide; one `write-outbox` task enqueues every province's rows
in one transaction. The whole country (more than PROVINCE_TASKS_UP_TO provinces, no district task
runs) is swept in a task run per group of provinces (their code's first digit: 9 rather than 76),
so the national run stays within P1's 2 s (bench/README.md, P1 whole flow).
Every task that meets the database retries on transient database errors only (flows/_runs.py).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.logging.loggers import flow_run_logger
from prefect.states import Completed, State
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field
from sqlmodel import Session

from domain.runs import WHOLE_COUNTRY, district_task_name
from flows._common import (
    Instant,
    call,
    in_flow_run,
    named,
    resolve_now,
    run_logger,
    run_parameters,
)
from flows._runs import TASK_RETRIES
from flows.artifacts import BoardArtifacts, board_artifacts, publish, write_later
from models.directive import directives_by_id
from models.org import get_province
from tidtam.app.boards import boards_of
from tidtam.app.directives import find_directive
from tidtam.app.escalation import (
    DistrictOutcome,
    ProvinceSweep,
    SweepResult,
    read_provinces,
    start_sweep,
    write_provinces,
)
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings

FLOW = "escalation-sweep"
# Per-district task runs when the run covers at most this many provinces (bench/README.md, P1
# whole flow): the whole country's 878 district task runs took the national flow run to 8.8-12.4 s
# and kept the Prefect server busy for a minute after; 76 province task runs alone 2.6-6.0 s;
# one province's nine district task runs cost well under a second.
DISTRICT_TASKS_UP_TO = 3
# A task run per province when the run covers at most this many provinces (and has no district
# task runs); beyond, a task run per group of provinces sharing their code's first digit (the
# DOPA code's region: 2x the East, 5x the upper North …): the whole country in 9 task runs, not
# 76 (bench/README.md, P1 whole flow: a task run costs ~10 ms of the client's CPU, and as much
# of the server's in the events it records).
PROVINCE_TASKS_UP_TO = 12
# Board artifacts written inside the run when at most this many changed. More (the first run after
# a national launch: 152, ~17 ms of the Prefect server's CPU each) are written once the run has
# completed (`publish_later`, its on_completion hook), so its duration is the sweep's, not the
# server's queue (bench/README.md, P1 whole flow).
ARTIFACTS_IN_RUN_UP_TO = 24
_LATER: dict[UUID, list[tuple]] = {}  # flow run id → the artifacts its hook writes


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
    task_runs: int = Field(0, description="task runs of this flow run: start, provinces (or their "
                                          "groups), districts, write-outbox, publish-boards")
    provinces: list[ProvinceReport] = Field(default_factory=list)
    boards_published: int = Field(0, description="artifacts written: tables and progress figures")
    boards_unchanged: int = Field(0, description="boards whose table artifact was already current")
    boards_after_run: int = Field(0, description="artifacts written once the run completed")


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
    parameters = run_parameters()
    slug = parameters.get("directive_slug")
    return named(FLOW, parameters.get("now"), _place(parameters.get("province_code"), slug), slug)


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


@task(name="sweep-province", task_run_name="{plan.name_th}", cache_policy=NO_CACHE)
def sweep_province(province: ProvinceSweep, plan: ProvincePlan, district_tasks: bool,
                   ) -> ProvinceReport:
    """Decide each district of the province (a task run each, or in this one). Reads and writes
    nothing: `start` read, `write-outbox` writes every province's rows at once."""
    codes = province.district_codes
    if district_tasks and in_flow_run():
        labels = [district_task_name(province.districts[c].name_th, c) for c in codes]
        futures = decide_district.map(unmapped(quote(province)), codes, labels)
        districts = [future.result() for future in futures]
    else:
        districts = [_report(province.district(code)) for code in codes]
    return ProvinceReport(code=plan.code, name_th=plan.name_th,
                          directives=[d.slug for d in province.directives.values()],
                          items_considered=len(province.items), districts=districts)


@task(name="sweep-provinces", task_run_name="{label}", cache_policy=NO_CACHE)
def sweep_provinces(provinces: list[ProvinceSweep], plans: list[ProvincePlan], label: str,
                    ) -> list[ProvinceReport]:
    """Decide a group of provinces, district by district, in one task run (the national run)."""
    return [sweep_province.fn(province, plan, False)
            for province, plan in zip(provinces, plans, strict=True)]


def province_groups(plans: list[ProvincePlan]) -> list[tuple[str, list[int]]]:
    """The provinces' places in ``plans`` grouped by their code's first digit, each with its task
    run's name: `จังหวัด 20–27 (8) · provinces 20–27`."""
    groups: dict[str, list[int]] = {}
    for at, plan in enumerate(plans):
        groups.setdefault(plan.code[0], []).append(at)
    named = []
    for places in groups.values():
        first, last = plans[places[0]].code, plans[places[-1]].code
        codes = first if first == last else f"{first}–{last}"
        named.append((f"จังหวัด {codes} ({len(places)}) · provinces {codes}", places))
    return named


@task(name="write-outbox", task_run_name="ลงคิวข้อความ · outbox", cache_policy=NO_CACHE,
      **TASK_RETRIES)
def write_outbox(now: datetime, provinces: list[ProvinceSweep]) -> list[SweepResult]:
    """Every province's rows in one transaction (``write_provinces``): the keys already queued
    read set-wise, the new rows inserted in one statement (a repeat run, or a retry after a
    dropped connection, adds nothing)."""
    with session_scope(get_engine()) as session:
        return write_provinces(session, now, provinces)


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
def publish_boards(now: datetime, directive_ids: list[int], slugs: list[str],
                   ) -> tuple[int, int, int]:
    """Each swept directive's board as a table artifact and its progress, read in a few queries
    while the server says what their keys show."""
    settings = get_settings()

    def read() -> list[BoardArtifacts]:
        with session_scope(get_engine()) as session:
            directives = directives_by_id(session, directive_ids)
            boards = boards_of(session, directives, now.astimezone(settings.tz).date())
            return [board_artifacts(b, now, settings.tz) for b in boards]

    published = publish(read, slugs=slugs, write_up_to=ARTIFACTS_IN_RUN_UP_TO)
    if published.deferred:
        _LATER[FlowRunContext.get().flow_run.id] = published.deferred
    run_logger("escalation_sweep").info(
        "board artifacts: %d boards, %d artifacts written, %d boards unchanged, %d artifacts to "
        "write once the run has completed, %.2f s", published.boards, published.published,
        published.unchanged, len(published.deferred), published.seconds)
    return published.published, published.unchanged, len(published.deferred)


def publish_later(flow, flow_run, state) -> None:
    """The run's on_completion hook: write the board artifacts `publish-boards` left, linked to
    the run (its Artifacts tab and each key's history show them as any other). On a failure
    too: the boards were read before anything could fail, and nothing is left behind."""
    wanted = _LATER.pop(flow_run.id, None)
    if not wanted:
        return
    seconds = write_later(wanted, flow_run.id)
    flow_run_logger(flow_run, flow).info(
        "board artifacts: %d written once the run had completed, %.2f s", len(wanted), seconds)


# --- The flow --------------------------------------------------------------------------------

@flow(name=FLOW, flow_run_name=sweep_run_name, validate_parameters=True,
      on_completion=[publish_later], on_failure=[publish_later])
def escalation_sweep(now: Instant | None = None, directive_slug: str | None = None,
                     province_code: str | None = None, district_tasks: bool | None = None,
                     ) -> SweepReport:
    """Enqueue the messages due at `now` (an aware instant; default: this process's clock), for
    every active directive, one province's (`province_code`) or only `directive_slug` (an
    unknown slug: NotFound listing the active). `district_tasks`: a task run per district
    (default: when the run covers at most DISTRICT_TASKS_UP_TO provinces)."""
    instant = resolve_now(now)
    tracked = in_flow_run()
    plan, provinces = call(start, instant, directive_slug, province_code)
    per_district = (len(plan.provinces) <= DISTRICT_TASKS_UP_TO if district_tasks is None
                    else district_tasks)
    report = SweepReport(now=instant, district_tasks=per_district and tracked,
                         cancelled=plan.cancelled, closed=plan.closed, directives=plan.directives)
    swept = [d_id for province in plan.provinces for d_id in province.directive_ids]
    # The sweep changes no item, so the boards are what they are once `start` has closed what
    # was due: published (server-bound) while the provinces are decided (database-bound).
    boards = publish_boards.submit(instant, swept, plan.directives) if tracked and swept else None
    units = 0
    if per_district or len(provinces) <= PROVINCE_TASKS_UP_TO:
        units = len(provinces)
        for province, province_plan in zip(provinces, plan.provinces, strict=True):
            report.provinces.append(call(sweep_province, quote(province) if tracked else province,
                                         province_plan, per_district))
    else:
        for label, places in province_groups(plan.provinces):
            units += 1
            group = [provinces[at] for at in places]
            report.provinces += call(sweep_provinces, quote(group) if tracked else group,
                                     [plan.provinces[at] for at in places], label)
    written = call(write_outbox, instant, quote(provinces) if tracked else provinces)
    for part, result in zip(report.provinces, written, strict=True):
        part.enqueued, part.already_queued = result.enqueued, result.already_queued
        part.no_channel, part.by_rung = result.no_channel, result.by_rung
        for name in ("enqueued", "already_queued", "no_channel", "items_considered"):
            setattr(report, name, getattr(report, name) + getattr(part, name))
        for rung, n in part.by_rung.items():
            report.by_rung[rung] = report.by_rung.get(rung, 0) + n
    if tracked:
        report.task_runs = 2 + units + (boards is not None) + sum(
            len(p.districts) for p in report.provinces if report.district_tasks)
    if boards is not None:
        (report.boards_published, report.boards_unchanged,
         report.boards_after_run) = boards.result()
    _log(report)
    return report


def _log(report: SweepReport) -> None:
    logger = run_logger("escalation_sweep")
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
