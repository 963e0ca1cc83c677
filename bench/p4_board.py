"""P4: the boards' server render time on the national dataset — p50 / p95.

Data: ``tidtam demo-data --provinces all --seed 1`` as of Tuesday 13 August 2024, 10:00 Bangkok
(without photo files): 76 provinces, 878 districts, the Department's directive launched in every
province (and Chiang Mai's addition), a seeded mix of steps done early, on time, late and never,
reports, provincial reports and outbox rows.

Timed, each request through the real app in this process, one request at a time: the ASGI app
called directly on one event loop kept for the whole run (``Browser``: as a server calls it; no
HTTP client, no thread portal), with a GET's scope carrying the signed-in browser's cookies, so
that all of the app runs — every middleware (security headers, body limit, the signed session
cookie, CSRF), routing, FastAPI's dependencies, the sign-in checked against the database, the
access checks, the queries, Jinja — and the answer's whole body is collected and its cookies kept.
The sign-in itself is done once through the login form with Starlette's TestClient. (Until
6 Dec 2026 each request went through a TestClient opened per request, whose portal thread and
event loop, started and stopped around every request, cost ~1–2 ms that the peer, plain function
calls, never pays.) ``GET /healthz`` by the same browser is printed as the floor: the middleware
and routing with no page.
- the national board, ``GET /national`` as the Department viewer (goal p95 ≤ 150 ms);
- one province's board, ``GET /directives/{slug}`` as Chiang Mai's coordinator (25 districts ×
  13 steps) and as the Department for Sa Kaeo (9 districts) (goal p95 ≤ 20 ms): the pages
  ``/board`` and ``/provinces/27`` send them to (links from before a province had several
  directives). Those two old links are timed as well, redirect and page together (two requests),
  for information: the redirect renders nothing, it finds the province's one active directive.
The peer is the dashboard's data as a tutorial gathers it, on the same database: the national
figures as one COUNT query per province × step × measure (expected, done, on time, overdue), and
the province board by loading each district's items one query at a time (the N+1 shape). The
peer is timed without rendering a page or any HTTP, which favours it. Ratios are
peer ÷ tidtam (higher is better for tidtam). A province's board and its peer are timed in turns,
request by request, so both meet the same load from the rest of the machine; "CPU ms" is the
process's CPU time per request or per peer call (all threads), steadier than the wall time on a
shared machine.

On PostgreSQL the dataset is ANALYZEd once built, as autovacuum would soon do on a running server
(this machine's runs with autovacuum off: without it the planner takes the fresh tables for empty).

The last lines are one verdict per page and database: the goal met, or not and why (the p95 over
the goal, or slower than the peer: a province's board must be both ≤ 20 ms p95 and faster than
its peer).

    .venv/bin/python -m bench.p4_board [--db sqlite|postgresql|both] [--repeat 60]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import and_, func
from sqlmodel import Session, select

from bench._common import machine, print_table
from bench._national import DEMO_AS_OF as AS_OF
from bench._national import demo_dataset, scratch_database
from domain.rates import Rate
from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem, directives_of
from models.org import all_provinces, districts_of
from tidtam.app.boards import Board, BoardCell, BoardRow, is_overdue
from tidtam.app.national import NationalBoard, NationalRow, build_national_board
from tidtam.demo.province import DEMO_PASSWORD
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from web.app import create_app, freeze_startup_heap

BANGKOK = ZoneInfo("Asia/Bangkok")
TODAY = AS_OF.astimezone(BANGKOK).date()
GOALS_MS = {"national": 150.0, "province": 20.0}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Samples(list):
    """Milliseconds of wall time per call, and ``cpu``: the process's CPU milliseconds per call
    (every thread: the app runs in the test client's portal thread), which a machine busy with
    other work stretches far less than the wall time."""

    cpu: float = 0.0


async def timed(call: Callable[[], object], repeat: int) -> Samples:
    """Milliseconds of each call after two warm-up calls (templates compiled, caches filled)."""
    return (await timed_pair(call, None, repeat))[0]


async def _call(fn: Callable[[], object]) -> None:
    """A plain call (the peer), or a request to the app awaited on this event loop."""
    result = fn()
    if inspect.isawaitable(result):
        await result


async def timed_pair(call: Callable[[], object], other: Callable[[], object] | None,
                     repeat: int) -> tuple[Samples, Samples]:
    """``call`` and ``other`` timed in turns, so that both meet the same load from the rest of
    the machine (a ratio between them then means something on a busy machine)."""
    for _ in range(2):
        await _call(call)
        if other is not None:
            await _call(other)
    samples, others = Samples(), Samples()
    for _ in range(repeat):
        for fn, into in ((call, samples), (other, others)):
            if fn is None:
                continue
            cpu, started = time.process_time(), time.perf_counter()
            await _call(fn)
            into.append((time.perf_counter() - started) * 1000)
            into.cpu += (time.process_time() - cpu) * 1000
    for into in (samples, others):
        into.cpu /= max(1, len(into))
    return samples, others


def signed_in(app, username: str, stack: ExitStack) -> TestClient:
    """A TestClient signed in as ``username``, open until ``stack`` closes: one portal (thread
    and event loop) for all its requests."""
    client = stack.enter_context(TestClient(app))
    token = client.cookies.get("csrftoken") or _token(client)
    answer = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                         "csrftoken": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def _token(client: TestClient) -> str:
    import re

    html = client.get("/login").text
    return re.search(r'name="csrftoken" value="([^"]+)"', html).group(1)


class Browser:
    """A signed-in browser that sends its GETs straight to the ASGI app, on the event loop that
    runs the whole timing (a server's one loop: anyio's worker threads live as long as it): the
    scope a server would build (the cookies this browser holds, a Host, a client address), the
    app called with it, the answer's status, headers and whole body collected, and the cookies
    it sets kept for the next request. No HTTP client, no thread hop to a portal: what the app
    does and nothing else is timed."""

    def __init__(self, app, cookies: dict[str, str]) -> None:
        self.app, self.cookies = app, dict(cookies)

    async def get(self, target: str) -> tuple[int, dict[bytes, bytes], bytes]:
        path, _, query = target.partition("?")
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
                 "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
                 "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
                 "headers": [(b"host", b"testserver"), (b"user-agent", b"bench-p4"),
                             (b"accept", b"text/html"), (b"cookie", cookie.encode())],
                 "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "extensions": {}}
        sent, answered = False, asyncio.Event()
        status, headers, body = 0, [], []

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(message.get("headers", []))
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        await self.app(scope, receive, send)
        for name, value in headers:
            if name.lower() == b"set-cookie":
                pair, _, attributes = value.decode("latin-1").partition(";")
                key, _, kept = pair.strip().partition("=")
                if not kept or "max-age=0" in attributes.lower():
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = kept
        return status, dict(headers), b"".join(body)


def board_of(client: TestClient, old_link: str) -> str:
    """Where an old link (``/board``, ``/provinces/{code}``) sends this person: the board page."""
    answer = client.get(old_link, follow_redirects=False)
    assert answer.status_code in (302, 303, 307), (old_link, answer.status_code)
    return answer.headers["location"]


def page(browser: Browser, path: str) -> Callable[[], object]:
    """One GET of ``path`` by ``browser``, followed when it is a redirect (the old links)."""
    async def get() -> None:
        status, headers, body = await browser.get(path)
        if status in (302, 303, 307):
            status, headers, body = await browser.get(headers[b"location"].decode())
        assert status == 200 and body, (path, status)
    return get


# --- the peer: the same pages, written the way a tutorial dashboard is --------------------------

def naive_national(engine) -> Callable[[], object]:
    """One COUNT per province × step × measure."""
    def run() -> NationalBoard:
        with Session(engine) as session:
            national = session.exec(select(Directive).where(
                Directive.province_code.is_(None))).first()
            steps = list(session.exec(select(DirectiveStep).where(
                DirectiveStep.directive_id == national.id).order_by(DirectiveStep.order)))
            rows = []
            for province in all_provinces(session):
                copy = session.exec(select(Directive).where(
                    Directive.parent_id == national.id,
                    Directive.province_code == province.code)).first()
                if copy is None:
                    continue
                cells = {}
                for step in steps:
                    base = (select(func.count()).select_from(TrackedItem)
                            .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
                            .where(TrackedItem.directive_id == copy.id,
                                   DirectiveStep.code == step.code))
                    done = TrackedItem.status != ItemStatus.OPEN
                    cutoff = datetime.combine(step.due_on + timedelta(days=1), datetime.min.time(),
                                              BANGKOK).astimezone(UTC)
                    cells[step.code] = Rate(
                        session.exec(base).one(), session.exec(base.where(done)).one(),
                        session.exec(base.where(and_(done, TrackedItem.completed_at < cutoff))).one(),
                        session.exec(base.where(TrackedItem.status == ItemStatus.OPEN)).one()
                        if step.due_on < TODAY else 0)
                rows.append(NationalRow(province, copy.id, cells, None, Rate(1, 0, 0, 0)))
            return NationalBoard(national, steps, rows, TODAY)
    return run


def naive_province(engine, province: str) -> Callable[[], object]:
    """The districts, then each district's items and each item's step, one query at a time."""
    def run() -> Board:
        with Session(engine) as session:
            directive = directives_of(session, province)[0]
            rows = []
            for district in districts_of(session, province):
                items = session.exec(select(TrackedItem).where(
                    TrackedItem.directive_id == directive.id,
                    TrackedItem.district_code == district.code))
                cells = [BoardCell(item, session.get(DirectiveStep, item.step_id),
                                   is_overdue(item, TODAY)) for item in items]
                rows.append(BoardRow(district, sorted(cells, key=lambda c: c.step.order)))
            steps = sorted({c.step.id: c.step for r in rows for c in r.cells}.values(),
                           key=lambda s: s.order)
            return Board(directive, steps, rows, TODAY)
    return run


# --- the run ------------------------------------------------------------------------------------

def measure(kind: str, folder: Path, repeat: int) -> list[list[object]]:
    with scratch_database(kind, folder) as url, ExitStack() as stack:
        engine, _ = demo_dataset(kind, url)
        if kind == "postgresql":
            # The planner's statistics, as autovacuum gathers them on a running server soon
            # after a load (this machine's server runs with autovacuum off, so a fresh dataset
            # would be planned as if its tables were empty: nested loops over 10,000 rows).
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        settings = Settings(_env_file=None, demo=True, data_dir=folder / kind,
                            database_url=url)
        app = create_app(settings, engine, clock=FixedClock(AS_OF))
        freeze_startup_heap()  # as `tidtam serve` and `tidtam web` do before serving
        department = signed_in(app, "department", stack)
        coordinator = signed_in(app, "coordinator-50", stack)
        check = build_national_board(Session(engine), _national(engine), TODAY, BANGKOK)
        assert len(check.rows) == 76
        boards = {"Chiang Mai": (coordinator, "/board", "50"),
                  "Sa Kaeo": (department, "/provinces/27", "27")}
        paths = {name: board_of(client, old_link) for name, (client, old_link, _) in boards.items()}
        figures, peers = asyncio.run(timings(app, engine, kind, department, boards, paths, repeat))
        load = os.getloadavg()[0]  # the last minute's, as the timings end
        rows = []
        for name, samples in figures.items():
            goal = GOALS_MS["national" if name == "national" else "province"]
            p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
            informative = " via " in name
            peer = peers[name.split(" via ")[0]]
            rows.append([kind, name, f"{p50:.1f}", f"{p95:.1f}", f"{statistics.median(peer):.1f}",
                         f"{percentile(peer, 0.95):.1f}",
                         f"{statistics.median(peer) / p50:.1f}×",
                         f"{samples.cpu:.1f}", f"{peer.cpu:.1f}",
                         "—" if informative else f"≤ {goal:.0f}",
                         "—" if informative else "yes" if p95 <= goal else "NO",
                         verdict(kind, name, p95, goal, statistics.median(peer) / p50,
                                 samples, peer, load)])
        engine.dispose()
        return rows


async def timings(app, engine, kind: str, department: TestClient, boards: dict,
                  paths: dict[str, str], repeat: int) -> tuple[dict, dict]:
    """Every figure, on one event loop: the national board, each province's board and its peer
    in turns, the old links."""
    browsers = {client: Browser(app, dict(client.cookies))
                for client in {department, *(client for client, _, _ in boards.values())}}
    floor = await timed(page(browsers[department], "/healthz"), repeat)
    print(f"[{kind}] the app's floor, GET /healthz through the same middleware: p50 "
          f"{percentile(floor, 0.5):.2f} ms, p95 {percentile(floor, 0.95):.2f} ms")
    figures = {"national": await timed(page(browsers[department], "/national"), repeat)}
    peers = {"national": await timed(naive_national(engine), max(5, repeat // 6))}
    for name, (client, _, code) in boards.items():
        figures[name], peers[name] = await timed_pair(
            page(browsers[client], paths[name]), naive_province(engine, code), repeat * 3)
    for name, (client, old_link, _) in boards.items():
        figures[f"{name} via {old_link}"] = await timed(page(browsers[client], old_link),
                                                        repeat * 3)
    return figures, peers


def verdict(kind: str, page: str, p95: float, goal: float, ratio: float, samples: Samples,
            peer: Samples, load: float) -> str:
    """One plain line: the page's goal met, or not and why (the "via" links have no goal). A p95
    over the goal says how busy the machine was, and whether the tail was tidtam's own: the CPU
    per request, and how far the peer's own p95 rose over its p50 in the same turns."""
    where = f"{'SQLite' if kind == 'sqlite' else 'PostgreSQL'}, {page}"
    if " via " in page:
        return f"{where}: for information (no goal)"
    why = []
    if p95 > goal:
        cpus = os.cpu_count() or 1
        why.append(f"p95 {p95:.1f} ms > {goal:.0f} ms (p50 {percentile(samples, 0.5):.1f} ms, "
                   f"CPU {samples.cpu:.1f} ms a request; load average {load:.1f} on {cpus} "
                   f"CPUs{'' if load < cpus else ', busy'}; the peer's p95 "
                   f"{percentile(peer, 0.95) / statistics.median(peer):.1f}× its p50)")
    if page != "national" and ratio <= 1.0:  # a province's board: faster than its peer too
        why.append(f"not faster than the peer ({ratio:.2f}× its p50)")
    if why:
        return f"{where}: goal NOT met — " + "; ".join(why)
    return (f"{where}: goal met — p95 {p95:.1f} ms ≤ {goal:.0f} ms, "
            f"the peer's p50 {ratio:.1f}× tidtam's")


def _national(engine) -> Directive:
    with Session(engine) as session:
        return session.exec(select(Directive).where(Directive.province_code.is_(None))).one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args()
    print(f"P4 — board render, national dataset; {machine()}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
            rows += measure(kind, Path(folder), args.repeat)
    print_table(["db", "page", "p50 ms", "p95 ms", "peer p50", "peer p95", "peer ÷ tidtam",
                 "CPU ms", "peer CPU ms", "goal p95 ms", "met"], [row[:-1] for row in rows])
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for row in rows:
        print("verdict:", row[-1])


if __name__ == "__main__":
    main()
