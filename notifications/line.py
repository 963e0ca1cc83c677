"""LINE Messaging API push (LINE Notify ended on 31 March 2025)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from notifications.base import check_status, delivery_key, post_json

if TYPE_CHECKING:
    from models.outbox import OutboxMessage

MAX_TEXT = 5000
# 400: LINE refuses the ``to`` id; 404: no such user. 401/403 are the channel's fault
# (bad token, plan), not the user's, so they fail the message without disabling the route.
ROUTE_STATUSES = frozenset({400, 404})


class LineTransport:
    """Push one text message to a LINE user or group id."""

    def __init__(self, client: httpx.Client, token: str,
                 api_base: str = "https://api.line.me") -> None:
        self.client = client
        self.token = token
        self.url = api_base.rstrip("/") + "/v2/bot/message/push"

    def send(self, message: OutboxMessage) -> None:
        """Push; a 409 means LINE already accepted this retry key, so it counts as delivered."""
        response = post_json(self.client, self.url, json=push_body(message),
                             headers=self.headers(message))
        check_status(response, service="LINE", route_statuses=ROUTE_STATUSES)

    def headers(self, message: OutboxMessage) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "X-Line-Retry-Key": str(retry_key(message.idempotency_key)),
        }


def retry_key(idempotency_key: str) -> str:
    """The same UUID for every retry of one outbox row, so LINE drops a duplicate push."""
    return str(delivery_key(idempotency_key))


def push_body(message: OutboxMessage) -> dict:
    return {"to": message.recipient,
            "messages": [{"type": "text", "text": message_text(message)}]}


def message_text(message: OutboxMessage) -> str:
    """Subject and body in one text bubble, cut to LINE's 5,000-character limit."""
    text = f"{message.subject}\n\n{message.body}".strip()
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
