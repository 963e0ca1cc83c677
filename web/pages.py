"""The web pages: each route parses, calls one use case, and renders (or redirects)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from domain.access import DISTRICT_ROLES, NATIONAL_ROLES
from models.user import User
from tidtam.app.boards import (
    board_for,
    district_view,
    item_detail,
    province_board,
    provinces_for,
)
from tidtam.app.outbox import outbox_for
from tidtam.app.tracking import mark_done, reopen_waived, waive
from web.auth import redirect, safe_next
from web.deps import CurrentUser, NowDep, SessionDep, TodayDep
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)


def home_path(user: User) -> str:
    """District people start at their district; province people at the board; the Department at
    the national board."""
    if user.role in DISTRICT_ROLES and user.district_code:
        return f"/districts/{user.district_code}"
    if user.role in NATIONAL_ROLES:
        return "/national"
    return "/board"


@router.get("/")
def home(user: CurrentUser) -> Response:
    return redirect(home_path(user))


@router.get("/districts/{code}")
def district_page(request: Request, code: str, user: CurrentUser, session: SessionDep,
                  today: TodayDep) -> Response:
    view = district_view(session, user, code, today)
    return render(request, "district.html", {"view": view, "board": view.board, "row": view.row})


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: int, user: CurrentUser, session: SessionDep,
              today: TodayDep) -> Response:
    detail = item_detail(session, user, item_id, today)
    return render(request, "item.html", {"detail": detail, "item": detail.item,
                                         "step": detail.step})


@router.post("/items/{item_id}/done")
def item_done(request: Request, item_id: int, user: CurrentUser, session: SessionDep,
              now: NowDep, version: Annotated[int, Form()], note: Annotated[str, Form()] = "",
              next: Annotated[str, Form()] = "") -> Response:
    item = mark_done(session, user, item_id, now=now, note=note, expected_version=version)
    flash(request, "flash.item_done")
    return redirect(safe_next(next) or f"/districts/{item.district_code}#item-{item.id}")


@router.post("/items/{item_id}/waive")
def item_waive(request: Request, item_id: int, user: CurrentUser, session: SessionDep,
               now: NowDep, version: Annotated[int, Form()], reason: Annotated[str, Form()] = "",
               next: Annotated[str, Form()] = "") -> Response:
    """The coordinator marks the step not applicable to this district (ยกเว้น), with a reason."""
    item = waive(session, user, item_id, reason=reason, now=now, expected_version=version)
    flash(request, "flash.item_waived")
    return redirect(safe_next(next) or f"/items/{item.id}")


@router.post("/items/{item_id}/unwaive")
def item_unwaive(request: Request, item_id: int, user: CurrentUser, session: SessionDep,
                 now: NowDep, version: Annotated[int, Form()], reason: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "") -> Response:
    """The coordinator undoes a waiver: the step is open (and chased) again."""
    item = reopen_waived(session, user, item_id, reason=reason, now=now, expected_version=version)
    flash(request, "flash.item_unwaived")
    return redirect(safe_next(next) or f"/items/{item.id}")


@router.get("/board")
def board_page(request: Request, user: CurrentUser, session: SessionDep,
               today: TodayDep) -> Response:
    return render(request, "board.html", {"board": board_for(session, user, today)})


@router.get("/provinces")
def provinces_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    return render(request, "provinces.html", {"provinces": provinces_for(session, user)})


@router.get("/provinces/{code}")
def province_page(request: Request, code: str, user: CurrentUser, session: SessionDep,
                  today: TodayDep) -> Response:
    return render(request, "board.html", {"board": province_board(session, user, code, today)})


@router.get("/outbox")
def outbox_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    return render(request, "outbox.html", {"messages": outbox_for(session, user)})
