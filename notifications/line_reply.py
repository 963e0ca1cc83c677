"""LINE Messaging API reply: answer a user's own action (a postback, a chat message).

A reply uses the event's ``replyToken``: it costs nothing against the Official Account's push
quota, but the token is good for one use and about one minute. So replies do not go through the
outbox (a row retried at the next office hour would find its token long dead): the webhook sends
the reply itself, once, right after its database transaction has committed. A failed reply is
logged and dropped; what the event changed stays changed.
"""

from __future__ import annotations

import logging

import httpx

from notifications.base import TransportError, check_status, post_json_async

log = logging.getLogger("tidtam.line")

REPLY_PATH = "/v2/bot/message/reply"
MAX_MESSAGES = 5  # LINE's limit per reply


class LineReplier:
    """POST /v2/bot/message/reply with the channel access token; the client is injected."""

    def __init__(self, client: httpx.AsyncClient, token: str,
                 api_base: str = "https://api.line.me") -> None:
        self.client = client
        self.token = token
        self.url = api_base.rstrip("/") + REPLY_PATH

    async def reply(self, reply_token: str, messages: list[dict]) -> None:
        """Send the reply; raise ``TransportError`` when LINE refuses it or cannot be reached."""
        body = {"replyToken": reply_token, "messages": messages[:MAX_MESSAGES]}
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        response = await post_json_async(self.client, self.url, json=body, headers=headers,
                                         one_service=True)
        check_status(response, service="LINE", route_statuses=frozenset({400}), one_service=True)

    async def reply_all(self, replies: list[tuple[str, list[dict]]]) -> int:
        """Send each (reply token, messages); log a failure and go on. Returns how many went."""
        sent = 0
        for reply_token, messages in replies:
            try:
                await self.reply(reply_token, messages)
            except TransportError as exc:
                log.warning("LINE reply not sent (the change it reports stands): %s", exc)
                continue
            sent += 1
        return sent


def text_message(text: str) -> dict:
    return {"type": "text", "text": text[:5000]}
