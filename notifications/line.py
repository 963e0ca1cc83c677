"""LINE Messaging API push (LINE Notify ended on 31 March 2025)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import httpx

from notifications.base import TransportError, check_status, delivery_key, error_text, post_json

if TYPE_CHECKING:
    from models.outbox import OutboxMessage

MAX_TEXT = 5000
# 400: LINE refuses the request for this ``to`` (malformed or unknown id); 404: no such user.
ROUTE_STATUSES = frozenset({400, 404})
# 401/403: LINE refuses our channel access token (wrong, revoked, or not allowed this API).
# Permanent too, and the route is marked broken like a 400 (the issue asks for it), but the
# reason says plainly that the token, not the recipient, is at fault, and names the token by a
# fingerprint: once the operator installs another token, those marks are cleared at start-up
# (models.user.clear_token_refusals) instead of everyone having to relink.
TOKEN_STATUSES = frozenset({401, 403})


def token_fingerprint(token: str) -> str:
    """A short, non-secret name for a channel access token (the first 8 hex of its SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class LineTransport:
    """Push one text message to a LINE user or group id."""

    def __init__(self, client: httpx.Client, token: str,
                 api_base: str = "https://api.line.me") -> None:
        self.client = client
        self.token = token
        self.fingerprint = token_fingerprint(token)
        self.url = api_base.rstrip("/") + "/v2/bot/message/push"

    def send(self, message: OutboxMessage) -> None:
        """Push; a 409 means LINE already accepted this retry key, so it counts as delivered."""
        response = post_json(self.client, self.url, json=push_body(message),
                             headers=self.headers(message), one_service=True)
        if response.status_code in TOKEN_STATUSES:
            raise token_refused(response, self.fingerprint)
        check_status(response, service="LINE", route_statuses=ROUTE_STATUSES, one_service=True)

    def headers(self, message: OutboxMessage) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "X-Line-Retry-Key": str(retry_key(message.idempotency_key)),
        }


def token_refused(response: httpx.Response, fingerprint: str) -> TransportError:
    """401/403: the channel access token is at fault, and the message says so."""
    return TransportError(
        f"{token_mark(fingerprint)} LINE {response.status_code}: {error_text(response)} — LINE "
        "refused the channel access token (TIDTAM_LINE_CHANNEL_ACCESS_TOKEN), not this "
        "recipient's id: fix the token", permanent=True, route_refused=True)


def token_mark(fingerprint: str) -> str:
    """How a route error names the token LINE refused: ``[token 1a2b3c4d]``."""
    return f"[token {fingerprint}]"


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
