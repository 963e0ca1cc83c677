"""Use cases of answering from LINE: "ทำแล้ว" on a reminder card, and "งาน" typed in the chat.

A reminder card's postback ``action=done&item=N`` is answered with a confirm template; its
``action=done-confirm&item=N`` marks the item done as the linked person through
``tracking.mark_done`` (the web's own checks: their district, their role, the report step only
through the form, a waived or done item refused), audited in their name. A group bound to a
district answers the same for its district, as the member who pressed (a linked user of that
district). Each event is handled once (its ``webhookEventId`` in ``line_webhook_event``): a
redelivery changes nothing and is not answered again. What to answer comes back as ``Reply``
values; the webhook sends them with the reply token after the transaction has committed.
Events that are not answers (follow, join, link codes…) go to ``line_linking`` unchanged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from domain.errors import TidtamError
from models.directive import (
    DirectiveStep,
    ItemStatus,
    TrackedItem,
    active_directives,
    items_of,
    steps_of,
)
from models.line import first_delivery, get_group, users_with_line_id
from models.org import District, get_district
from models.user import User
from notifications.render import render_message
from tidtam.app.line_linking import HANDLERS, LineEvent
from tidtam.app.tracking import mark_done

log = logging.getLogger("tidtam.line")

TASK_WORDS = frozenset({"งาน", "งานค้าง", "tasks", "task", "todo"})
DONE, CONFIRM, CANCEL = "done", "done-confirm", "cancel"
OPEN_ITEMS_SHOWN = 8
BANGKOK = ZoneInfo("Asia/Bangkok")


class _Postback(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: str = Field(max_length=300)


class AnswerEvent(LineEvent):
    """A webhook event with what answering needs: the reply token and a postback's data."""

    reply_token: str | None = Field(default=None, alias="replyToken", max_length=256)
    postback: _Postback | None = None


@dataclass(frozen=True)
class Reply:
    """Messages to send with one event's reply token (free for the Official Account)."""

    token: str
    messages: list[dict]


@dataclass
class Handled:
    outcomes: list[str] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)


@dataclass(frozen=True)
class OpenEntry:
    item: TrackedItem
    step: DirectiveStep
    late: bool


@dataclass(frozen=True)
class _Speaker:
    """Who acts for an event: the linked person, and the district a group speaks for."""

    users: list[User]
    group_district: str | None = None


class _Refusal(Exception):  # noqa: N818 — a reply kind, not an error a person sees as such
    def __init__(self, kind: str, **context: Any) -> None:
        super().__init__(kind)
        self.kind, self.context = kind, context


def handle_events(session: Session, events: Iterable[Any], now: datetime) -> Handled:
    """Apply a webhook's events in order: answers here, everything else in ``line_linking``."""
    handled = Handled()
    for raw in events:
        try:
            event = AnswerEvent.model_validate(raw)
        except ValidationError:
            handled.outcomes.append("malformed")
            continue
        outcome, messages = _handle(session, event, now)
        log.info("LINE %s event %s: %s", event.type, event.webhook_event_id, outcome)
        handled.outcomes.append(outcome)
        if messages and event.reply_token:
            handled.replies.append(Reply(event.reply_token, messages))
    session.flush()
    return handled


def _handle(session: Session, event: AnswerEvent, now: datetime) -> tuple[str, list[dict]]:
    if event.type == "postback" and event.postback is not None:
        return _answered(session, event, now, lambda speaker: _on_postback(
            session, event, speaker, now))
    if event.type == "message" and asks_for_tasks(event):
        return _answered(session, event, now, lambda speaker: _on_tasks(session, speaker, now))
    handler = HANDLERS.get(event.type)
    return (handler(session, event, now) if handler else "ignored"), []


def asks_for_tasks(event: LineEvent) -> bool:
    text = event.message.text if event.message and event.message.type == "text" else None
    return text is not None and re.sub(r"\s+", "", text).casefold() in TASK_WORDS


def _answered(session: Session, event: AnswerEvent, now: datetime,
              act: Any) -> tuple[str, list[dict]]:
    """Once per event id; a refusal is answered too, and changes nothing."""
    if event.source is None or not event.source.user_id:
        return "ignored", []  # LINE omits the user when they have not agreed to share it
    if not first_delivery(session, event.webhook_event_id, event.type, now):
        return "duplicate", []
    try:
        return act(_speaker(session, event))
    except _Refusal as refusal:
        return refusal.kind, [_text(refusal.kind, **refusal.context)]


def _speaker(session: Session, event: AnswerEvent) -> _Speaker:
    users = [u for u in users_with_line_id(session, event.source.user_id) if u.is_active]
    chat_id = event.source.chat_id
    if chat_id is None:
        if not users:
            raise _Refusal("unlinked")
        return _Speaker(users)
    group = get_group(session, chat_id)
    if group is None or group.district_code is None or group.left_at is not None:
        raise _Refusal("group_unbound")
    members = [u for u in users if u.district_code == group.district_code]
    if not members:
        raise _Refusal("not_member", district=get_district(session, group.district_code))
    return _Speaker(members, group.district_code)


# --- postbacks ----------------------------------------------------------------------------------

def parse_postback(data: str) -> tuple[str, int] | None:
    """``action=done&item=12`` → ("done", 12); None for anything tidtam does not send."""
    try:
        fields = parse_qs(data, strict_parsing=True, max_num_fields=4)
    except ValueError:
        return None
    action, item = fields.get("action", [""]), fields.get("item", [""])
    if len(action) != 1 or len(item) != 1 or action[0] not in (DONE, CONFIRM, CANCEL):
        return None
    if not re.fullmatch(r"[0-9]{1,12}", item[0]):
        return None
    return action[0], int(item[0])


def _on_postback(session: Session, event: AnswerEvent, speaker: _Speaker,
                 now: datetime) -> tuple[str, list[dict]]:
    parsed = parse_postback(event.postback.data)
    if parsed is None:
        raise _Refusal("bad_postback")
    action, item_id = parsed
    if action == CANCEL:
        return "cancelled", [_text("cancelled")]
    user = _acting(session, speaker, item_id)
    if action == DONE:
        _check(session, user, item_id, now)
        return "confirm_asked", [_confirm(session, item_id)]
    item = _mark(session, user, item_id, now)
    context = {**_open_context(session, item.district_code, now), **_about(session, item)}
    return "done", [_text("done", user=user, **context)]


def _acting(session: Session, speaker: _Speaker, item_id: int) -> User:
    """Of the accounts on this LINE id (usually one), the one of the item's district if any."""
    item = session.get(TrackedItem, item_id)
    for user in speaker.users:
        if item is not None and user.district_code == item.district_code:
            return user
    return speaker.users[0]


def _check(session: Session, user: User, item_id: int, now: datetime) -> None:
    """Refuse now what the confirmation would refuse: ``mark_done`` itself, in a savepoint
    rolled back whatever happens, so the checks are the web's own and nothing is written."""
    savepoint = session.begin_nested()
    try:
        mark_done(session, user, item_id, now=now)
    except TidtamError as exc:
        raise _refused(exc) from exc
    finally:
        savepoint.rollback()


def _mark(session: Session, user: User, item_id: int, now: datetime) -> TrackedItem:
    try:
        return mark_done(session, user, item_id, now=now)
    except TidtamError as exc:
        raise _refused(exc) from exc


def _refused(exc: TidtamError) -> _Refusal:
    return _Refusal("refused", reason_th=exc.message_th, reason_en=exc.message_en)


def _about(session: Session, item: TrackedItem) -> dict[str, Any]:
    return {"step": session.get(DirectiveStep, item.step_id),
            "district": get_district(session, item.district_code)}


def _confirm(session: Session, item_id: int) -> dict:
    """LINE's confirm template: ยืนยัน posts ``done-confirm``, ยกเลิก posts ``cancel``."""
    text = render_message("line_answer", kind="confirm",
                          **_about(session, session.get(TrackedItem, item_id)))[1]
    return {"type": "template", "altText": text[:400],
            "template": {"type": "confirm", "text": text[:240], "actions": [
                {"type": "postback", "label": "ยืนยัน", "data": f"action={CONFIRM}&item={item_id}",
                 "displayText": "ยืนยัน (confirm)"},
                {"type": "postback", "label": "ยกเลิก", "data": f"action={CANCEL}&item={item_id}",
                 "displayText": "ยกเลิก (cancel)"}]}}


# --- "งาน" ---------------------------------------------------------------------------------------

def _on_tasks(session: Session, speaker: _Speaker, now: datetime) -> tuple[str, list[dict]]:
    district = speaker.group_district or speaker.users[0].district_code
    return "tasks", [_text("tasks", **_open_context(session, district, now))]


def _open_context(session: Session, district_code: str | None, now: datetime) -> dict[str, Any]:
    district = get_district(session, district_code) if district_code else None
    entries = open_items(session, district, now.astimezone(BANGKOK).date()) if district else []
    return {"district": district, "open_items": entries, "limit": OPEN_ITEMS_SHOWN}


def open_items(session: Session, district: District, today: date) -> list[OpenEntry]:
    """The district's open items in its province's active directives, soonest due first."""
    entries = []
    for directive in active_directives(session, district.province_code):
        steps = {step.id: step for step in steps_of(session, directive.id)}
        entries += [OpenEntry(item, steps[item.step_id], item.due_on < today)
                    for item in items_of(session, directive.id, district.code)
                    if item.status == ItemStatus.OPEN]
    return sorted(entries, key=lambda e: (e.item.due_on, e.step.order, e.item.id))


def _text(kind: str, **context: Any) -> dict:
    context.setdefault("district", None)
    return {"type": "text", "text": render_message("line_answer", kind=kind, **context)[1][:5000]}
