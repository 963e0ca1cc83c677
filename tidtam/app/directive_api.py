"""What the JSON API reads about a province's many directives: the list with progress, one
directive, its board, a page of tracked items filtered by directive, district and status, and
which directive an older endpoint (one that named none) is about.

Access is checked here, as in ``tidtam.app.boards``: province roles read their province, the
Department every province, district roles their own district of their province's directives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, select

from domain.access import DISTRICT_ROLES, NATIONAL_ROLES, can_see_province
from domain.errors import Forbidden, NotFound
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemStatus,
    TrackedItem,
    directives_of,
)
from models.user import User
from tidtam.app.boards import Board, board, visible_province
from tidtam.app.directives import (
    DirectiveProgress,
    close_directive,
    directive_in,
    find_directive,
    progress_of,
    province_for_listing,
)
from tidtam.app.tracking import visible_district

MAX_ITEMS = 500  # one page of /api/v1/items at most


def readable_directive(session: Session, actor: User, slug: str) -> Directive:
    """A province's directive the actor may read: NotFound (listing the active ones the actor
    could name instead) for an unknown slug, Forbidden for another province's.

    District roles read their own province's directives (their district's part of them).
    """
    directive = find_directive(session, slug, None if actor.role in NATIONAL_ROLES
                               else actor.province_code)
    if directive.province_code is None:
        raise NotFound(f"{slug} is the Department's: read it on the national board "
                       f"(/api/v1/national/{slug}/board)",
                       f"{slug} เป็นหนังสือสั่งการของกรมฯ: ดูที่กระดานระดับประเทศ "
                       f"(/api/v1/national/{slug}/board)")
    if not (can_see_province(actor.role, actor.province_code, directive.province_code)
            or _own_province_district_role(actor, directive.province_code)):
        raise Forbidden(f"you may not see directive {slug}",
                        f"คุณไม่มีสิทธิ์ดูหนังสือสั่งการ {slug}")
    return directive


def _own_province_district_role(actor: User, province_code: str | None) -> bool:
    return (actor.role in DISTRICT_ROLES and actor.district_code is not None
            and actor.province_code is not None and actor.province_code == province_code)


# --- the list, one directive, its board ----------------------------------------------------------

@dataclass(frozen=True)
class DirectiveLine:
    """A directive as the API lists it; ``progress`` is None for district roles (a district
    reads its own part on the directive's board, not the province's counts)."""

    directive: Directive
    progress: DirectiveProgress | None


def directive_lines(session: Session, actor: User, province_code: str | None,
                    today: date) -> list[DirectiveLine]:
    """The directives of the actor's province (the Department: of ``province_code``, or of every
    province), active first, then loaded, then closed; newest letter first within each."""
    if _own_province_district_role(actor, province_code or actor.province_code):
        return [DirectiveLine(d, None) for d in _by_status(directives_of(session, actor.province_code))]
    if actor.role in NATIONAL_ROLES and province_code is None:
        directives = directives_of(session)
    else:
        directives = directives_of(session, province_for_listing(session, actor, province_code).code)
    return [DirectiveLine(p.directive, p) for p in progress_of(session, _by_status(directives), today)]


_ORDER = {DirectiveStatus.ACTIVE: 0, DirectiveStatus.LOADED: 1, DirectiveStatus.CLOSED: 2}


def _by_status(directives: list[Directive]) -> list[Directive]:
    return sorted(directives, key=lambda d: _ORDER[d.status])  # stable: newest first kept


def directive_line(session: Session, actor: User, slug: str, today: date) -> DirectiveLine:
    directive = readable_directive(session, actor, slug)
    if actor.role in DISTRICT_ROLES:
        return DirectiveLine(directive, None)
    return DirectiveLine(directive, progress_of(session, [directive], today)[0])


def close(session: Session, actor: User, slug: str, *, reason: str, now: datetime,
          today: date) -> DirectiveLine:
    """The coordinator closes the directive (``directives.close_directive``) and reads it back."""
    close_directive(session, actor, slug, reason=reason, now=now)
    return directive_line(session, actor, slug, today)


def board_by_slug(session: Session, actor: User, slug: str, today: date) -> Board:
    """The directive's district × step board: the whole province, or a district role's own row
    (``boards.directive_board``, the page's, is the province's and the Department's only)."""
    directive = readable_directive(session, actor, slug)
    district = actor.district_code if actor.role in DISTRICT_ROLES else None
    return board(session, directive, today, district)


# --- the older endpoints, which named no directive -----------------------------------------------

def board_of_caller(session: Session, actor: User, today: date, slug: str | None) -> Board:
    """``/board``: the province for province roles, a district role's own district."""
    if actor.role in DISTRICT_ROLES and actor.district_code:
        return district_board(session, actor, actor.district_code, today, slug)
    if actor.role in NATIONAL_ROLES:
        raise NotFound("the Department opens a province's directives: /api/v1/directives?province=",
                       "กรมฯ เลือกดูหนังสือสั่งการทีละจังหวัด: /api/v1/directives?province=")
    if actor.province_code is None:
        raise Forbidden("your role may not see the provincial board",
                        "บทบาทของคุณไม่มีสิทธิ์ดูกระดานติดตามของจังหวัด")
    return province_board_of(session, actor, actor.province_code, today, slug)


def province_board_of(session: Session, actor: User, province_code: str, today: date,
                      slug: str | None) -> Board:
    province = visible_province(session, actor, province_code)
    return board(session, directive_in(session, province.code, slug), today)


def district_board(session: Session, actor: User, district_code: str, today: date,
                   slug: str | None) -> Board:
    """One district's row of a directive of its province."""
    district = visible_district(session, actor, district_code)
    return board(session, directive_in(session, district.province_code, slug), today,
                 district.code)


def outbox_directive(session: Session, actor: User, slug: str | None) -> Directive | None:
    """The directive ``/outbox?directive=`` filters by (None: every message of the province)."""
    return find_directive(session, slug, actor.province_code) if slug else None


# --- a page of items -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ItemRow:
    item: TrackedItem
    step: DirectiveStep
    directive: Directive
    overdue: bool


@dataclass(frozen=True)
class ItemsPage:
    items: list[ItemRow]
    total: int
    limit: int
    offset: int


def items_page(session: Session, actor: User, *, today: date, slug: str | None = None,
               district_code: str | None = None, status: ItemStatus | None = None,
               limit: int = 100, offset: int = 0) -> ItemsPage:
    """Tracked items by due date, then district and step, with the total matching.

    Without ``slug``: the items of every active directive the actor may read. District roles
    read only their own district's items, whatever ``district_code`` says (another → Forbidden).
    """
    limit, offset = max(1, min(limit, MAX_ITEMS)), max(0, offset)
    query = (select(TrackedItem, DirectiveStep, Directive)
             .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
             .join(Directive, Directive.id == TrackedItem.directive_id))
    for condition in _item_scope(session, actor, slug, district_code):
        query = query.where(condition)
    if status is not None:
        query = query.where(TrackedItem.status == status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(TrackedItem.due_on, TrackedItem.district_code,
                                       Directive.id, DirectiveStep.order, TrackedItem.id)
                        .limit(limit).offset(offset)).all()
    return ItemsPage([ItemRow(item, step, directive,
                              item.status == ItemStatus.OPEN and item.due_on < today)
                      for item, step, directive in rows], total, limit, offset)


def _item_scope(session: Session, actor: User, slug: str | None, district_code: str | None) -> list:
    """The WHERE conditions of what the actor may read and asked for."""
    conditions = []
    if actor.role in DISTRICT_ROLES:
        district_code = district_code or actor.district_code
    if district_code is not None:
        district = visible_district(session, actor, district_code)
        conditions.append(TrackedItem.district_code == district.code)
    elif actor.role not in NATIONAL_ROLES:
        if actor.province_code is None:
            raise Forbidden("your account belongs to no province", "บัญชีของคุณไม่ได้สังกัดจังหวัดใด")
        conditions.append(Directive.province_code == actor.province_code)
    if slug:
        conditions.append(TrackedItem.directive_id == readable_directive(session, actor, slug).id)
    else:
        conditions.append(Directive.status == DirectiveStatus.ACTIVE)
    return conditions

