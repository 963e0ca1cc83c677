"""The Department's pages: the national board (provinces × steps, reporting rates) and the
province's report to the Department (submitted from the province's reports page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlmodel import Session
from starlette.responses import Response

from models.user import UserPublic
from tidtam.app.charts import national_chart
from tidtam.app.national import (
    national_board,
    national_list,
    provinces_letters,
    submit_provincial_report,
)
from tidtam.app.reporting import directive_named
from web.auth import redirect
from web.board_page import chart_figure
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep, TodayDep, signed_in_page
from web.links import directive_path
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)


@router.get("/national")
async def national_page(request: Request, today: TodayDep, settings: SettingsDep,
                        now: NowDep) -> Response:
    """The newest national directive's board (or a page saying there is none yet), and the
    provinces' own letters: the sign-in, the reading and the drawing in one hop to the thread
    pool (``web.deps.signed_in_page``; bench P4)."""
    def page(session: Session, user: UserPublic) -> Response:
        directives = national_list(session, user)
        if not directives:
            return render(request, "national.html", {
                "board": None, "directives": [],
                "letters": provinces_letters(session, user, today)})
        return _board(request, user, session, directives[0].slug, today, settings, now,
                      directives)
    return await signed_in_page(request, page)


@router.get("/national/{slug}")
async def national_slug_page(request: Request, slug: str, today: TodayDep, settings: SettingsDep,
                             now: NowDep) -> Response:
    return await signed_in_page(request, lambda session, user: _board(
        request, user, session, slug, today, settings, now))


def _board(request: Request, user, session, slug: str, today, settings, now,
           directives=None) -> Response:
    board = national_board(session, user, slug, today, settings.tz)
    return render(request, "national.html", {
        "board": board,
        "directives": directives if directives is not None else national_list(session, user),
        "chart": national_chart(session, user, board.directive, now=now, tz=settings.tz),
        "chart_figure": chart_figure,  # the figure drawn again only when the chart changed
        "letters": provinces_letters(session, user, today)})


@router.post("/directives/{slug}/reports/department")
def submit_to_department(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                         now: NowDep, note: Annotated[str, Form()] = "") -> Response:
    directive = directive_named(session, user, slug)
    submit_provincial_report(session, user, directive=directive, now=now, note=note)
    flash(request, "flash.department_submitted")
    return redirect(directive_path(directive, "/reports#department"))
