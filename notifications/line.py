"""LINE Messaging API push (LINE Notify ended on 31 March 2025).

One transport, ``AsyncLineTransport``: the one the pump uses in production
(``tidtam.infra.pump.transports_from_settings``), many pushes at once, within LINE's limits,
over ``LineClient``s (aiohttp: about a third of httpx's CPU a push, bench/README.md P3).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import aiohttp
import aiohttp.helpers
import httpx
import yarl
from aiolimiter import AsyncLimiter

from notifications.base import (
    TransportError,
    check_status,
    delivery_key,
    error_text,
    post_json_async,
)

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
# LINE's published limit for the push endpoint, per channel.
REQUESTS_PER_SECOND = 2000
CONCURRENCY = 50
# The connections are spread over several small clients (httpcore's pool did work quadratic in
# its connections on every assignment, encode/httpx#3215; aiohttp's does not, but a request
# still goes to the least busy client: bench/README.md, P3).
SHARDS = 10


USER_AGENT = f"tidtam aiohttp/{aiohttp.__version__}"


def token_fingerprint(token: str) -> str:
    """A short, non-secret name for a channel access token (the first 8 hex of its SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class AsyncLineTransport:
    """Push many messages at once: at most ``concurrency`` requests in flight and at most
    ``per_second`` started in any one second, each on the least busy of ``clients``.

    With as many clients as the concurrency allows connections per client, no request ever
    waits in a client's pool. Use it on one event loop only (the pump's).
    """

    def __init__(self, clients: Sequence[LineClient | httpx.AsyncClient], token: str,
                 api_base: str = "https://api.line.me", *, concurrency: int = CONCURRENCY,
                 per_second: float = REQUESTS_PER_SECOND) -> None:
        if not clients:
            raise ValueError("AsyncLineTransport needs at least one client")
        self.token = token
        self.fingerprint = token_fingerprint(token)
        self.url = api_base.rstrip("/") + "/v2/bot/message/push"
        self.clients = list(clients)
        self.concurrency = concurrency
        self.answering = False  # nothing heard yet: the pump probes with one push first
        self._busy = [0] * len(self.clients)
        self._slots = asyncio.Semaphore(concurrency)
        self._limiter = rate_limiter(per_second, concurrency)

    async def send(self, message: OutboxMessage) -> None:
        """Push; return on delivery (a 409 means LINE already accepted this retry key), else
        raise ``TransportError``: 400/404 refuse the route, 401/403 the token (named by its
        fingerprint), 429/5xx and network failures mean LINE is down for every message."""
        try:
            check_answer(await self._post(message), self.fingerprint)
        except TransportError as exc:
            self.answering = not exc.channel_down
            raise
        self.answering = True

    async def _post(self, message: OutboxMessage) -> httpx.Response | int:
        async with self._slots, self._limiter:
            with self._client() as client:
                if isinstance(client, LineClient):
                    return await client.post(self.url, content=push_content(message),
                                             headers=push_headers(self.token, message))
                return await post_json_async(client, self.url, json=push_body(message),
                                             headers=push_headers(self.token, message),
                                             one_service=True)

    @contextmanager
    def _client(self) -> Iterator[LineClient | httpx.AsyncClient]:
        """The client with the fewest requests in flight, held for one request."""
        shard = min(range(len(self.clients)), key=self._busy.__getitem__)
        self._busy[shard] += 1
        try:
            yield self.clients[shard]
        finally:
            self._busy[shard] -= 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


class LineClient:
    """An HTTP/1.1 client for LINE's API: one aiohttp session with ``connections`` keep-alive
    connections, made on first use on the loop that uses it (the pump's).

    aiohttp, not httpx, because it is the cost of a push here: httpx.AsyncClient spent about
    1.1 ms of CPU a push (0.7 ms even over aiohttp as its transport), aiohttp 0.3 ms, the same
    requests written by hand over raw sockets 0.2 ms (bench/README.md, P3). The statuses
    and network failures map to the same ``TransportError``s as the httpx path's.
    """

    def __init__(self, connections: int, *, timeout: httpx.Timeout | float = 10.0,
                 verify: ssl.SSLContext | None = None) -> None:
        self.connections = max(1, connections)
        limits = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect, sock_read=limits.read,
            # aiohttp's ``connect`` spans waiting for a pooled connection and connecting
            connect=None if limits.pool is None or limits.connect is None
            else limits.pool + limits.connect)
        self.verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._proxies: dict[str, tuple[str | None, aiohttp.BasicAuth | None]] = {}

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def post(self, url: str, *, content: bytes,
                   headers: Mapping[str, str]) -> httpx.Response | int:
        """POST; the status alone when it is a delivery (2xx, or 409: the retry key was
        accepted before), else the whole answer (for ``check_answer``). Network failures raise
        ``TransportError`` (LINE is down for every message), a bad URL a permanent one."""
        proxy, proxy_auth = self._proxy_for(url)
        try:
            async with self._open().post(url, data=content, headers=headers,
                                         allow_redirects=False, proxy=proxy,
                                         proxy_auth=proxy_auth) as answer:
                body = await answer.read()
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise TransportError(f"bad URL {url!r}: {exc}", permanent=True) from exc
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise TransportError(f"timed out: {type(exc).__name__}", channel_down=True) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"network error: {type(exc).__name__}: {exc}",
                                 channel_down=True) from exc
        status = answer.status
        if 200 <= status < 300 or status == 409:
            return status
        return httpx.Response(status, headers=list(answer.raw_headers), content=body,
                              request=httpx.Request("POST", url))

    def _proxy_for(self, url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
        """The proxy the environment names for ``url`` (HTTPS_PROXY, NO_PROXY…), as httpx
        honoured it; looked up once a URL (aiohttp's ``trust_env`` looks again on every
        request, ~0.7 ms of CPU here)."""
        if url not in self._proxies:
            try:
                proxy, auth = aiohttp.helpers.get_env_proxy_for_url(yarl.URL(url))
                self._proxies[url] = (str(proxy), auth)
            except LookupError:
                self._proxies[url] = (None, None)
        return self._proxies[url]

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this LineClient is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0,
                                             ssl=self.verify if self.verify is not None else True,
                                             keepalive_timeout=5)
            # No Accept or Accept-Encoding: LINE answers a push with a few bytes of JSON.
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT},
                skip_auto_headers=("Accept", "Accept-Encoding"))
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


def line_clients(concurrency: int = CONCURRENCY, shards: int = SHARDS, *,
                 timeout: httpx.Timeout | float = 10.0) -> list[LineClient]:
    """``shards`` clients whose connections add up to ``concurrency``."""
    shards = max(1, min(shards, concurrency))
    each = -(-concurrency // shards)  # ceiling: the least busy client never has them all busy
    tls = httpx.create_ssl_context()  # one for all: loading the CA bundle costs ~0.1 s a client
    return [LineClient(each, timeout=timeout, verify=tls) for _ in range(shards)]


def rate_limiter(per_second: float, burst: float) -> AsyncLimiter:
    """A leaky bucket that never lets more than ``per_second`` start in any 1-second window.

    aiolimiter's bucket holds ``max_rate`` and drains at ``max_rate / time_period``: in any
    window of 1 s at most (bucket + drain × 1 s) acquisitions go through. A small bucket
    (the concurrency, or 5 % of the rate) and a drain of the rest keep that sum at the limit
    — ``AsyncLimiter(2000, 1)`` alone would allow up to 4,000 in a sliding second.
    """
    if per_second <= 1:
        raise ValueError(f"per_second must be more than 1, not {per_second}")
    bucket = max(1.0, min(float(burst), per_second / 20))
    return AsyncLimiter(bucket, bucket / (per_second - bucket))


def check_answer(response: httpx.Response | int, fingerprint: str) -> None:
    """Return on delivery (2xx, or 409: LINE already accepted this retry key); else raise."""
    if isinstance(response, int):  # a LineClient's delivery: the status alone
        return
    if response.status_code in TOKEN_STATUSES:
        raise token_refused(response, fingerprint)
    check_status(response, service="LINE", route_statuses=ROUTE_STATUSES, one_service=True)


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


def push_headers(token: str, message: OutboxMessage) -> dict[str, str]:
    """The channel access token and the row's retry key, the same on every retry."""
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-Line-Retry-Key": retry_key(message.idempotency_key),
    }


def push_body(message: OutboxMessage) -> dict:
    """The push: the message objects a grouped delivery carries (a Flex carousel of the day's
    reminders, notifications.flex), else the row's subject and body as one text message."""
    # An OutboxMessage has no such attribute, and asking its pydantic model for a missing one
    # raises and catches an AttributeError: a few per cent of a push's CPU (P3). A Delivery
    # (notifications.pump) carries it as a field.
    messages = vars(message).get("line_messages")
    return {"to": message.recipient,
            "messages": list(messages) if messages else [{"type": "text",
                                                          "text": message_text(message)}]}


def push_content(message: OutboxMessage) -> bytes:
    """``push_body`` as the request's bytes (UTF-8 JSON, as httpx's ``json=`` writes it)."""
    return json.dumps(push_body(message), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode()


def message_text(message: OutboxMessage) -> str:
    """Subject and body in one text bubble, cut to LINE's 5,000-character limit."""
    text = f"{message.subject}\n\n{message.body}".strip()
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
