"""The reporting-rate chart: its own printable page, the picture as an SVG file, and the
templates' ``rate_chart`` (the board page draws its chart from the board it has already read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from starlette.responses import Response

from domain.charts import tick_label
from tidtam.app.charts import board_chart, directive_chart
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from web.rendering import page_context, render

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """The chart's routes, and what its templates call."""
    app.include_router(router)
    env = app.state.templates.env
    tz = app.state.settings.tz
    env.globals["rate_chart"] = lambda board: board_chart(board, tz)
    env.globals["chart_tick"] = tick_label


@router.get("/directives/{slug}/chart")
def chart_page(request: Request, slug: str, user: CurrentUser, session: SessionDep, now: NowDep,
               settings: SettingsDep,
               district: Annotated[str, Query(max_length=8)] = "") -> Response:
    """The chart large, for a meeting or A4 landscape paper; ``?district=`` one district's."""
    chart = directive_chart(session, user, slug, now=now, tz=settings.tz,
                            district_code=district or None)
    return render(request, "chart.html", {"chart": chart})


@router.get("/directives/{slug}/chart.svg")
def chart_file(request: Request, slug: str, user: CurrentUser, session: SessionDep, now: NowDep,
               settings: SettingsDep,
               district: Annotated[str, Query(max_length=8)] = "") -> Response:
    """The same picture as a file, for a slide or a letter."""
    chart = directive_chart(session, user, slug, now=now, tz=settings.tz,
                            district_code=district or None)
    name = f"{slug}-{district}-rate.svg" if district else f"{slug}-rate.svg"
    return request.app.state.templates.TemplateResponse(
        request, "chart_file.svg.j2", page_context(request, {"chart": chart}),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'inline; filename="{name}"'})
