"""The profile page: the signed-in person's LINE link, and the coordinator's district groups."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from tidtam.app import line_linking
from web.auth import redirect
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)


@router.get("/profile")
def profile_page(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                 settings: SettingsDep) -> Response:
    view = line_linking.profile_view(session, user, now)
    line_ready = bool(settings.line_channel_secret and settings.line_channel_access_token)
    return render(request, "profile.html", {"view": view, "line_ready": line_ready,
                                            "lifetime": line_linking.CODE_LIFETIME})


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
