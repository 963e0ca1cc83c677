"""Pages: the Jinja2 environment (strict, autoescaped, B.E. dates) and what every page gets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from starlette.responses import Response

from domain.access import PROVINCE_ROLES
from domain.thaidate import DIGITS, english_date, in_digits, thai_date, thai_datetime
from tidtam.infra.settings import Settings
from web.i18n import LANGUAGES, Translator, digits_of, language_of

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_templates(settings: Settings) -> Jinja2Templates:
    """Autoescaped, strict templates with Thai (B.E.) and English date filters in local time.

    A template is read from disk once: with Jinja's ``auto_reload`` each render would check every
    template it uses on disk (five files for a board page). ``TIDTAM_TEMPLATES_AUTO_RELOAD=1``
    asks for that check back, while editing templates."""
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      auto_reload=settings.templates_auto_reload)
    tz = settings.tz
    env.filters["thai_date"] = thai_date
    env.filters["thai_datetime"] = lambda dt, style="short": thai_datetime(dt, tz, style)
    env.filters["english_date"] = english_date
    env.filters["english_datetime"] = lambda dt: english_datetime(dt, tz)
    env.filters["num"] = pass_context(digits_filter)
    env.globals.update(languages=LANGUAGES, province_roles=PROVINCE_ROLES, digit_choices=DIGITS)
    return Jinja2Templates(env=env)


def digits_filter(context: Context, text: object) -> str:
    """``{{ x|num }}``: the digits in ``x`` as the reader chose (Thai or Arabic)."""
    digits = context.get("digits")
    return in_digits(str(text), digits) if digits else str(text)


def english_datetime(dt: datetime, tz: ZoneInfo) -> str:
    """The English UI's "9 Aug 2024 08:30" in local time (domain.thaidate has the Thai one)."""
    local = dt.astimezone(tz)
    return f"{english_date(local)} {local:%H:%M}"


def flash(request: Request, key: str, kind: str = "ok", **params: Any) -> None:
    """Queue a message (a locale key) for the next page this browser shows."""
    request.session["flash"] = [*request.session.get("flash", []),
                                {"key": key, "kind": kind, "params": params}]


def csrf_token(request: Request) -> str:
    """The token every form posts back as ``csrftoken`` (asgi-csrf sets the cookie)."""
    get = request.scope.get("csrftoken")
    return get() if get else ""


def page_context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    lang = language_of(request)
    flashes = request.session.pop("flash", []) if "session" in request.scope else []
    return {"lang": lang, "t": Translator(lang), "digits": digits_of(request),
            "t_other": Translator("en" if lang == "th" else "th"),
            "user": getattr(request.state, "user", None),
            "flashes": flashes, "csrf_token": lambda: csrf_token(request),
            "path": request.url.path, **context}


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> Response:
    """A page from ``web/templates`` with the language, user, flashes and CSRF token."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, page_context(request, context or {}),
                                      status_code=status_code)
