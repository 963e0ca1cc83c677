"""The reporting-rate chart: its own printable page, the picture as an SVG file, the series as
JSON (``/api/v1/directives/{slug}/rate``), and the templates' ``rate_chart`` (the board page
draws its chart from the board it has already read)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from domain.charts import tick_label
from tidtam.app.charts import RateChart, board_chart, directive_chart
from web.deps import ApiUser, CurrentUser, NowDep, SessionDep, SettingsDep
from web.rendering import page_context, render
from web.schemas import errors

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["api"], responses=errors(401))

DistrictQuery = Annotated[str, Query(
    max_length=8, description="one district's code (district roles: their own, the default)")]


def install(app: FastAPI) -> None:
    """The chart's routes, and what its templates call."""
    app.include_router(router)
    app.include_router(api_router)
    env = app.state.templates.env
    tz = app.state.settings.tz
    env.globals["rate_chart"] = lambda board: board_chart(board, tz)
    env.globals["chart_tick"] = tick_label


@router.get("/directives/{slug}/chart")
def chart_page(request: Request, slug: str, user: CurrentUser, session: SessionDep, now: NowDep,
               settings: SettingsDep,
               district: DistrictQuery = "") -> Response:
    """The chart large, for a meeting or A4 landscape paper; ``?district=`` one district's."""
    chart = directive_chart(session, user, slug, now=now, tz=settings.tz,
                            district_code=district or None)
    return render(request, "chart.html", {"chart": chart})


@router.get("/directives/{slug}/chart.svg")
def chart_file(request: Request, slug: str, user: CurrentUser, session: SessionDep, now: NowDep,
               settings: SettingsDep,
               district: DistrictQuery = "") -> Response:
    """The same picture as a file, for a slide or a letter."""
    chart = directive_chart(session, user, slug, now=now, tz=settings.tz,
                            district_code=district or None)
    name = f"{slug}-{district}-rate.svg" if district else f"{slug}-rate.svg"
    return request.app.state.templates.TemplateResponse(
        request, "chart_file.svg.j2", page_context(request, {"chart": chart}),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'inline; filename="{name}"'})


class RatePointPublic(BaseModel):
    day: date
    expected: int = Field(description="the district × step items counted")
    done: int | None = Field(description="settled (done or waived) by the day's end, in the "
                                         "office's time zone; null after today")
    due: int = Field(description="items whose due date is on or before the day")
    percent: int | None = Field(description="done / expected, rounded down; null after today")
    due_percent: int


class DueDayPublic(BaseModel):
    day: date
    steps: list[str] = Field(description="the codes of the steps due that day")


class RateSeriesPublic(BaseModel):
    """A directive's reporting rate by day, from its launch to its last due date (or today)."""

    directive: str = Field(description="the directive's slug")
    reference_no: str
    scope: Literal["province", "district", "national"]
    district: str | None = Field(description="the district's code when scope is district")
    today: date
    expected: int
    due_days: list[DueDayPublic]
    points: list[RatePointPublic]

    @classmethod
    def of(cls, chart: RateChart) -> RateSeriesPublic:
        scope = "national" if chart.national else "district" if chart.district else "province"
        return cls(
            directive=chart.directive.slug, reference_no=chart.directive.reference_no,
            scope=scope, district=chart.district.code if chart.district else None,
            today=chart.today, expected=chart.expected,
            due_days=[DueDayPublic(day=m.day, steps=list(m.codes)) for m in chart.marks],
            points=[RatePointPublic(day=p.day, expected=p.expected, done=p.done, due=p.due,
                                    percent=p.percent, due_percent=p.due_percent)
                    for p in chart.series])


@api_router.get("/directives/{slug}/rate", response_model=RateSeriesPublic,
                responses=errors(403, 404))
def directive_rate(slug: str, user: ApiUser, session: SessionDep, now: NowDep,
                   settings: SettingsDep, district: DistrictQuery = "") -> RateSeriesPublic:
    """The reporting-rate chart's series: one point a day. The province's people see the whole
    directive (or one ``district``), district roles their own district, the Department any
    province's and, on a national directive, every province's against the Department's dates."""
    return RateSeriesPublic.of(directive_chart(session, user, slug, now=now, tz=settings.tz,
                                               district_code=district or None))
