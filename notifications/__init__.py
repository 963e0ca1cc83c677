"""Delivering outbox messages: one transport per channel, the pump, and the message templates.
May import models and domain."""

from notifications.base import Transport, TransportError
from notifications.line import AsyncLineTransport
from notifications.mail import SmtpTransport
from notifications.pump import (
    PumpResult,
    backoff,
    deliver_due,
    next_try,
    start_pump,
)
from notifications.render import render_email_html, render_message
from notifications.webhook import WebhookTransport

__all__ = [
    "AsyncLineTransport", "PumpResult", "SmtpTransport", "Transport", "TransportError",
    "WebhookTransport", "backoff", "deliver_due", "next_try", "render_email_html",
    "render_message", "start_pump",
]
