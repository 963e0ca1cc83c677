"""A JSON POST for other systems, with an ``Idempotency-Key`` so a receiver can drop replays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from notifications.base import check_status, delivery_key, post_json

if TYPE_CHECKING:
    from models.outbox import OutboxMessage


class WebhookTransport:
    """POST the message as JSON to the URL held in ``recipient``."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def send(self, message: OutboxMessage) -> None:
        """Same status mapping as LINE: 2xx and 409 delivered, 429/5xx retried, other 4xx final."""
        headers = {"Content-Type": "application/json",
                   "Idempotency-Key": str(delivery_key(message.idempotency_key))}
        response = post_json(self.client, message.recipient, json=webhook_body(message),
                             headers=headers)
        check_status(response, service="webhook")


def webhook_body(message: OutboxMessage) -> dict:
    return {
        "key": message.idempotency_key,
        "subject": message.subject,
        "body": message.body,
        "district_code": message.district_code,
        "rung": message.rung,
        "item_id": message.item_id,
        "step_id": message.step_id,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }
