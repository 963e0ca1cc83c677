"""The LINE Flex Message of a person's reminders of the day: one card (bubble) per item.

A pure function from card models to the LINE message objects of one push (at most 5 messages,
each a carousel of at most 12 bubbles: LINE's limits), checked against LINE's own models in
tests/notifications/test_flex.py (line-bot-sdk v3).

A card: the letter (reference number and title), the step, the due date in the Buddhist era,
the item's standing on the day it is sent, a "เปิดดู" button opening the item in the web app
and, for a step that is not the report, a "ทำแล้ว" postback button whose data is exactly
``action=done&item=<item id>`` (the webhook marks the step done after a confirmation; the
report step is done only through its form).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.thaidate import thai_date

MAX_BUBBLES = 12
MAX_MESSAGES = 5
MAX_ALT_TEXT = 1500
OPEN_LABEL = "เปิดดู"
DONE_LABEL = "ทำแล้ว"
LATE_COLOR = "#C62828"
DUE_COLOR = "#E65100"
AHEAD_COLOR = "#1565C0"


@dataclass(frozen=True)
class Card:
    """One item as a person sees it in the carousel."""

    item_id: int
    reference_no: str
    letter_title: str
    step_title: str
    due_on: date
    days: int  # working days from the due date to the day sent: < 0 ahead, 0 due today, > 0 late
    url: str
    report_step: bool = False
    district_name: str | None = None  # named on a card sent to a district's LINE group


def standing_text(days: int) -> str:
    """The standing in Thai, on the day the message is sent."""
    if days < 0:
        return f"ครบกำหนดในอีก {-days} วันทำการ"
    if days == 0:
        return "ครบกำหนดวันนี้"
    return f"เลยกำหนด {days} วันทำการ"


def done_data(item_id: int) -> str:
    """The postback data of the "ทำแล้ว" button (LINE-ANSWER's webhook reads exactly this)."""
    return f"action=done&item={item_id}"


def alt_text(cards: list[Card]) -> str:
    """What LINE shows in the chat list and notifications: Thai, within 1,500 characters."""
    late = sum(1 for c in cards if c.days > 0)
    today = sum(1 for c in cards if c.days == 0)
    parts = [f"งานที่ต้องติดตาม {len(cards)} รายการ"]
    if late:
        parts.append(f"เลยกำหนด {late}")
    if today:
        parts.append(f"ครบกำหนดวันนี้ {today}")
    head = " · ".join(parts)
    lines = [f"- {c.step_title} ({standing_text(c.days)})" for c in cards]
    text = "\n".join([head, *lines])
    return text if len(text) <= MAX_ALT_TEXT else text[:MAX_ALT_TEXT - 1] + "…"


def bubble(card: Card) -> dict:
    """One card: letter, step, due date (B.E.), standing; the buttons in the footer."""
    color = LATE_COLOR if card.days > 0 else DUE_COLOR if card.days == 0 else AHEAD_COLOR
    body = [
        {"type": "text", "text": f"หนังสือ {card.reference_no}", "size": "xs",
         "color": "#888888", "wrap": True},
        {"type": "text", "text": card.letter_title, "size": "sm", "wrap": True,
         "maxLines": 3},
        {"type": "text", "text": card.step_title, "weight": "bold", "size": "md",
         "wrap": True, "margin": "md"},
    ]
    if card.district_name:
        body.append({"type": "text", "text": f"อำเภอ{card.district_name}", "size": "sm",
                     "wrap": True})
    body += [
        {"type": "text", "text": f"กำหนด {thai_date(card.due_on, 'long')}", "size": "sm",
         "margin": "md", "wrap": True},
        {"type": "text", "text": standing_text(card.days), "weight": "bold", "size": "sm",
         "color": color, "wrap": True},
    ]
    buttons: list[dict] = [{"type": "button", "style": "secondary", "height": "sm",
                            "action": {"type": "uri", "label": OPEN_LABEL, "uri": card.url}}]
    if not card.report_step:
        buttons.insert(0, {"type": "button", "style": "primary", "height": "sm",
                           "action": {"type": "postback", "label": DONE_LABEL,
                                      "data": done_data(card.item_id),
                                      "displayText": DONE_LABEL}})
    return {"type": "bubble", "size": "kilo",
            "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": body},
            "footer": {"type": "box", "layout": "vertical", "spacing": "sm",
                       "contents": buttons}}


def flex_messages(cards: list[Card]) -> list[dict]:
    """The LINE message objects of one push: carousels of up to 12 cards, at most 5 of them
    (60 cards; a person with more is shown the first 60, most late first, and the web app)."""
    if not cards:
        raise ValueError("a Flex Message needs at least one card")
    cards = sorted(cards, key=lambda c: (-c.days, c.due_on, c.item_id))
    cards = cards[:MAX_BUBBLES * MAX_MESSAGES]
    messages = []
    for start in range(0, len(cards), MAX_BUBBLES):
        chunk = cards[start:start + MAX_BUBBLES]
        messages.append({"type": "flex", "altText": alt_text(chunk),
                         "contents": {"type": "carousel",
                                      "contents": [bubble(card) for card in chunk]}})
    return messages
