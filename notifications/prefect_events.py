"""Prefect events: the outbox's ``prefect-event`` rows POSTed to the Prefect server's events API.

``POST {PREFECT_API_URL}/events`` takes a JSON list of events and answers 204 (Prefect 3.9,
``prefect.server.api.events.create_events``); the server stores an event once by its id, so a
redelivery of a row (a pump killed after the server's answer) changes nothing there. Every row
goes to the same server: a refused connection, a timeout or a 5xx holds back every queued event
until it answers again. Events are not people's messages: the pump sends them at any hour and
never gives up on them while the server is down (``notifications.pump``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from notifications.base import check_status, network_errors

if TYPE_CHECKING:
    from models.outbox import OutboxMessage


class PrefectEventsTransport:
    """POST each row's event to ``{api_url}/events``."""

    # Read by the pump: a machine's channel, outside office hours and the attempt budget.
    office_hours = False
    gives_up = False

    def __init__(self, client: httpx.Client, api_url: str) -> None:
        self.client = client
        self.url = api_url.rstrip("/") + "/events"

    def send(self, message: OutboxMessage) -> None:
        """204 is delivered; a 5xx, 429 or no answer waits with the channel; a 4xx is final
        (the server refused the event itself: sending it again would not help)."""
        with network_errors(self.url, one_service=True):
            response = self.client.post(self.url, json=[event_body(message)])
        check_status(response, service="prefect events", one_service=True)


def event_body(message: OutboxMessage) -> dict:
    """The event the row holds (written whole by ``tidtam.app.events``)."""
    return json.loads(message.body)
