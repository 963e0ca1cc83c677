"""What every channel shares: the error a transport raises, and the HTTP status mapping."""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import httpx

if TYPE_CHECKING:
    from models.outbox import OutboxMessage

# Fixed forever: changing it would give every queued row a new key and defeat deduplication.
DELIVERY_KEY_NAMESPACE = uuid.UUID("99acceac-0e6d-4994-a9bd-62598e1a6fab")

# Statuses a retry can cure; every other 4xx means the request itself is wrong.
TRANSIENT_STATUSES = {408, 425, 429}


class TransportError(Exception):
    """A send that did not go through; ``permanent`` says whether retrying can help.

    ``route_refused`` marks a permanent error that makes the recipient's LINE route unusable
    (LINE refused the id, or the channel token), so the pump marks that route broken.
    ``channel_down`` marks a transient error of the service itself (refused connection, 5xx,
    429), not of this message: every queued message of the channel waits with this one.
    ``retry_after`` (seconds) or ``retry_at`` (an instant) is the service's own earliest retry.
    """

    def __init__(self, message: str, *, permanent: bool = False,
                 retry_after: float | None = None, retry_at: datetime | None = None,
                 route_refused: bool = False, channel_down: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.retry_at = retry_at
        self.route_refused = route_refused
        self.channel_down = channel_down and not permanent

    def __repr__(self) -> str:
        return (f"TransportError({self.message!r}, permanent={self.permanent}, "
                f"retry_after={self.retry_after}, retry_at={self.retry_at}, "
                f"channel_down={self.channel_down})")


class Transport(Protocol):
    """One channel; ``send`` returns on delivery and raises ``TransportError`` otherwise."""

    def send(self, message: OutboxMessage) -> None: ...


class AsyncTransport(Protocol):
    """A channel the pump sends to concurrently, from ``concurrency`` tasks on its own loop.

    ``answering`` says whether the service answered the last request (any status but a
    transient one of its own): while it is False, the pump sends one message alone first.
    """

    concurrency: int
    answering: bool

    async def send(self, message: OutboxMessage) -> None: ...

    async def aclose(self) -> None: ...


def delivery_key(idempotency_key: str) -> uuid.UUID:
    """A UUID stable across retries and restarts, for APIs that want a UUID-shaped key."""
    return uuid.uuid5(DELIVERY_KEY_NAMESPACE, idempotency_key)


def post_json(client: httpx.Client, url: str, *, json: object,
              headers: dict[str, str]) -> httpx.Response:
    """POST (webhooks: each to its own URL), turning network failures into transient errors
    of this message only and bad URLs into permanent ones."""
    with network_errors(url, one_service=False):
        return client.post(url, json=json, headers=headers)


async def post_json_async(client: httpx.AsyncClient, url: str, *, json: object,
                          headers: dict[str, str], one_service: bool = False) -> httpx.Response:
    """POST over an ``AsyncClient``, with the errors of ``post_json``.

    ``one_service``: every message goes to the same service (LINE), so a network failure
    means the service is unreachable for all of them, not just for this message.
    """
    with network_errors(url, one_service=one_service):
        return await client.post(url, json=json, headers=headers)


@contextmanager
def network_errors(url: str, *, one_service: bool) -> Iterator[None]:
    """httpx's failures as TransportErrors: a bad URL is permanent, the network transient."""
    try:
        yield
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise TransportError(f"bad URL {url!r}: {exc}", permanent=True) from exc
    except httpx.TimeoutException as exc:
        raise TransportError(f"timed out: {type(exc).__name__}",
                             channel_down=one_service) from exc
    except httpx.TransportError as exc:
        raise TransportError(f"network error: {type(exc).__name__}: {exc}",
                             channel_down=one_service) from exc


def check_status(response: httpx.Response, *, service: str,
                 route_statuses: frozenset[int] = frozenset(),
                 one_service: bool = False) -> None:
    """Map an HTTP answer to success or a TransportError (409 = already delivered)."""
    status = response.status_code
    if 200 <= status < 300 or status == 409:
        return
    text = f"{service} {status}: {error_text(response)}"
    if status in TRANSIENT_STATUSES or status >= 500:
        seconds, instant = parse_retry_after(response.headers.get("retry-after"))
        raise TransportError(text, retry_after=seconds, retry_at=instant,
                             channel_down=one_service and status != 408)
    raise TransportError(text, permanent=True, route_refused=status in route_statuses)


def error_text(response: httpx.Response) -> str:
    """The service's own explanation: LINE's ``{"message", "details"}`` or the raw body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if not isinstance(data, dict) or "message" not in data:
        return str(data)[:500]
    details = [d.get("message", "") + (f" ({d['property']})" if d.get("property") else "")
               for d in data.get("details") or [] if isinstance(d, dict)]
    return "; ".join([str(data["message"]), *details])[:1000]


def parse_retry_after(value: str | None) -> tuple[float | None, datetime | None]:
    """``Retry-After`` (RFC 9110) as (seconds, None) or (None, an aware instant); unreadable: both None.

    An HTTP date stays an instant: the pump compares it with its own ``now``, so the
    wait is right whatever clock the pump runs on.
    """
    value = (value or "").strip()
    if not value:
        return None, None
    try:
        return max(0.0, float(value)), None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None, None
    return None, when if when.tzinfo else when.replace(tzinfo=UTC)
