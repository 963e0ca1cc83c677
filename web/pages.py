"""The web pages: each route parses, calls one use case, and renders (or redirects)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from domain.access import DISTRICT_ROLES, NATIONAL_ROLES
from models.user import User
from tidtam.app.boards import (
    directive_board_page,
    directive_district,
    item_detail,
    provinces_for,
    visible_province,
)
from tidtam.app.directives import (
    close_directive,
    district_work,
    province_directives,
    visible_directive,
)
from tidtam.app.outbox import outbox_page as outbox_page_for
from tidtam.app.outbox import outbox_query, push_quota
from tidtam.app.tracking import complete_facts, reopen_waived, waive
from web.auth import redirect, safe_next
from web.board_page import board_cells, chart_figure
from web.deps import (
    BrowserCredentials,
    CurrentUser,
    NowDep,
    SessionDep,
    SettingsDep,
    TodayDep,
    signed_in_and_item,
    signed_in_page,
)
from web.links import directive_path, legacy_path
from web.rendering import flash, render
from web.schemas import FormVersion, RowId

router = APIRouter(include_in_schema=False)


def home_path(user: User) -> str:
    """District people start at their work across letters (งานของฉัน); province people at their
    province's directives; the Department at the national board."""
    if user.role in DISTRICT_ROLES and user.district_code:
        return "/my"
    if user.role in NATIONAL_ROLES:
        return "/national"
    if user.province_code:
        return f"/provinces/{user.province_code}/directives"
    return "/my"


@router.get("/")
def home(user: CurrentUser) -> Response:
    return redirect(home_path(user))


@router.get("/my")
def my_work_page(request: Request, user: CurrentUser, session: SessionDep,
                 today: TodayDep) -> Response:
    """งานของฉัน: the district's open items across every active directive."""
    work = district_work(session, user, None, today)
    return render(request, "my_work.html", {"work": work, "here": "/my"})


@router.get("/districts/{code}")
def district_work_page(request: Request, code: str, user: CurrentUser, session: SessionDep,
                       today: TodayDep) -> Response:
    """The same page for a named district (the province's people may look)."""
    work = district_work(session, user, code, today)
    here = "/my" if code == user.district_code else f"/districts/{code}"
    return render(request, "my_work.html", {"work": work, "here": here})


@router.get("/provinces/{code}/directives")
def directives_page(request: Request, code: str, user: CurrentUser, session: SessionDep,
                    today: TodayDep) -> Response:
    return render(request, "directives.html",
                  {"listing": province_directives(session, user, code, today)})


@router.post("/directives/{slug}/close")
def directive_close(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                    now: NowDep, reason: Annotated[str, Form()] = "") -> Response:
    directive = close_directive(session, user, slug, reason=reason, now=now)
    flash(request, "flash.directive_closed", ref=directive.reference_no)
    return redirect(f"/provinces/{directive.province_code}/directives")


@router.get("/directives/{slug}")
async def board_page(request: Request, slug: str, today: TodayDep) -> Response:
    """A directive's board: the sign-in checked, the board read and drawn in one hop to the
    thread pool (``web.deps.signed_in_page``; bench P4)."""
    return await signed_in_page(request, lambda session, user: render(
        request, "board.html", {"board": directive_board_page(session, user, slug, today),
                                "board_cells": board_cells, "chart_figure": chart_figure}))


@router.get("/directives/{slug}/districts/{code}")
def district_page(request: Request, slug: str, code: str, user: CurrentUser,
                  session: SessionDep, today: TodayDep) -> Response:
    view = directive_district(session, user, slug, code, today)
    return render(request, "district.html", {"view": view, "board": view.board, "row": view.row})


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: RowId, user: CurrentUser, session: SessionDep,
              today: TodayDep) -> Response:
    detail = item_detail(session, user, item_id, today)
    return render(request, "item.html", {"detail": detail, "item": detail.item,
                                         "step": detail.step})


@router.post("/items/{item_id}/done")
async def item_done(request: Request, item_id: RowId, credentials: BrowserCredentials,
                    version: FormVersion, note: Annotated[str, Form()] = "",
                    next: Annotated[str, Form()] = "") -> Response:
    """The click that marks a step done: the sign-in check, the mark and its commit in one unit
    of work (``web.deps.signed_in_and_item``; bench P2). Its instant is the one the credentials
    were checked at (the app's clock, read once: no ``NowDep`` to solve)."""
    now = credentials.now
    marked = await signed_in_and_item(request, credentials, item_id, lambda session, user, facts:
                                      complete_facts(session, user, facts, item_id, now=now,
                                                     note=note, expected_version=version))
    flash(request, "flash.item_done")
    facts = marked.facts
    return redirect(safe_next(next) or directive_path(
        facts.directive_slug, f"/districts/{facts.district_code}#item-{facts.id}"))


@router.post("/items/{item_id}/waive")
def item_waive(request: Request, item_id: RowId, user: CurrentUser, session: SessionDep,
               now: NowDep, version: FormVersion, reason: Annotated[str, Form()] = "",
               next: Annotated[str, Form()] = "") -> Response:
    """The coordinator marks the step not applicable to this district (ยกเว้น), with a reason."""
    item = waive(session, user, item_id, reason=reason, now=now, expected_version=version)
    flash(request, "flash.item_waived")
    return redirect(safe_next(next) or f"/items/{item.id}")


@router.post("/items/{item_id}/unwaive")
def item_unwaive(request: Request, item_id: RowId, user: CurrentUser, session: SessionDep,
                 now: NowDep, version: FormVersion, reason: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "") -> Response:
    """The coordinator undoes a waiver: the step is open (and chased) again."""
    item = reopen_waived(session, user, item_id, reason=reason, now=now, expected_version=version)
    flash(request, "flash.item_unwaived")
    return redirect(safe_next(next) or f"/items/{item.id}")


@router.get("/board")
def old_board(user: CurrentUser, session: SessionDep) -> Response:
    """A link from before: the one active directive's board (district people: their district's
    page of it), or the list to choose from."""
    if user.role in DISTRICT_ROLES and user.district_code:
        return redirect(legacy_path(session, user, f"/districts/{user.district_code}"))
    return redirect(legacy_path(session, user))


@router.get("/provinces")
def provinces_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    return render(request, "provinces.html", {"provinces": provinces_for(session, user)})


@router.get("/provinces/{code}")
def old_province_page(code: str, user: CurrentUser, session: SessionDep) -> Response:
    """A link from before: the province's one active directive's board, or its directives."""
    province = visible_province(session, user, code)
    return redirect(legacy_path(session, user, province_code=province.code))


@router.get("/outbox")
def outbox_page(request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep,
                now: NowDep,
                directive: Annotated[str, Query()] = "",
                events: Annotated[bool, Query()] = False,
                status: Annotated[str, Query()] = "", channel: Annotated[str, Query()] = "",
                district: Annotated[str, Query()] = "", rung: Annotated[str, Query()] = "",
                date_from: Annotated[str, Query(alias="from")] = "",
                date_to: Annotated[str, Query(alias="to")] = "",
                page: Annotated[str, Query()] = "1") -> Response:
    """The province's messages as people read them, filtered, 50 a page; ``?directive=SLUG``:
    only those about that directive; ``?events=1``: the Prefect events of its directives too.
    A bad filter value is a 422 page in Thai and English."""
    query = outbox_query(status=status, channel=channel, district=district, rung=rung,
                         date_from=date_from, date_to=date_to, page=page)
    chosen = visible_directive(session, user, directive) if directive else None
    listing = outbox_page_for(session, user, query, directive=chosen, events=events,
                              tz=settings.tz)
    kept = {k: v for k, v in (("directive", directive), ("events", "1" if events else ""),
                              ("status", status), ("channel", channel), ("district", district),
                              ("rung", rung), ("from", date_from), ("to", date_to)) if v}
    return render(request, "outbox.html", {
        "listing": listing, "messages": listing.rows, "chosen": chosen, "events": events,
        "directives": listing.directives, "query": query, "push_quota": push_quota(session, now),
        "page_url": lambda n: "/outbox?" + urlencode({**kept, "page": n})})
