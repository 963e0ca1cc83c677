"""P3: 1,000 LINE pushes to the LINE stand-in with 50 ms latency — tidtam against Apprise's line://.

tidtam's side: (a) the production pump as the web process runs it (``notifications.pump.drain``:
passes that overlap, the next batch claimed while the sends are in flight, with the
``AsyncLineTransport`` that ``transports_from_settings`` builds: 50 pushes in flight over 10
aiohttp-backed ``LineClient``s, at most 2,000 started a second) over 1,000 queued outbox rows in
SQLite, claim and result writes included, taking turns run by run with the floor (the goal is
their ratio); with ``--sequential`` also the pump one push at a time, as it sent before it went
concurrent (``deliver_due`` with the same ``AsyncLineTransport`` at concurrency 1); (b) the bare
fan-out: the same requests (body, headers, ``X-Line-Retry-Key``) from 50 concurrent tasks
through one aiohttp session and through ``httpx.AsyncClient`` — default, tuned limits, sharded
across clients, HTTP/2 where possible — and, as the floor, the same requests over raw asyncio
sockets.
The peer: Apprise's ``line://`` plugin, (i) one notify with 1,000 URLs, (ii) one URL with 1,000
targets. Every variant runs against the same stand-in process with the same recipients.

    .venv/bin/python -m bench.p3_line_pushes [--pushes 1000] [--latency-ms 50] [--repeat 3]
        [--skip-apprise] [--skip-httpx] [--skip-pump] [--sequential]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import select

from bench._common import StandIn, machine, max_in_window, print_table, stand_in
from domain.calendar import WorkCalendar
from models.outbox import Channel, OutboxMessage
from notifications.line import message_text, push_body, push_content, push_headers
from notifications.pump import close_transports, deliver_due, drain
from tidtam.demo.line_standin import PUSH_PATH
from tidtam.infra.db import engine_for, migrate, session_scope
from tidtam.infra.pump import transports_from_settings
from tidtam.infra.settings import Settings

TOKEN = "benchtoken"
GOAL_OVER_FLOOR = 1.3  # issue 17: the pump within 1.3x of the raw-socket floor, same run
CONCURRENCY = 50
LINE_LIMIT_PER_SECOND = 2000
# Tuesday 6 August 2024, 10:00 in Bangkok: a working day inside office hours, so the pump sends.
NOW = datetime(2024, 8, 6, 3, 0, tzinfo=UTC)


@dataclass
class Outcome:
    """One variant's run: its wall time and what the stand-in saw."""

    variant: str
    seconds: float | None
    pushes: list[dict]
    requests: int
    client_errors: int = 0
    note: str = ""
    max_in_flight: int = 0
    runs: list[float] = field(default_factory=list)  # every run's seconds, in the order run


# --- The data: 1,000 queued LINE rows, one recipient each -----------------------------------

def line_id(i: int) -> str:
    return "U" + uuid.uuid5(uuid.NAMESPACE_URL, f"tidtam-bench-user-{i}").hex


def outbox_db(folder: Path, count: int) -> Engine:
    """A migrated SQLite database holding ``count`` due LINE rows."""
    url = f"sqlite:///{folder / 'p3.db'}"
    migrate(url)
    engine = engine_for(url)
    queued_at = NOW - timedelta(minutes=1)
    with session_scope(engine) as session:
        session.add_all(OutboxMessage(
            idempotency_key=f"bench:p3:{i}", channel=Channel.LINE, recipient=line_id(i),
            district_code=f"{1000 + i:04d}"[-4:], rung="due",
            subject="แจ้งเตือน: ถึงกำหนดส่งรายงาน",
            body="อำเภอของท่านยังไม่ได้ส่งรายงานผลการดำเนินงานศูนย์อาสาสมัคร กรุณาดำเนินการภายในวันนี้",
            next_try_at=queued_at, created_at=queued_at + timedelta(microseconds=i))
            for i in range(count))
    return engine


def load_rows(engine: Engine) -> list[OutboxMessage]:
    with session_scope(engine) as session:
        rows = list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
        session.expunge_all()
    return rows


# --- tidtam (a): the production pump ----------------------------------------------------------

class PumpRun:
    """The web process's pump: transports built once at start-up (as ``web.app`` does), then
    per run a fresh database of due rows (before the clock starts) and one ``drain``."""

    def __init__(self, folder: Path, count: int, base_url: str, client: httpx.Client) -> None:
        self.folder, self.count, self.runs = folder, count, 0
        settings = Settings(_env_file=None, line_channel_access_token=TOKEN,
                            line_api_base=base_url)
        self.transports = transports_from_settings(settings, client)
        self.engine: Engine | None = None
        # A web process loads the holiday calendar (~0.5 s) at its first pass, not every pass.
        WorkCalendar().next_send_slot(NOW, settings.tz)

    def prepare(self) -> None:
        self.runs += 1
        (folder := self.folder / f"run-{self.runs}").mkdir()
        self.engine = outbox_db(folder, self.count)

    def __call__(self) -> int:
        factory = functools.partial(session_scope, self.engine)
        return drain(factory, self.transports, lambda: NOW).sent

    def close(self) -> None:
        close_transports(self.transports)


def run_sequential_pump(engine: Engine, base_url: str) -> int:
    """The pump one push at a time, as before concurrency: pass after pass (50 rows a pass),
    the production transport with one request in flight, over one client."""
    factory = functools.partial(session_scope, engine)
    settings = Settings(_env_file=None, line_channel_access_token=TOKEN, line_api_base=base_url,
                        pump_line_concurrency=1, pump_line_shards=1)
    sent = 0
    with httpx.Client(timeout=10) as client:
        transports = transports_from_settings(settings, client)
        try:
            while (result := deliver_due(factory, transports, NOW)).total:
                sent += result.sent
        finally:
            close_transports(transports)
    return sent


# --- tidtam (b): the fan-out, 50 tasks over one or several AsyncClients ----------------------

async def fan_out(clients: list[httpx.AsyncClient], base_url: str, rows: list[OutboxMessage],
                  concurrency: int = CONCURRENCY) -> int:
    """50 workers take rows from one queue; worker k uses client k mod N. Returns failures."""
    url = base_url.rstrip("/") + PUSH_PATH
    headers_of = functools.partial(push_headers, TOKEN)
    queue = iter(rows)

    async def worker(client: httpx.AsyncClient) -> int:
        failures = 0
        for row in queue:
            response = await client.post(url, json=push_body(row), headers=headers_of(row))
            failures += response.status_code not in (200, 409)
        return failures

    results = await asyncio.gather(*(worker(clients[k % len(clients)]) for k in range(concurrency)))
    return sum(results)


FanOut = Callable[[], list[httpx.AsyncClient]]

FAN_OUT_VARIANTS: list[tuple[str, FanOut]] = [
    ("httpx.AsyncClient() defaults (100 conn, 20 keep-alive)", lambda: [httpx.AsyncClient()]),
    ("1 client, limits 50 conn / 50 keep-alive",
     lambda: [httpx.AsyncClient(limits=httpx.Limits(max_connections=50,
                                                    max_keepalive_connections=50))]),
    ("1 client, limits 100 conn / 100 keep-alive",
     lambda: [httpx.AsyncClient(limits=httpx.Limits(max_connections=100,
                                                    max_keepalive_connections=100))]),
    ("5 clients x 10 conn (sharded)",
     lambda: [httpx.AsyncClient(limits=httpx.Limits(max_connections=10,
                                                    max_keepalive_connections=10))
              for _ in range(5)]),
    ("10 clients x 5 conn (sharded)",
     lambda: [httpx.AsyncClient(limits=httpx.Limits(max_connections=5,
                                                    max_keepalive_connections=5))
              for _ in range(10)]),
    ("50 clients x 1 conn (one per task)",
     lambda: [httpx.AsyncClient(limits=httpx.Limits(max_connections=1,
                                                    max_keepalive_connections=1))
              for _ in range(50)]),
]


async def run_fan_out(make_clients: FanOut, base_url: str, rows: list[OutboxMessage]
                      ) -> tuple[float, int]:
    """Clients are built before the clock starts (a long-lived process builds them once)."""
    clients = make_clients()
    try:
        start = time.perf_counter()
        failures = await fan_out(clients, base_url, rows)
        return time.perf_counter() - start, failures
    finally:
        for client in clients:
            await client.aclose()


async def try_http2(base_url: str, rows: list[OutboxMessage]) -> str | None:
    """HTTP/2 without TLS needs prior knowledge (h2c); None if the stand-in speaks it."""
    async with httpx.AsyncClient(http1=False, http2=True, timeout=5) as client:
        try:
            response = await client.post(base_url + PUSH_PATH, json=push_body(rows[0]),
                                         headers=push_headers(TOKEN, rows[0]))
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
    return None if response.http_version == "HTTP/2" else f"answered {response.http_version}"


AIOHTTP_VARIANT = "aiohttp.ClientSession, 50 connections (what LineClient uses)"


async def aiohttp_fan_out(base_url: str, rows: list[OutboxMessage],
                          concurrency: int = CONCURRENCY) -> tuple[float, int]:
    """50 workers over one aiohttp session of 50 connections (HTTP only, as the httpx ones)."""
    import aiohttp

    url = base_url.rstrip("/") + PUSH_PATH
    headers_of = functools.partial(push_headers, TOKEN)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        async def post(row: OutboxMessage) -> int:
            async with session.post(url, data=push_content(row), headers=headers_of(row)) as answer:
                await answer.read()
                return answer.status

        queue = iter(rows)

        async def worker() -> int:
            return sum([await post(row) not in (200, 409) for row in queue])

        start = time.perf_counter()
        results = await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, sum(results)


# --- The floor: the same requests over raw asyncio sockets, no HTTP library -------------------

async def raw_fan_out(base_url: str, rows: list[OutboxMessage],
                      concurrency: int = CONCURRENCY) -> tuple[float, int]:
    """50 keep-alive HTTP/1.1 connections written by hand: what the stand-in itself allows."""
    url = httpx.URL(base_url)
    headers_of = functools.partial(push_headers, TOKEN)
    queue = iter(rows)

    async def worker() -> int:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        failures = 0
        for row in queue:
            body = json.dumps(push_body(row), ensure_ascii=False).encode()
            head = "".join(f"{k}: {v}\r\n" for k, v in headers_of(row).items())
            writer.write(f"POST {PUSH_PATH} HTTP/1.1\r\nHost: {url.host}\r\n{head}"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            failures += status not in (200, 409)
        writer.close()
        return failures

    start = time.perf_counter()
    results = await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, sum(results)


# --- The peer: Apprise's line:// -------------------------------------------------------------

def apprise_runs(base_url: str, rows: list[OutboxMessage]) -> list[tuple[str, Callable[[], bool]]]:
    """Both Apprise shapes, instantiated before the clock starts; only notify() is timed."""
    import apprise
    from apprise.plugins.line import NotifyLine

    # Apprise has no setting for LINE's API address: the plugin posts to its class attribute
    # ``notify_url`` (apprise/plugins/line.py), so point that at the stand-in.
    NotifyLine.notify_url = base_url.rstrip("/") + PUSH_PATH
    body = message_text(rows[0])

    many = apprise.Apprise()
    for row in rows:
        many.add(apprise.Apprise.instantiate(f"line://{TOKEN}/{row.recipient}"))
    one = apprise.Apprise.instantiate(f"line://{TOKEN}/" + "/".join(r.recipient for r in rows))
    # NotifyBase waits request_rate_per_sec = 5.5 s between two requests of one URL: 1,000
    # targets would take ~92 minutes. Measured with the throttle off, as its best case.
    one.request_rate_per_sec = 0
    single = apprise.Apprise()
    single.add(one)
    return [(f"Apprise (i): one notify, {len(rows)} URLs", lambda: many.notify(body=body)),
            (f"Apprise (ii): one URL, {len(rows)} targets (throttle off)",
             lambda: single.notify(body=body))]


# --- Measuring and reporting ------------------------------------------------------------------

def measure(line: StandIn, variant: str, run: Callable[[], object], repeat: int = 1,
            prepare: Callable[[], object] | None = None) -> Outcome:
    """The median of ``repeat`` runs (by seconds), each on a freshly reset stand-in, each
    after ``prepare`` (not timed)."""
    [outcome] = measure_alternately(line, [(variant, run, prepare)], repeat)
    return outcome


Variant = tuple[str, Callable[[], object], Callable[[], object] | None]


def measure_alternately(line: StandIn, variants: list[Variant], repeat: int) -> list[Outcome]:
    """Each variant's median of ``repeat`` runs, the variants taking turns run by run (A, B,
    A, B, …), so that a busy spell of a shared machine falls on both, not on one."""
    runs: list[list[Outcome]] = [[] for _ in variants]
    for _ in range(repeat):
        for (variant, run, prepare), done in zip(variants, runs, strict=True):
            if prepare is not None:
                prepare()
            done.append(measure_once(line, variant, run))
    medians = []
    for done in runs:
        ordered = sorted(done, key=lambda o: o.seconds or 0.0)
        median = ordered[len(ordered) // 2]
        median.runs = [o.seconds or 0.0 for o in done]
        if repeat > 1:
            median.note = "median of " + ", ".join(f"{o.seconds:.2f}" for o in ordered) + " s"
        medians.append(median)
    return medians


def measure_once(line: StandIn, variant: str, run: Callable[[], object]) -> Outcome:
    """Time ``run`` on a freshly reset stand-in; a fan-out returns its own (seconds, failures)."""
    line.reset()
    start = time.perf_counter()
    value = run()
    seconds, failures = time.perf_counter() - start, 0
    if isinstance(value, tuple):
        seconds, failures = value
    elif value is False:  # Apprise: some target failed
        failures = 1
    in_flight = httpx.get(line.base_url + "/_fake/stats", timeout=60).json()["max_in_flight"]
    return Outcome(variant, seconds, line.pushes(), line.request_count(), failures,
                   max_in_flight=in_flight)


def row_of(outcome: Outcome, peer_seconds: float | None) -> list[object]:
    if outcome.seconds is None:
        return [outcome.variant, "n/a", "", "", "", "", "", "", "", "(see note)"]
    pushes = outcome.pushes
    delivered = len({p["to"] for p in pushes})
    keyed = sum(1 for p in pushes if p.get("retry_key"))
    peak = max_in_window([datetime.fromisoformat(p["received_at"]) for p in pushes])
    ratio = f"{peer_seconds / outcome.seconds:.1f}x" if peer_seconds else ""
    return [outcome.variant, f"{outcome.seconds:.2f}", f"{delivered / outcome.seconds:.0f}",
            delivered, len(pushes) - delivered, outcome.requests - len(pushes),
            f"{100 * keyed / max(1, len(pushes)):.0f}%",
            f"{peak}{' OVER' if peak > LINE_LIMIT_PER_SECOND else ''}", outcome.max_in_flight,
            ratio]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--skip-pump", action="store_true", help="skip (a), the pump")
    parser.add_argument("--skip-apprise", action="store_true", help="skip the peer (~70 s)")
    parser.add_argument("--skip-httpx", action="store_true",
                        help="skip (b)'s httpx fan-outs (the aiohttp one stays)")
    parser.add_argument("--sequential", action="store_true",
                        help="also the pump one push at a time (concurrency 1: ~60 s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each variant but Apprise's; the median is shown")
    args = parser.parse_args()
    print(f"P3 — {args.pushes} LINE pushes, stand-in latency {args.latency_ms:g} ms, "
          f"fan-out concurrency {CONCURRENCY}; {machine()}")
    print(f"floor at {CONCURRENCY} concurrent: {args.pushes / CONCURRENCY * args.latency_ms / 1000:.2f} s")
    floor_name = "floor: raw asyncio sockets, 50 keep-alive conns (no HTTP library)"
    with (tempfile.TemporaryDirectory() as folder, stand_in(TOKEN, args.latency_ms) as line,
          httpx.Client(timeout=10) as client):
        engine = outbox_db(Path(folder), args.pushes)
        rows = load_rows(engine)
        outcomes = [] if args.skip_apprise else [
            measure(line, name, run) for name, run in apprise_runs(line.base_url, rows)]
        peer = outcomes[0].seconds if outcomes else None
        def floor_run() -> tuple[float, int]:
            return asyncio.run(raw_fan_out(line.base_url, rows))

        if args.skip_pump:
            outcomes.append(measure(line, floor_name, floor_run, args.repeat))
        else:
            # The pump and the floor take turns, run by run: the goal is their ratio.
            pump = PumpRun(Path(folder), args.pushes, line.base_url, client)
            try:
                outcomes += measure_alternately(line, [
                    ("tidtam (a) pump: drain + AsyncLineTransport", pump, pump.prepare),
                    (floor_name, floor_run, None)], args.repeat)
            finally:
                pump.close()
        if args.sequential:
            outcomes.append(measure(line, "tidtam (a) one at a time: deliver_due + "
                                    "AsyncLineTransport, concurrency 1",
                                    lambda: run_sequential_pump(engine, line.base_url)))
        outcomes.append(measure(line, f"tidtam (b) {AIOHTTP_VARIANT}", lambda: asyncio.run(
            aiohttp_fan_out(line.base_url, rows)), args.repeat))
        for name, make in [] if args.skip_httpx else FAN_OUT_VARIANTS:
            outcomes.append(measure(line, f"tidtam (b) {name}", lambda make=make: asyncio.run(
                run_fan_out(make, line.base_url, rows)), args.repeat))
        refused = None if args.skip_httpx else asyncio.run(try_http2(line.base_url, rows))
        if refused is not None:
            outcomes.append(Outcome("tidtam (b) HTTP/2 (h2c prior knowledge)", None, [], 0,
                                    note=f"stand-in (uvicorn) does not speak HTTP/2 — {refused}"))
    print_table(["variant", "seconds", "pushes/s", "delivered", "duplicates", "409 replays",
                 "retry key", "max req/1 s", "max in flight", "x Apprise (i)"],
                [row_of(o, peer) for o in outcomes])
    for o in outcomes:
        if o.note:
            print(f"  note — {o.variant}: {o.note}")
        if o.client_errors:
            print(f"  ! {o.variant}: {o.client_errors} answers other than 200/409")
    if not args.skip_pump:
        by_name = {o.variant: o for o in outcomes}
        pump_out = by_name["tidtam (a) pump: drain + AsyncLineTransport"]
        floor_out = by_name[floor_name]
        pump_runs, floor_runs = pump_out.runs, floor_out.runs
        pairs = [p / f for p, f in zip(pump_runs, floor_runs, strict=True)]
        ratio = (pump_out.seconds or 0.0) / (floor_out.seconds or 1.0)
        print(f"pump / floor: {ratio:.2f}x (medians); run by run "
              + ", ".join(f"{r:.2f}" for r in pairs)
              + f"; goal <= {GOAL_OVER_FLOOR}x: {'met' if ratio <= GOAL_OVER_FLOOR else 'NOT met'}")


if __name__ == "__main__":
    main()
