"""The outbox pump wired to this deployment: its channels from the settings, its clock, its database.

``notifications.pump`` knows how to deliver; this module decides with what. The web process
(``tidtam serve``, ``tidtam web``) and ``tidtam pump`` both start it through ``start``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
from sqlmodel import Session

from models.outbox import Channel
from notifications.base import AsyncTransport, Transport
from notifications.line import AsyncLineTransport, line_clients
from notifications.mail import SmtpTransport
from notifications.prefect_events import PrefectEventsTransport
from notifications.pump import DeliveryPolicy, start_pump
from notifications.webhook import WebhookTransport
from tidtam.infra.clock import Clock
from tidtam.infra.settings import Settings

log = logging.getLogger("tidtam.pump")

SessionFactory = Callable[[], AbstractContextManager[Session]]


def transports_from_settings(settings: Settings, client: httpx.Client
                             ) -> dict[str, Transport | AsyncTransport]:
    """The channels this deployment can use; a missing one leaves rows 'not sent: no channel',
    except the Prefect events, which stay queued while ``PREFECT_API_URL`` is unset.

    LINE gets its own clients (``pump_line_shards`` aiohttp sessions, with ``client``'s
    timeout), used on the pump's loop and closed by ``close_transports``.
    """
    transports: dict[str, Transport | AsyncTransport] = {
        Channel.WEBHOOK.value: WebhookTransport(client)}
    token = settings.line_channel_access_token
    if token is not None and token.get_secret_value():
        clients = line_clients(settings.pump_line_concurrency, settings.pump_line_shards,
                               timeout=client.timeout)
        transports[Channel.LINE.value] = AsyncLineTransport(
            clients, token.get_secret_value(), settings.line_api_base,
            concurrency=settings.pump_line_concurrency,
            per_second=settings.pump_line_requests_per_second)
    if settings.prefect_api_url:
        transports[Channel.PREFECT_EVENT.value] = PrefectEventsTransport(client,
                                                                         settings.prefect_api_url)
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        transports[Channel.EMAIL.value] = SmtpTransport(
            settings.smtp_host, settings.smtp_port, settings.smtp_user, password,
            settings.smtp_tls, settings.smtp_from, helo=settings.smtp_helo)
    return transports


def policy_from_settings(settings: Settings) -> DeliveryPolicy:
    """Links in the cards to this deployment, and the LINE quota it keeps (0: none)."""
    return DeliveryPolicy(base_url=settings.base_url, group=settings.pump_group_reminders,
                          line_monthly_quota=settings.line_monthly_quota or None,
                          quota_threshold=settings.line_quota_threshold)


def start(settings: Settings, clock: Clock, session_factory: SessionFactory) -> Callable[[], None]:
    """The outbox pump on this process's clock, every ``pump_interval_seconds``; returns what
    stops it."""
    from apscheduler.schedulers.background import BackgroundScheduler

    client = httpx.Client(timeout=10)
    scheduler = BackgroundScheduler(timezone=settings.tz)
    transports = transports_from_settings(settings, client)
    start_pump(scheduler, session_factory, transports, settings.pump_interval_seconds,
               clock.now, tz=settings.tz, policy=policy_from_settings(settings))
    if not scheduler.running:
        scheduler.start()
    log.info("outbox pump started, every %s s", settings.pump_interval_seconds)

    def stop() -> None:
        scheduler.shutdown(wait=True)
        client.close()

    return stop
