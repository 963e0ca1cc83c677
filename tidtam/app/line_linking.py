"""Use cases of LINE linking: one-time codes, the webhook's events, unlinking, the profile page.

A person links their LINE account by sending a one-time code from their profile page to the
office's LINE Official Account; a coordinator binds a LINE group to a district the same way, with
a code sent in the group. ``unfollow`` and ``leave`` stop pushes to that user or group. The
webhook has already checked LINE's signature before anything here runs. Every change is audited.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from domain.access import COORDINATOR
from domain.errors import Forbidden
from models import audit
from models.line import (
    CodePurpose,
    LineContact,
    LineGroup,
    LineLinkCode,
    bound_groups,
    claim_code,
    code_exists,
    expire_live_codes,
    first_delivery,
    get_contact,
    get_group,
    groups_by_district,
    live_code,
    live_group_codes,
    live_user_code,
    users_with_line_id,
)
from models.org import District, districts_of
from models.user import User
from tidtam.app.tracking import visible_district

log = logging.getLogger("tidtam.line")

# No 0/O, 1/I/L: a code read off a screen and typed into LINE on a phone must not be misread.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=30)
CODE_SHAPE = re.compile(f"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
WEBHOOK_ACTOR = "system:line-webhook"


# --- codes --------------------------------------------------------------------------------------

def new_link_code(session: Session, user: User, now: datetime) -> LineLinkCode:
    """A fresh code that links the LINE account sending it to ``user``; earlier ones end."""
    if not user.is_active:
        raise Forbidden("this account is disabled", "บัญชีนี้ถูกปิดใช้งาน")
    expire_live_codes(session, now, user_id=user.id)
    code = _issue(session, now, purpose=CodePurpose.USER, user_id=user.id, created_by_id=user.id)
    audit.record(session, at=now, actor=user.username, actor_id=user.id, action="user.line_code",
                 entity="user", entity_id=user.id, after={"expires_at": code.expires_at.isoformat()})
    return code


def new_group_code(session: Session, coordinator: User, district_code: str,
                   now: datetime) -> LineLinkCode:
    """A fresh code that binds the LINE group it is sent in to the district (coordinator only)."""
    if coordinator.role != COORDINATOR:
        raise Forbidden("only the provincial coordinator binds LINE groups to districts",
                        "เฉพาะผู้ประสานงานระดับจังหวัดเท่านั้นที่ผูกกลุ่ม LINE กับอำเภอได้")
    district = visible_district(session, coordinator, district_code)
    expire_live_codes(session, now, district_code=district.code)
    code = _issue(session, now, purpose=CodePurpose.GROUP, district_code=district.code,
                  created_by_id=coordinator.id)
    audit.record(session, at=now, actor=coordinator.username, actor_id=coordinator.id,
                 action="district.line_group_code", entity="district", entity_id=district.code,
                 after={"expires_at": code.expires_at.isoformat()})
    return code


def _issue(session: Session, now: datetime, **fields: Any) -> LineLinkCode:
    code = LineLinkCode(code=_unused_code(session), created_at=now,
                        expires_at=now + CODE_LIFETIME, **fields)
    session.add(code)
    session.flush()
    return code


def _unused_code(session: Session) -> str:
    """Random from the unambiguous alphabet (31^8 ≈ 8.5e11), never one issued before."""
    for _ in range(10):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if not code_exists(session, code):
            return code
    raise RuntimeError("could not find an unused LINE link code")  # pragma: no cover


def normalise_code(text: str) -> str | None:
    """The code in a chat message as people type it ("abcd efgh", "ABCD-EFGH"), or None."""
    candidate = re.sub(r"[\s\-]", "", text).upper()
    return candidate if CODE_SHAPE.fullmatch(candidate) else None


def unlink(session: Session, user: User, now: datetime) -> bool:
    """Remove the user's LINE id (their own choice); False if there was none."""
    if not user.line_user_id and not user.line_route_error:
        return False
    _clear_line(session, user, now, actor=user.username, actor_id=user.id, reason="user")
    session.flush()
    return True


def _clear_line(session: Session, user: User, now: datetime, *, actor: str,
                actor_id: int | None, reason: str) -> None:
    before = {"line_user_id": user.line_user_id, "line_route_error": user.line_route_error}
    user.line_user_id = None
    user.line_route_error = None
    session.add(user)
    audit.record(session, at=now, actor=actor, actor_id=actor_id, action="user.line_unlink",
                 entity="user", entity_id=user.id, before=before,
                 after={"line_user_id": None, "reason": reason})


# --- the webhook's events -----------------------------------------------------------------------

class _Source(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    user_id: str | None = Field(default=None, alias="userId", max_length=64)
    group_id: str | None = Field(default=None, alias="groupId", max_length=64)
    room_id: str | None = Field(default=None, alias="roomId", max_length=64)

    @property
    def chat_id(self) -> str | None:
        """The group (C…) or multi-person chat (R…) the event happened in; None in a 1:1 chat."""
        if self.type == "group":
            return self.group_id
        return self.room_id if self.type == "room" else None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class LineEvent(BaseModel):
    """The part of a webhook event object tidtam uses (the Messaging API's names)."""

    model_config = ConfigDict(extra="ignore")
    type: str
    webhook_event_id: str = Field(alias="webhookEventId", min_length=1, max_length=64)
    timestamp: int | None = Field(default=None, description="when it happened, ms since epoch")
    source: _Source | None = None
    message: _Message | None = None

    def happened_at(self, now: datetime) -> datetime:
        if self.timestamp is None:
            return now
        return datetime.fromtimestamp(self.timestamp / 1000, UTC)


def handle_events(session: Session, events: Iterable[Any], now: datetime) -> list[str]:
    """Apply a webhook's events in order; one outcome each ("linked", "ignored", "duplicate", …)."""
    outcomes = []
    for raw in events:
        try:
            event = LineEvent.model_validate(raw)
        except ValidationError:
            outcomes.append("malformed")
            continue
        handler = HANDLERS.get(event.type)
        outcome = handler(session, event, now) if handler else "ignored"
        log.info("LINE %s event %s: %s", event.type, event.webhook_event_id, outcome)
        outcomes.append(outcome)
    session.flush()
    return outcomes


def _first_time(session: Session, event: LineEvent, now: datetime) -> bool:
    return first_delivery(session, event.webhook_event_id, event.type, now)


def _stale(at: datetime, *marks: datetime | None) -> bool:
    """A later follow/unfollow (join/leave) was already applied: this one arrived out of order."""
    return any(mark is not None and mark > at for mark in marks)


def _user_of(event: LineEvent) -> str | None:
    return event.source.user_id if event.source else None


def _chat_of(event: LineEvent) -> str | None:
    return event.source.chat_id if event.source else None


def _on_follow(session: Session, event: LineEvent, now: datetime) -> str:
    line_id = _user_of(event)
    if line_id is None:
        return "ignored"
    if not _first_time(session, event, now):
        return "duplicate"
    at = event.happened_at(now)
    contact = get_contact(session, line_id) or LineContact(line_user_id=line_id)
    if _stale(at, contact.followed_at, contact.unfollowed_at):
        return "stale"
    contact.followed_at, contact.unfollowed_at = at, None
    session.add(contact)
    audit.record(session, at=now, actor=WEBHOOK_ACTOR, action="line_contact.follow",
                 entity="line_contact", entity_id=line_id, after={"followed_at": at.isoformat()})
    return "followed"


def _on_unfollow(session: Session, event: LineEvent, now: datetime) -> str:
    """Blocked: record it, and take the id off every account so nothing is pushed to it."""
    line_id = _user_of(event)
    if line_id is None:
        return "ignored"
    if not _first_time(session, event, now):
        return "duplicate"
    at = event.happened_at(now)
    contact = get_contact(session, line_id) or LineContact(line_user_id=line_id)
    if _stale(at, contact.followed_at, contact.unfollowed_at):
        return "stale"
    contact.unfollowed_at = at
    session.add(contact)
    audit.record(session, at=now, actor=WEBHOOK_ACTOR, action="line_contact.unfollow",
                 entity="line_contact", entity_id=line_id, after={"unfollowed_at": at.isoformat()})
    for user in users_with_line_id(session, line_id):
        _clear_line(session, user, now, actor=WEBHOOK_ACTOR, actor_id=None, reason="unfollow")
    return "unfollowed"


def _on_join(session: Session, event: LineEvent, now: datetime) -> str:
    """The bot was added to a group: known from now on, bound to no district yet."""
    chat_id = _chat_of(event)
    if chat_id is None:
        return "ignored"
    if not _first_time(session, event, now):
        return "duplicate"
    at = event.happened_at(now)
    group = get_group(session, chat_id) or LineGroup(group_id=chat_id)
    if _stale(at, group.joined_at, group.left_at):
        return "stale"
    group.joined_at, group.left_at = at, None
    session.add(group)
    audit.record(session, at=now, actor=WEBHOOK_ACTOR, action="line_group.join",
                 entity="line_group", entity_id=chat_id, after={"joined_at": at.isoformat()})
    return "joined"


def _on_leave(session: Session, event: LineEvent, now: datetime) -> str:
    """The bot was removed from a group: it no longer speaks for any district."""
    chat_id = _chat_of(event)
    if chat_id is None:
        return "ignored"
    if not _first_time(session, event, now):
        return "duplicate"
    at = event.happened_at(now)
    group = get_group(session, chat_id) or LineGroup(group_id=chat_id)
    if _stale(at, group.joined_at, group.left_at):
        return "stale"
    before = {"district_code": group.district_code}
    group.left_at, group.district_code = at, None
    session.add(group)
    audit.record(session, at=now, actor=WEBHOOK_ACTOR, action="line_group.leave",
                 entity="line_group", entity_id=chat_id, before=before,
                 after={"district_code": None, "left_at": at.isoformat()})
    return "left"


def _on_message(session: Session, event: LineEvent, now: datetime) -> str:
    """A chat message: a live code links its sender or binds its group; anything else is chat."""
    text = event.message.text if event.message and event.message.type == "text" else None
    code_text = normalise_code(text) if text else None
    if code_text is None or event.source is None:
        return "ignored"
    chat_id = event.source.chat_id
    if event.source.type == "user" and event.source.user_id:
        return _redeem(session, event, now, code_text, CodePurpose.USER, event.source.user_id)
    if chat_id is not None:
        return _redeem(session, event, now, code_text, CodePurpose.GROUP, chat_id)
    return "ignored"


def _redeem(session: Session, event: LineEvent, now: datetime, code_text: str,
            purpose: CodePurpose, line_id: str) -> str:
    """Use the code once: it must be live, of this purpose, and its owner still entitled."""
    if not _first_time(session, event, now):
        return "duplicate"
    code = live_code(session, code_text, purpose, now)
    owner = session.get(User, code.user_id or code.created_by_id) if code else None
    if code is None or not _entitled(owner, purpose):
        return "invalid_code"
    if not claim_code(session, code.id, line_id, now):
        return "invalid_code"
    if purpose == CodePurpose.USER:
        return _link_user(session, owner, code, line_id, now)
    return _bind_group(session, owner, code, line_id, now)


def _entitled(owner: User | None, purpose: CodePurpose) -> bool:
    """A disabled account links nothing; only a coordinator's code binds a group."""
    if owner is None or not owner.is_active:
        return False
    return purpose == CodePurpose.USER or owner.role == COORDINATOR


def _link_user(session: Session, user: User, code: LineLinkCode, line_id: str,
               now: datetime) -> str:
    before = {"line_user_id": user.line_user_id, "line_route_error": user.line_route_error}
    user.line_user_id, user.line_route_error = line_id, None
    session.add(user)
    audit.record(session, at=now, actor=user.username, actor_id=user.id, action="user.line_link",
                 entity="user", entity_id=user.id, before=before,
                 after={"line_user_id": line_id, "code_id": code.id})
    return "linked"


def _bind_group(session: Session, coordinator: User, code: LineLinkCode, chat_id: str,
                now: datetime) -> str:
    """The group now speaks for the code's district; a group bound there before is released."""
    actor = {"actor": coordinator.username, "actor_id": coordinator.id}
    for other in bound_groups(session, code.district_code):
        if other.group_id != chat_id:
            other.district_code = None
            session.add(other)
            audit.record(session, at=now, **actor, action="line_group.unbind",
                         entity="line_group", entity_id=other.group_id,
                         before={"district_code": code.district_code},
                         after={"district_code": None, "reason": "replaced"})
    group = get_group(session, chat_id) or LineGroup(group_id=chat_id)
    before = {"district_code": group.district_code}
    group.district_code, group.bound_by_id, group.bound_at = code.district_code, coordinator.id, now
    group.left_at = None  # it just spoke to the bot, so the bot is in it
    session.add(group)
    audit.record(session, at=now, **actor, action="line_group.bind", entity="line_group",
                 entity_id=chat_id, before=before,
                 after={"district_code": code.district_code, "code_id": code.id})
    return "bound"


HANDLERS: dict[str, Callable[[Session, LineEvent, datetime], str]] = {
    "follow": _on_follow, "unfollow": _on_unfollow, "join": _on_join, "leave": _on_leave,
    "message": _on_message,
}


# --- the profile page ---------------------------------------------------------------------------

def mask_line_id(line_id: str | None) -> str | None:
    """Enough of a LINE id to recognise it, not enough to copy it: "U4a…9f2c"."""
    if not line_id:
        return None
    return line_id if len(line_id) <= 8 else f"{line_id[:3]}…{line_id[-4:]}"


@dataclass(frozen=True)
class DistrictLine:
    """One district on the coordinator's list: its bound group, and a live code to bind one."""

    district: District
    group: LineGroup | None
    code: LineLinkCode | None

    @property
    def group_masked(self) -> str | None:
        return mask_line_id(self.group.group_id) if self.group else None


@dataclass(frozen=True)
class ProfileView:
    user: User
    line_masked: str | None
    route_error: str | None
    code: LineLinkCode | None
    districts: list[DistrictLine]


def profile_view(session: Session, user: User, now: datetime) -> ProfileView:
    """The signed-in person's LINE status; for the coordinator also each district's group."""
    return ProfileView(user=user, line_masked=mask_line_id(user.line_user_id),
                       route_error=user.line_route_error,
                       code=live_user_code(session, user.id, now),
                       districts=_district_lines(session, user, now))


def _district_lines(session: Session, user: User, now: datetime) -> list[DistrictLine]:
    if user.role != COORDINATOR:
        return []
    districts = districts_of(session, user.province_code)
    groups = groups_by_district(session, [d.code for d in districts])
    codes = live_group_codes(session, user.id, now)
    return [DistrictLine(d, groups.get(d.code), codes.get(d.code)) for d in districts]
