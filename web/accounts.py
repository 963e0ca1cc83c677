"""Accounts pages: the coordinator's district accounts, the Department's own; one-time links to
set a password (shown once, never stored but as a hash)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from starlette.responses import Response

from domain.access import can_manage_accounts, manageable_roles
from domain.errors import Forbidden
from models.org import districts_of
from models.user import User
from tidtam.app import accounts
from web.auth import redirect
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)

UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _lifetime(settings) -> timedelta:
    return timedelta(minutes=settings.reset_link_minutes)


def _page(request: Request, session, user: User, settings, *, link: str | None = None,
          link_for: User | None = None, status_code: int = 200) -> Response:
    if not can_manage_accounts(user.role):
        raise Forbidden("you may not manage accounts", "ท่านไม่มีสิทธิ์จัดการบัญชีผู้ใช้")
    districts = districts_of(session, user.province_code) if user.province_code else []
    return render(request, "accounts.html", {
        "people": accounts.managed_users(session, user), "districts": districts,
        "roles": sorted(r.value for r in manageable_roles(user.role)),
        "link": link, "link_for": link_for,
        "minutes": settings.reset_link_minutes}, status_code=status_code)


def _link(settings, secret: str) -> str:
    return f"{settings.base_url.rstrip('/')}/reset/{secret}"


@router.get("/accounts")
def accounts_page(request: Request, user: CurrentUser, session: SessionDep,
                  settings: SettingsDep) -> Response:
    return _page(request, session, user, settings)


@router.post("/accounts")
def add_account(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                settings: SettingsDep, username: Annotated[str, Form(max_length=64)],
                full_name: Annotated[str, Form(max_length=200)],
                role: Annotated[str, Form(max_length=24)],
                district: Annotated[str, Form(max_length=4)] = "",
                email: Annotated[str, Form(max_length=200)] = "") -> Response:
    created, secret = accounts.add_managed_account(
        session, user, username=username, full_name=full_name, role=role,
        district_code=district, email=email, now=now, lifetime=_lifetime(settings))
    return _page(request, session, user, settings, link=_link(settings, secret),
                 link_for=created, status_code=201)


@router.post("/accounts/{user_id}/reset")
def reset_account(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                  settings: SettingsDep, user_id: UserId) -> Response:
    target = accounts.managed_user(session, user, user_id)
    secret = accounts.issue_reset_link(session, user, target, now, _lifetime(settings))
    return _page(request, session, user, settings, link=_link(settings, secret), link_for=target)


@router.post("/accounts/{user_id}/disable")
def disable_account(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                    user_id: UserId) -> Response:
    target = accounts.set_active(session, user, user_id, False, now)
    flash(request, "flash.account_disabled", username=target.username)
    return redirect("/accounts")


@router.post("/accounts/{user_id}/enable")
def enable_account(request: Request, user: CurrentUser, session: SessionDep, now: NowDep,
                   user_id: UserId) -> Response:
    target = accounts.set_active(session, user, user_id, True, now)
    flash(request, "flash.account_enabled", username=target.username)
    return redirect("/accounts")


Secret = Annotated[str, Path(max_length=100)]


@router.get("/reset/{secret}")
def reset_form(request: Request, session: SessionDep, now: NowDep, secret: Secret) -> Response:
    """The page a one-time link opens: no sign-in needed, the link is the proof."""
    valid = accounts.reset_link_valid(session, secret, now) is not None
    return render(request, "reset.html", {"valid": valid, "secret": secret},
                  status_code=200 if valid else 404)


@router.post("/reset/{secret}")
def reset_password(request: Request, session: SessionDep, now: NowDep, secret: Secret,
                   password: Annotated[str, Form(max_length=1000)]) -> Response:
    accounts.use_reset_link(session, secret, password, now)
    flash(request, "flash.password_set")
    return redirect("/login")
