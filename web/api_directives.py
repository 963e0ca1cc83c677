"""The JSON API of a province's many directives (included by ``web.api`` under /api/v1): the
list with progress, one directive, its board, and tracked items filtered and paged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from models.directive import ItemStatus
from tidtam.app.directive_api import (
    MAX_ITEMS,
    board_by_slug,
    close,
    directive_line,
    directive_lines,
    items_page,
)
from web.deps import ApiUser, NowDep, SessionDep, TodayDep
from web.schemas import DB_INT_MAX, BoardPublic, CloseIn, DirectiveProgressPublic, ItemsPagePublic, errors

router = APIRouter()

DirectiveQuery = Annotated[str | None, Query(
    description="a directive's slug; unknown → 404 listing the active ones")]


@router.get("/directives", response_model=list[DirectiveProgressPublic],
            responses=errors(403, 404))
def list_directives(user: ApiUser, session: SessionDep, today: TodayDep,
                    province: Annotated[str | None, Query(
                        description="the Department: one province's (else every province's)")]
                    = None) -> list[DirectiveProgressPublic]:
    """Your province's directives: active first, then loaded, then closed, newest letter first.

    Each with its status and progress (done / expected, overdue, reports); district roles get
    the list without the province's progress.
    """
    return [DirectiveProgressPublic.of(line)
            for line in directive_lines(session, user, province, today)]


@router.get("/directives/{slug}", response_model=DirectiveProgressPublic,
            responses=errors(403, 404))
def get_directive(slug: str, user: ApiUser, session: SessionDep,
                  today: TodayDep) -> DirectiveProgressPublic:
    """One directive with its progress; an unknown slug gets a 404 that lists the active ones."""
    return DirectiveProgressPublic.of(directive_line(session, user, slug, today))


@router.post("/directives/{slug}/close", response_model=DirectiveProgressPublic,
             responses=errors(403, 404, 409, 422))
def close_directive(slug: str, body: CloseIn, user: ApiUser, session: SessionDep, now: NowDep,
                    today: TodayDep) -> DirectiveProgressPublic:
    """Close a directive, with a reason (the province's coordinator): never chased again, its
    queued messages cancelled, still readable. 409 when it is closed already."""
    return DirectiveProgressPublic.of(close(session, user, slug, reason=body.reason, now=now,
                                            today=today))


@router.get("/directives/{slug}/board", response_model=BoardPublic, responses=errors(403, 404))
def get_directive_board(slug: str, user: ApiUser, session: SessionDep,
                        today: TodayDep) -> BoardPublic:
    """That directive's district × step board: the whole province, or a district role's own row."""
    return BoardPublic.of(board_by_slug(session, user, slug, today))


@router.get("/items", response_model=ItemsPagePublic, responses=errors(403, 404))
def list_items(user: ApiUser, session: SessionDep, today: TodayDep,
               directive: DirectiveQuery = None,
               district: Annotated[str | None, Query(description="a district's code")] = None,
               status: ItemStatus | None = None,
               limit: Annotated[int, Query(ge=1, le=MAX_ITEMS)] = 100,
               offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0) -> ItemsPagePublic:
    """Tracked items by due date, then district and step, with the total that match.

    Without ``directive``: the items of every active directive you may read. District roles
    read only their own district.
    """
    return ItemsPagePublic.of(items_page(session, user, today=today, slug=directive,
                                         district_code=district, status=status,
                                         limit=limit, offset=offset))
