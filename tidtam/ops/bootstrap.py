"""`tidtam init`: migrate, load the provinces (Sa Kaeo by default), launch the FY 2567 directive,
and with ``--demo`` the Sa Kaeo demo (tidtam/demo/province.py): its people, the Department's
``department`` viewer, and a second letter followed side by side (``DEMO_FOLLOW_UPS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from domain.directive import load_directive
from domain.errors import Conflict
from models.directive import Directive
from tidtam.app.orgtree import load_org_tree
from tidtam.app.tracking import launch_directive
from tidtam.demo.province import (
    FOLLOW_UP_LAUNCH,
    SA_KAEO,
    create_demo_accounts,
    create_department_account,
    draft_demo_reports,
    mark_demo_progress,
    mark_follow_up_progress,
)
from tidtam.infra import db
from tidtam.infra.paths import DIRECTIVES

if TYPE_CHECKING:
    from tidtam.infra.photos import PhotoStore

DEFAULT_DIRECTIVE = DIRECTIVES / "fy2567-sakaeo-volunteer-centers.yaml"
# The demo's second Sa Kaeo letter, launched on its own day with a few steps done.
DEMO_FOLLOW_UPS = (DIRECTIVES / "fy2567-sakaeo-outstanding-centers.yaml",)


@dataclass
class InitResult:
    districts: int
    directive: Directive
    items: int
    demo_users: list[str] = field(default_factory=list)
    demo_done: int = 0
    demo_reports: int = 0
    provinces: int = 1
    follow_ups: list[FollowUp] = field(default_factory=list)


@dataclass(frozen=True)
class FollowUp:
    """A further letter the demo launched: its directive, tracked items and steps marked done."""

    directive: Directive
    items: int
    done: int


def is_initialised(engine: Engine) -> bool:
    """True when a directive has been launched in this database already."""
    from sqlalchemy import inspect

    if "directive" not in inspect(engine).get_table_names():
        return False
    with Session(engine) as session:
        return session.exec(select(Directive.id)).first() is not None


def initialise(engine: Engine, *, demo: bool, now: datetime, exist_ok: bool = False,
               directive_path: Path = DEFAULT_DIRECTIVE,
               photos: PhotoStore | None = None,
               provinces: list[str] | None = None,
               follow_ups: tuple[Path, ...] = ()) -> InitResult | None:
    """Migrate and load; a second call raises Conflict (or returns None with exist_ok).

    ``provinces`` are DOPA codes to load (default Sa Kaeo); the directive's own province is
    always loaded too, since the directive is launched there. In demo mode with a photo store,
    two districts also get a report draft with photos; demo mode also makes the ``department``
    account, and launches ``follow_ups`` (Sa Kaeo letters, on 26 Jul 2567) with a few steps done:
    `tidtam init --demo` (`make run`) passes ``DEMO_FOLLOW_UPS``; the tests' demo databases
    keep the one letter unless they ask for more.
    """
    db.migrate(engine.url.render_as_string(hide_password=False))
    if is_initialised(engine):
        if exist_ok:
            return None
        raise Conflict("this database is initialised already; nothing was changed "
                       "(use `tidtam launch FILE` for another directive)",
                       "ฐานข้อมูลนี้ตั้งค่าไว้แล้ว ไม่มีการเปลี่ยนแปลงใด ๆ")
    spec = load_directive(directive_path)
    with db.session_scope(engine) as session:
        loaded = load_org_tree(session, [*(provinces or [SA_KAEO]), spec.province_code])
        launched = launch_directive(session, spec, now=now)
        result = InitResult(loaded.districts, launched.directive, launched.created_items,
                            provinces=loaded.provinces)
        if demo:
            result.demo_users = create_demo_accounts(session, now, with_line=True)
            result.demo_done = mark_demo_progress(session, launched.directive)
            if photos is not None:
                result.demo_reports = draft_demo_reports(session, photos, launched.directive)
            result.demo_users += create_department_account(session, now)
            for path in follow_ups:
                follow_up = launch_directive(session, load_directive(path),
                                             now=max(now, FOLLOW_UP_LAUNCH))
                done = mark_follow_up_progress(session, follow_up.directive)
                result.follow_ups.append(FollowUp(follow_up.directive, follow_up.created_items,
                                                  done))
    return result
