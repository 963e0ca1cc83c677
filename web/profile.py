"""The profile page: the signed-in person's LINE link, the coordinator's district groups, the
password, the API tokens (listed, revocable) and the calendar addresses (web/feeds.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from sqlmodel import Session
from starlette.responses import Response

from domain.access import can_manage_accounts
from domain.errors import InvalidInput
from models.sessions import SessionKind, live_sessions
from models.user import User
from tidtam.app import accounts, calendar_feed, line_linking
from tidtam.infra.settings import Settings
from web.auth import redirect
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)


@router.get("/profile")
def profile_page(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                 settings: SettingsDep) -> Response:
    return render_profile(request, user, session, now, settings)


def render_profile(request: Request, user: User, session: Session, now: datetime,
                   settings: Settings, **extra: object) -> Response:
    """The profile page; ``extra`` for what a POST shows once (a new calendar address)."""
    view = line_linking.profile_view(session, user, now)
    line_ready = bool(settings.line_channel_secret and settings.line_channel_access_token)
    tokens = live_sessions(session, user.id, SessionKind.API)
    return render(request, "profile.html", {"view": view, "line_ready": line_ready,
                                            "lifetime": line_linking.CODE_LIFETIME,
                                            "tokens": tokens,
                                            "manages": can_manage_accounts(user.role),
                                            "calendar": calendar_feed.calendar_view(session, user),
                                            "new_feed_url": None, **extra})


@router.post("/profile/password")
def change_password(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                    current: Annotated[str, Form(max_length=1000)],
                    new: Annotated[str, Form(max_length=1000)],
                    again: Annotated[str, Form(max_length=1000)]) -> Response:
    """A new password (the current one asked first); this browser stays signed in, every other
    session and API token of the person ends."""
    if new != again:
        raise InvalidInput("the two new passwords differ", "รหัสผ่านใหม่ทั้งสองช่องไม่ตรงกัน")
    ended = accounts.change_password(session, user, current, new, now,
                                     keep_session=getattr(request.state, "login_session_id", None))
    flash(request, "flash.password_changed", count=ended)
    return redirect("/profile#password")


@router.post("/profile/tokens/{token_id}/revoke")
def revoke_token(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                 token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
    accounts.revoke_token(session, user, token_id, now)
    flash(request, "flash.token_revoked")
    return redirect("/profile#tokens")


@router.post("/profile/line-code")
def line_code(request: Request, user: CurrentUser, session: SessionDep, now: NowDep) -> Response:
    line_linking.new_link_code(session, user, now)
    flash(request, "flash.line_code")
    return redirect("/profile#line")


@router.post("/profile/line-unlink")
def line_unlink(request: Request, user: CurrentUser, session: SessionDep, now: NowDep) -> Response:
    unlinked = line_linking.unlink(session, user, now)
    flash(request, "flash.line_unlinked" if unlinked else "flash.line_not_linked")
    return redirect("/profile#line")


@router.post("/profile/line-group-code")
def line_group_code(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                    district: Annotated[str, Form(max_length=4)]) -> Response:
    code = line_linking.new_group_code(session, user, district, now)
    flash(request, "flash.line_group_code", district=code.district_code)
    return redirect(f"/profile#group-{code.district_code}")
