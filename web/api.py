"""The JSON API under /api/v1: bearer tokens only (never the session cookie), OpenAPI at /docs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from starlette.responses import Response

from domain.standing import is_late
from models.directive import Directive, ItemStatus
from models.outbox import Channel, OutboxStatus
from models.sessions import SessionKind
from models.user import UserPublic
from tidtam.app import reporting
from tidtam.app.accounts import Limits, TooManyAttempts, end_session, sign_in
from tidtam.app.boards import (
    item_detail,
    provinces_for,
    unwaive_item,
    waive_item,
)
from tidtam.app.directive_api import (
    board_of_caller,
    district_board,
    outbox_directive,
    province_board_of,
)
from tidtam.app.national import (
    department_due,
    national_board,
    national_list,
    report_rate,
    submit_provincial_report,
)
from tidtam.app.outbox import outbox_for, outbox_query
from tidtam.app.tracking import complete_facts
from web import api_directives
from web.deps import (
    ApiCredentials,
    ApiUser,
    NowDep,
    SessionDep,
    SettingsDep,
    TodayDep,
    client_address,
    client_name,
    signed_in_and_item,
)
from web.errors import bilingual
from web.schemas import (
    BoardPublic,
    DepartmentIn,
    DirectivePublic,
    DoneIn,
    ItemPublic,
    NationalBoardPublic,
    OutboxMessagePublic,
    ProvincePublic,
    ProvincialReportPublic,
    ReportIn,
    ReportPublic,
    RowId,
    TokenPublic,
    UnwaiveIn,
    VersionIn,
    WaiveIn,
    errors,
)

router = APIRouter(prefix="/api/v1", tags=["api"], responses=errors(401))

# Older endpoints named no directive: ?directive= names one; without it, a province that follows
# one active directive answers as before, one with several answers 409 listing them.
DirectiveQuery = Annotated[str | None, Query(
    description="a directive's slug; needed (else 409) when the province follows several")]


@router.post("/token", response_model=TokenPublic, responses=errors(429))
def token(request: Request, session: SessionDep, settings: SettingsDep, now: NowDep,
          form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenPublic | Response:
    """OAuth2 password flow: a bearer token valid for TIDTAM_SESSION_MAX_HOURS (12 by default),
    until `POST /api/v1/logout`, a password change or the account's disabling. Too many wrong
    passwords: 429 with Retry-After, and no password is checked."""
    try:
        result = sign_in(session, form.username, form.password, address=client_address(request),
                         now=now, limits=Limits.of(settings), kind=SessionKind.API,
                         client=client_name(request))
    except TooManyAttempts as refused:
        return JSONResponse({"detail": {"th": refused.message_th, "en": refused.message_en}},
                            status_code=429, headers={"Retry-After": str(refused.retry_after)})
    if result is None:  # answered, not raised: the failure counted must be committed
        return JSONResponse({"detail": _wrong_password()}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return TokenPublic(access_token=result[1])


def _wrong_password() -> dict[str, str]:
    return bilingual("login.failed")


@router.post("/logout", status_code=204, response_class=Response)
def logout(request: Request, user: ApiUser, session: SessionDep, now: NowDep) -> Response:
    """End the bearer token of this call (other tokens and browser sessions go on)."""
    end_session(session, request.state.api_token, SessionKind.API, now, "signed out")
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic)
def me(user: ApiUser) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("/board", response_model=BoardPublic, responses=errors(403, 404, 409))
def get_board(user: ApiUser, session: SessionDep, today: TodayDep,
              directive: DirectiveQuery = None) -> BoardPublic:
    """A directive's board: the whole province, or a district role's own district."""
    return BoardPublic.of(board_of_caller(session, user, today, directive))


@router.get("/provinces", response_model=list[ProvincePublic])
def list_provinces(user: ApiUser, session: SessionDep) -> list[ProvincePublic]:
    """The provinces whose boards you may open: every one for the Department, else your own."""
    return [ProvincePublic.model_validate(p, from_attributes=True) for p in provinces_for(session, user)]


@router.get("/provinces/{code}/board", response_model=BoardPublic,
            responses=errors(403, 404, 409))
def get_province_board(code: str, user: ApiUser, session: SessionDep, today: TodayDep,
                       directive: DirectiveQuery = None) -> BoardPublic:
    """One province's board of a directive: its coordinator and head, and the Department viewer."""
    return BoardPublic.of(province_board_of(session, user, code, today, directive))


@router.get("/districts/{code}/items", response_model=list[ItemPublic],
            responses=errors(403, 404, 409))
def district_items(code: str, user: ApiUser, session: SessionDep, today: TodayDep,
                   directive: DirectiveQuery = None) -> list[ItemPublic]:
    """One district's items of a directive (``/items?district=`` reads across directives)."""
    board = district_board(session, user, code, today, directive)
    return [ItemPublic.of_cell(cell, board.directive.slug)
            for row in board.rows for cell in row.cells]


@router.get("/items/{item_id}", response_model=ItemPublic, responses=errors(403, 404))
def get_item(item_id: RowId, user: ApiUser, session: SessionDep, today: TodayDep) -> ItemPublic:
    return ItemPublic.of_detail(item_detail(session, user, item_id, today))


@router.post("/items/{item_id}/done", response_model=ItemPublic,
             responses=errors(403, 404, 409, 422))
async def item_done(request: Request, item_id: RowId, body: DoneIn,
                    credentials: ApiCredentials) -> ItemPublic:
    """Mark an item done; ``version`` must be the one you read (else 409).

    A 422 is ``{"detail": {"th", "en"}}`` when a rule refuses the input (a note over 2000
    characters), FastAPI's field list when the JSON itself has the wrong shape.
    """
    # The token's check, the mark and its commit in one unit of work (bench P2); the answer is
    # the item as written, not read again. Its instant is the one the token was checked at (the
    # app's clock read once; "today" as ``TodayDep`` has it), not two more dependencies to solve.
    now = credentials.now
    today = now.astimezone(request.app.state.settings.tz).date()
    marked = await signed_in_and_item(request, credentials, item_id, lambda session, user, facts:
                                      complete_facts(session, user, facts, item_id, now=now,
                                                     note=body.note,
                                                     expected_version=body.version))
    facts = marked.facts
    return ItemPublic(id=facts.id, directive_slug=facts.directive_slug, step_code=facts.step_code,
                      district_code=facts.district_code, status=marked.status,
                      due_on=facts.due_on,
                      overdue=is_late(marked.status == ItemStatus.OPEN, facts.due_on, today),
                      completed_at=marked.completed_at, completed_by_id=marked.completed_by_id,
                      note=marked.note, waived_at=facts.waived_at,
                      waived_by_id=facts.waived_by_id, waiver_reason=facts.waiver_reason,
                      version=marked.version)


@router.post("/items/{item_id}/waive", response_model=ItemPublic,
             responses=errors(403, 404, 409, 422))
def item_waive(item_id: RowId, body: WaiveIn, user: ApiUser, session: SessionDep, now: NowDep,
               today: TodayDep) -> ItemPublic:
    """Mark an open step not applicable to the district (ยกเว้น): the province's coordinator only.

    It then counts as settled and is no longer chased. 403 for anyone else, 409 for a stale
    ``version``, an item not open, or the report step (the report form completes it), 422
    ``{"detail": {"th", "en"}}`` for an empty or too long reason.
    """
    return ItemPublic.of_detail(waive_item(session, user, item_id, now=now, today=today,
                                           reason=body.reason, expected_version=body.version))


@router.post("/items/{item_id}/unwaive", response_model=ItemPublic,
             responses=errors(403, 404, 409, 422))
def item_unwaive(item_id: RowId, body: UnwaiveIn, user: ApiUser, session: SessionDep, now: NowDep,
                 today: TodayDep) -> ItemPublic:
    """Undo a waiver: the step is open again (and chased again); the coordinator only.

    409 when the item is not waived or ``version`` is stale.
    """
    return ItemPublic.of_detail(unwaive_item(session, user, item_id, now=now, today=today,
                                             reason=body.reason, expected_version=body.version))


_STATUSES = [s.value for s in OutboxStatus]
_CHANNELS = [c.value for c in Channel]


_PAGE_HEADERS = {"headers": {
    "X-Total-Count": {"description": "how many messages match the filters in all",
                      "schema": {"type": "integer", "minimum": 0}},
    "Link": {"description": 'the next and previous pages (RFC 8288: rel="next", rel="prev"), '
                            "when there are", "schema": {"type": "string"}}}}
MAX_OFFSET = 10_000_000


@router.get("/outbox", response_model=list[OutboxMessagePublic],
            responses={200: _PAGE_HEADERS, **errors(403, 404, 422)})
def outbox(user: ApiUser, session: SessionDep, settings: SettingsDep, request: Request,
           response: Response,
           directive: Annotated[str | None, Query(
               description="only the messages about this directive (else every one)")] = None,
           events: Annotated[bool, Query(
               description="the Prefect events of the province's directives too")] = False,
           status: Annotated[str | None, Query(
               description="only messages in this status", json_schema_extra={"enum": _STATUSES})
           ] = None,
           channel: Annotated[str | None, Query(
               description="only messages on this channel", json_schema_extra={"enum": _CHANNELS})
           ] = None,
           district: Annotated[str | None, Query(
               description="only messages about this district (its 4-digit code, of your "
                           "province)", json_schema_extra={"pattern": "^[0-9]{4}$"})] = None,
           rung: Annotated[str | None, Query(
               description="only messages of this rung, e.g. reminder-3, report-returned",
               json_schema_extra={"pattern": "^[a-z0-9][a-z0-9-]{0,31}$"})] = None,
           date_from: Annotated[str | None, Query(
               alias="from", description="created on or after this day (YYYY-MM-DD, the "
               "office's time zone)", json_schema_extra={"format": "date"})] = None,
           date_to: Annotated[str | None, Query(
               alias="to", description="created on or before this day (YYYY-MM-DD, the "
               "office's time zone)", json_schema_extra={"format": "date"})] = None,
           limit: Annotated[int, Query(ge=1, le=500, description="messages on this page")] = 500,
           offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description=(
               "how many of the matching messages (newest first) to skip"))] = 0,
           ) -> list[OutboxMessagePublic]:
    """The province's messages to people, newest first (coordinator and provincial head), a
    page of ``limit`` (at most 500) from ``offset``: the ``X-Total-Count`` header says how many
    match, the ``Link`` header gives the next and previous pages. ``events=true``: with the
    Prefect events (channel ``prefect-event``) of its directives. The filters are the outbox
    page's; a bad filter value is a 422 in Thai and English."""
    query = outbox_query(status=status, channel=channel, district=district, rung=rung,
                         date_from=date_from, date_to=date_to)
    listing = outbox_for(session, user, directive=outbox_directive(session, user, directive),
                         events=events, query=query, tz=settings.tz, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(listing.total)
    pages = [(rel, at) for rel, at, there in (
        ("prev", max(0, offset - limit), offset > 0),
        ("next", offset + limit, offset + len(listing) < listing.total)) if there]
    if pages:
        response.headers["Link"] = ", ".join(
            f'<{request.url.include_query_params(offset=at, limit=limit)}>; rel="{rel}"'
            for rel, at in pages)
    return [OutboxMessagePublic.of(m) for m in listing]


DirectiveQuery = Annotated[str | None, Query(
    alias="directive", description="the directive's slug; may be left out while the province "
    "follows one active directive (409 listing the active ones otherwise)")]


@router.get("/districts/{code}/report", response_model=ReportPublic,
            responses=errors(403, 404, 409))
def get_report(code: str, user: ApiUser, session: SessionDep,
               directive: DirectiveQuery = None) -> ReportPublic:
    """The district's report form for the directive, with what is wrong and derived.

    409 when no ``directive`` is named and the province follows several.
    """
    named = reporting.directive_for_report(session, user, code, directive)
    return ReportPublic.of(reporting.report_view(session, user, code, directive=named))


@router.put("/districts/{code}/report", response_model=ReportPublic,
            responses=errors(403, 404, 409, 422))
def put_report(code: str, body: ReportIn, user: ApiUser, session: SessionDep, now: NowDep,
               request: Request, directive: DirectiveQuery = None) -> ReportPublic:
    """Save the draft as typed (findings do not block saving); ``version`` 0 creates it.

    Photos of sessions left out of the new draft are removed with them. 409 when ``version``
    is stale, the directive is closed, or no ``directive`` is named and the province follows
    several.
    """
    named = reporting.directive_for_report(session, user, code, directive)
    return ReportPublic.of(reporting.save_draft(session, user, code, body.report, directive=named,
                                                expected_version=body.version, now=now,
                                                store=request.app.state.photos))


@router.post("/districts/{code}/report/submit", response_model=ReportPublic,
             responses=errors(403, 404, 409, 422))
def submit_report(code: str, body: VersionIn, user: ApiUser, session: SessionDep,
                  now: NowDep, directive: DirectiveQuery = None) -> ReportPublic:
    """Send the report to the province; a 422 lists what must be corrected first.

    409 when ``version`` is stale, the directive is closed, or no ``directive`` is named and
    the province follows several.
    """
    named = reporting.directive_for_report(session, user, code, directive)
    return ReportPublic.of(reporting.submit_report(session, user, code, directive=named,
                                                   expected_version=body.version, now=now))


@router.get("/national", response_model=list[DirectivePublic], responses=errors(403))
def list_national(user: ApiUser, session: SessionDep) -> list[DirectivePublic]:
    """The Department's national directives, newest first (Department viewers only)."""
    return [DirectivePublic.model_validate(d, from_attributes=True)
            for d in national_list(session, user)]


@router.get("/national/{slug}/board", response_model=NationalBoardPublic,
            responses=errors(403, 404))
def get_national_board(slug: str, user: ApiUser, session: SessionDep, today: TodayDep,
                       settings: SettingsDep) -> NationalBoardPublic:
    """Provinces × steps with reporting rates, and each province's report to the Department."""
    return NationalBoardPublic.of(national_board(session, user, slug, today, settings.tz))


@router.post("/reports/department", response_model=ProvincialReportPublic,
             responses=errors(403, 404, 409, 422))
def submit_to_department(user: ApiUser, session: SessionDep, now: NowDep, today: TodayDep,
                         settings: SettingsDep, body: DepartmentIn | None = None,
                         directive: DirectiveQuery = None) -> ProvincialReportPublic:
    """The province sends the directive's compiled accepted reports to the Department (again:
    replaces); a closed directive's too.

    409 when no ``directive`` is named and the province follows several.
    """
    named = reporting.directive_for_province(session, user, directive)
    report = submit_provincial_report(session, user, directive=named, now=now,
                                      note=body.note if body else None)
    due = department_due(session.get(Directive, report.directive_id))
    return ProvincialReportPublic.of(report, bool(report_rate(report, due, today, settings.tz).on_time))


router.include_router(api_directives.router)
