"""Signing in and out with the browser session, and the Thai/English switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from models.user import User
from tidtam.app.accounts import authenticate
from web.deps import OptionalUser, SessionDep, reads_only
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


def start_session(request: Request, user: User) -> None:
    """A fresh session for the user (nothing carried over but the language)."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"user_id": user.id, **({"lang": lang} if lang else {})})


@router.get("/login")
def login_form(request: Request, user: OptionalUser, next: str = "") -> Response:
    if user is not None:
        return redirect(safe_next(next) or "/")
    return render(request, "login.html", {"next": safe_next(next), "username": "",
                                          "failed": False})


@router.post("/login")
@reads_only
def login(request: Request, session: SessionDep, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    user = authenticate(session, username.strip(), password)
    if user is None:  # one message for an unknown name and a wrong password alike
        return render(request, "login.html", {"next": safe_next(next), "username": username,
                                              "failed": True}, status_code=401)
    start_session(request, user)
    return redirect(safe_next(next) or "/")


@router.get("/logout")
def logout_form(request: Request, user: OptionalUser) -> Response:
    if user is None:
        return redirect("/login")
    return render(request, "logout.html")


@router.post("/logout")
def logout(request: Request) -> Response:
    lang = request.session.get("lang")
    request.session.clear()
    if lang:
        request.session["lang"] = lang
    flash(request, "flash.signed_out")
    return redirect("/login")


@router.post("/lang")
def switch_language(request: Request, lang: Annotated[str, Form()] = "th",
                    next: Annotated[str, Form()] = "/") -> Response:
    if lang in LANGUAGES:
        request.session["lang"] = lang
    return redirect(safe_next(next) or "/")
