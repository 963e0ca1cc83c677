"""Signing in and out with the browser session, and the Thai/English switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from domain.thaidate import DIGITS
from models.sessions import SessionKind
from tidtam.app.accounts import Limits, TooManyAttempts, end_session, sign_in
from web.csrf_binding import new_seed
from web.deps import (
    NowDep,
    OptionalUser,
    SessionDep,
    SettingsDep,
    client_address,
    client_name,
    forget_browser_session,
)
from web.i18n import LANGUAGES
from web.rendering import flash, render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """A path on this site to go to after signing in; another host is dropped (open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    return target


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def start_browser_session(request: Request, secret: str, now) -> None:
    """A fresh cookie session naming the new server-side session (nothing carried over but the
    language); a new CSRF seed, so no token from before the sign-in works after it."""
    kept = {k: request.session[k] for k in ("lang", "digits") if k in request.session}
    request.session.clear()
    request.session.update({"sid": secret, "seen": now.isoformat(), **kept})
    new_seed(request.session)


@router.get("/login")
def login_form(request: Request, user: OptionalUser, next: str = "") -> Response:
    if user is not None:
        return redirect(safe_next(next) or "/")
    return render(request, "login.html", {"next": safe_next(next), "username": "",
                                          "failed": False, "wait": None})


@router.post("/login")
def login(request: Request, session: SessionDep, settings: SettingsDep, now: NowDep,
          username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1000)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    context = {"next": safe_next(next), "username": username, "failed": False, "wait": None}
    try:
        result = sign_in(session, username, password, address=client_address(request), now=now,
                         limits=Limits.of(settings), kind=SessionKind.WEB,
                         client=client_name(request))
    except TooManyAttempts as refused:  # no password was checked
        response = render(request, "login.html", {**context, "wait": refused.retry_after},
                          status_code=429)
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    if result is None:  # one message for an unknown name and a wrong password alike
        return render(request, "login.html", {**context, "failed": True}, status_code=401)
    start_browser_session(request, result[1], now)
    return redirect(safe_next(next) or "/")


@router.get("/logout")
def logout_form(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return redirect("/login")
    return render(request, "logout.html")


@router.post("/logout")
def logout(request: Request, session: SessionDep, now: NowDep) -> Response:
    """This browser's session ends on the server (its cookie opens nothing any more); the
    user's other sessions and tokens go on."""
    end_session(session, request.session.get("sid"), SessionKind.WEB, now, "signed out")
    forget_browser_session(request)
    new_seed(request.session)
    flash(request, "flash.signed_out")
    return redirect("/login")


@router.post("/lang")
def switch_language(request: Request, lang: Annotated[str, Form()] = "th",
                    next: Annotated[str, Form()] = "/") -> Response:
    if lang in LANGUAGES:
        request.session["lang"] = lang
    return redirect(safe_next(next) or "/")


@router.post("/digits")
def switch_digits(request: Request, digits: Annotated[str, Form()] = "arabic",
                  next: Annotated[str, Form()] = "/") -> Response:
    """Thai or Arabic digits on every page, kept like the language (issue 15, item 3)."""
    if digits in DIGITS:
        request.session["digits"] = digits
    return redirect(safe_next(next) or "/")
