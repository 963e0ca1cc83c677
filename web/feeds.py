"""What people carry out of tidtam: calendar feeds (ICS), printable cover sheets with a QR code
per district, and the board as XLSX and CSV.

The calendar address (``/calendar/<secret>.ics``) is read without signing in: a calendar app
cannot sign in, the secret is the proof (``tidtam.app.calendar_feed``), and a GET changes
nothing, so it needs no CSRF token. Making and revoking addresses are forms on the profile page
(signed in, CSRF-checked, audited). Routes parse, call one function, render.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import Response

from tidtam.app import calendar_feed
from tidtam.app.boards import directive_board, directive_district
from tidtam.app.national import national_board
from tidtam.documents.cover import cover_sheets
from tidtam.documents.exports import board_csv, board_xlsx, national_csv, national_xlsx
from web.auth import redirect
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep, TodayDep
from web.i18n import language_of
from web.profile import render_profile
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ICS = "text/calendar; charset=utf-8"
LangParam = Annotated[Literal["th", "en"] | None, Query(description="the headers' language")]


def export_lang(request: Request, lang: str | None) -> Literal["th", "en"]:
    """``?lang=`` when given, else the language the person chose in the UI (Thai by default)."""
    chosen = lang or language_of(request)
    return "en" if chosen == "en" else "th"


# --- calendar feeds -----------------------------------------------------------------------------

@router.api_route("/calendar/{secret}.ics", methods=["GET", "HEAD"])
def calendar(secret: str, session: SessionDep, settings: SettingsDep, now: NowDep,
             lang: Annotated[Literal["th", "en"], Query()] = "th") -> Response:
    """The feed a calendar app subscribes to; 404 once revoked."""
    body = calendar_feed.feed_ics(session, secret, base_url=settings.base_url, now=now, lang=lang)
    return Response(body, media_type=ICS, headers={
        "Content-Disposition": 'inline; filename="tidtam.ics"',
        "Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"})


@router.post("/profile/calendar")
def new_calendar(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                 settings: SettingsDep,
                 scope: Annotated[Literal["person", "district"], Form()] = "person",
                 district: Annotated[str, Form(max_length=4)] = "") -> Response:
    """A new address (an older one of the same kind ends); shown in full this once."""
    secret = calendar_feed.new_feed(session, user, now, scope=scope,
                                    district_code=district or None)
    url = settings.base_url.rstrip("/") + calendar_feed.feed_path(secret)
    return render_profile(request, user, session, now, settings, new_feed_url=url)


@router.post("/profile/calendar/{feed_id}/revoke")
def revoke_calendar(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                    feed_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
    calendar_feed.revoke_feed(session, user, feed_id, now)
    flash(request, "flash.calendar_revoked")
    return redirect("/profile#calendar")


# --- cover sheets with a QR code --------------------------------------------------------------

@router.get("/directives/{slug}/covers")
def covers(request: Request, slug: str, user: CurrentUser, session: SessionDep, today: TodayDep,
           settings: SettingsDep) -> Response:
    """Every district's cover sheet, one A4 page each (the province prints them at once)."""
    board = directive_board(session, user, slug, today)
    return _covers(request, board, cover_sheets(board, settings.base_url))


@router.get("/directives/{slug}/districts/{code}/cover")
def cover(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
          today: TodayDep, settings: SettingsDep) -> Response:
    """One district's cover sheet (its own people may print it too)."""
    view = directive_district(session, user, slug, code, today)
    return _covers(request, view.board,
                   cover_sheets(view.board, settings.base_url, view.district.code))


def _covers(request: Request, board, sheets) -> Response:
    response = render(request, "covers.html", {"board": board, "sheets": sheets})
    response.headers["Cache-Control"] = "private"
    return response


# --- the board as spreadsheets ----------------------------------------------------------------

@router.get("/directives/{slug}/board.xlsx")
def board_as_xlsx(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                  today: TodayDep, lang: LangParam = None) -> Response:
    board = directive_board(session, user, slug, today)
    return _download(board_xlsx(board, export_lang(request, lang)), XLSX,
                     f"board-{board.directive.slug}.xlsx")


@router.get("/directives/{slug}/board.csv")
def board_as_csv(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                 today: TodayDep, lang: LangParam = None) -> Response:
    board = directive_board(session, user, slug, today)
    text = board_csv(board, export_lang(request, lang))  # starts with a BOM
    return _download(text.encode("utf-8"), "text/csv; charset=utf-8", f"board-{board.directive.slug}.csv")


@router.get("/national/{slug}/board.xlsx")
def national_as_xlsx(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                     today: TodayDep, settings: SettingsDep, lang: LangParam = None) -> Response:
    """The Department's national board (provinces × steps) as a workbook."""
    board = national_board(session, user, slug, today, settings.tz)
    return _download(national_xlsx(board, export_lang(request, lang)), XLSX,
                     f"national-{board.directive.slug}.xlsx")


@router.get("/national/{slug}/board.csv")
def national_as_csv(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                    today: TodayDep, settings: SettingsDep, lang: LangParam = None) -> Response:
    board = national_board(session, user, slug, today, settings.tz)
    text = national_csv(board, export_lang(request, lang))
    return _download(text.encode("utf-8"), "text/csv; charset=utf-8",
                     f"national-{board.directive.slug}.csv")


def _download(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private"})
