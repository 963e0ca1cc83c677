"""Where pages live now that a province follows many directives: every page that belongs to a
directive carries its slug (``/directives/{slug}/…``), and a link from before (``/board``,
``/districts/{code}/report``, ``/reports``…) goes to the right place.

An old link named no directive because a province had one. It now goes to the province's one
active directive when it has exactly one, and otherwise to the list the person chooses from:
district people's work across letters (``/my``), a province's directives page, the national
board for the Department.
"""

from __future__ import annotations

from sqlmodel import Session

from domain.access import DISTRICT_ROLES, NATIONAL_ROLES
from models.directive import Directive
from models.user import User
from tidtam.app.directives import only_active


def directive_path(directive: Directive | str, suffix: str = "") -> str:
    """``/directives/{slug}`` plus ``suffix`` (``/districts/2703/report``, ``/reports``…)."""
    slug = directive if isinstance(directive, str) else directive.slug
    return f"/directives/{slug}{suffix}"


def directives_list_path(user: User, province_code: str | None = None) -> str:
    """The list a person chooses a directive from."""
    if user.role in DISTRICT_ROLES and user.district_code and province_code in (
            None, user.province_code):
        return "/my"
    code = province_code or user.province_code
    if code:
        return f"/provinces/{code}/directives"
    if user.role in NATIONAL_ROLES:
        return "/national"
    return "/my"


def legacy_path(session: Session, user: User, suffix: str = "",
                province_code: str | None = None) -> str:
    """Where an old link without a directive goes: the province's one active directive's page
    (``suffix`` after its slug), or the list to choose from when it has none or several."""
    code = province_code or user.province_code
    directive = only_active(session, code) if code else None
    if directive is not None:
        return directive_path(directive, suffix)
    return directives_list_path(user, code)
