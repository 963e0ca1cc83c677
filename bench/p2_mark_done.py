"""P2: marking a step done over HTTP at 32 connections — tidtam against a bare Starlette endpoint
doing the same one-row UPDATE, and against resuming a paused Prefect flow run per step.

The data: the national dataset (bench._national: 878 districts, 10,536 items, all open), on
SQLite and on PostgreSQL. Each request marks a different open item, picked at random among the
9,658 that a click may complete (the 878 report steps are completed by the report form only), and
signed in as that item's provincial coordinator. Every server runs under uvicorn in its own
process; the load comes from aiohttp in this one (32 keep-alive connections, 32 tasks).

- tidtam, form route: ``POST /items/{id}/done`` with the session cookie and the CSRF token
  (cookie and form field), ``version`` as read; ``mark_done`` checks the user's province, the
  version and the status, cancels queued messages and writes the audit row; 303 back.
- tidtam, JSON API: ``POST /api/v1/items/{id}/done`` with a bearer token from ``/api/v1/token``;
  the same ``mark_done``, then the item is read back with its history (200 + JSON).
- bare Starlette (peer): the form parsed, then ``UPDATE tracked_item … WHERE id AND version AND
  status = 'open'`` (SQLAlchemy Core, the same engine settings) in the thread pool; no user, no
  audit. Its ``/ping`` (no database) is what uvicorn and the client allow on this machine.
- Prefect (peer, once per run): a real local ``prefect server start``; one flow run per district
  (8 at once by default), each pausing before every step (``pause_flow_run(poll_interval=1)``)
  and doing the same UPDATE once resumed; this process resumes each run as soon as it is paused
  (``resume_flow_run``). Per step: from the resume call to the step's row written.

    .venv/bin/python -m bench.p2_mark_done                      # SQLite, PostgreSQL, Prefect
    .venv/bin/python -m bench.p2_mark_done --database sqlite --skip-prefect
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench._common import ROOT, machine, print_table

CONCURRENCY = 32
DB_ENV = "BENCH_P2_DATABASE_URL"
FORM = "application/x-www-form-urlencoded"


# --- The servers: uvicorn factories, each run in its own process --------------------------------

def tidtam_app():
    """The real app (pages, API, sessions, CSRF), configured from TIDTAM_* like `tidtam serve`."""
    from tidtam.infra.settings import get_settings
    from web.app import create_app

    return create_app(get_settings())


def bare_app():
    """The peer: Starlette, no user, no audit; the same one-row UPDATE on the same database."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tidtam.infra.db import engine_for

    engine = engine_for(os.environ[DB_ENV])
    one_writer = threading.Lock()

    def serialized(*args) -> bool:
        with one_writer:
            return mark_item(*args)

    async def done(request: Request) -> Response:
        form = await request.form()
        write = serialized if request.url.path.endswith("/done-serialized") else mark_item
        marked = await run_in_threadpool(write, engine, request.path_params["item_id"],
                                         int(str(form["version"])))
        return Response(status_code=303 if marked else 409, headers={"location": "/"})

    async def ping(request: Request) -> Response:
        await request.body()
        return Response(b"ok")

    return Starlette(routes=[Route("/items/{item_id:int}/done", done, methods=["POST"]),
                             Route("/items/{item_id:int}/done-serialized", done, methods=["POST"]),
                             Route("/ping", ping, methods=["GET", "POST"])])


def mark_item(engine, item_id: int, version: int | None = None) -> bool:
    """The one-row UPDATE of the peers: open → done, version bumped, when still as read."""
    from sqlalchemy import update

    from models.directive import ItemStatus, TrackedItem

    query = update(TrackedItem).where(TrackedItem.id == item_id,
                                      TrackedItem.status == ItemStatus.OPEN)
    if version is not None:
        query = query.where(TrackedItem.version == version)
    with engine.begin() as conn:
        result = conn.execute(query.values(status=ItemStatus.DONE, completed_at=datetime.now(UTC),
                                           version=TrackedItem.version + 1))
    return result.rowcount == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(factory: str, env: dict[str, str], ready: str, access_log: bool) -> Iterator[Server]:
    """``uvicorn --factory bench.p2_mark_done:<factory>`` in a child process for the block."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "--factory", f"bench.p2_mark_done:{factory}",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = {**os.environ, **env, "TIDTAM_BASE_URL": f"http://127.0.0.1:{port}"}
    profile = PY_SPY.get("dir") if factory == "tidtam_app" else None
    if profile:  # --py-spy: the server under py-spy (its CPU figures then include py-spy's)
        out = Path(profile) / f"{factory}-{env.get('TIDTAM_DATABASE_URL', '')[:6]}-{port}.txt"
        args = [str(Path(sys.executable).with_name("py-spy")), "record", "--gil", "--format", "raw",
                "--rate", "250", "--output", str(out), "--", *args]
    process = subprocess.Popen([*args, *([] if access_log else ["--no-access-log"])], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL if access_log else None)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_answering(base_url + ready, process)
        yield Server(base_url, process)
    finally:
        if profile:
            process.send_signal(signal.SIGINT)  # py-spy writes its profile and stops the server
            process.wait(timeout=60)
        else:
            process.terminate()
            process.wait(timeout=15)


PY_SPY: dict[str, str] = {}  # {"dir": …} with --py-spy


def wait_answering(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer (exit code {process.poll()})")


# --- The data ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    id: int
    version: int
    province: str
    district: str
    order: int


def markable_items(engine) -> list[Item]:
    """Every open item a click may complete (not a report step), with its version and place."""
    from sqlmodel import Session, select

    from models.directive import DirectiveStep, ItemStatus, StepKind, TrackedItem
    from models.org import District

    query = (select(TrackedItem.id, TrackedItem.version, District.province_code, District.code,
                    DirectiveStep.order)
             .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
             .join(District, District.code == TrackedItem.district_code)
             .where(TrackedItem.status == ItemStatus.OPEN, DirectiveStep.kind != StepKind.REPORT)
             .order_by(TrackedItem.id))
    with Session(engine) as session:
        return [Item(*row) for row in session.exec(query)]


def as_now(engine, items: list[Item]) -> list[Item]:
    """The same items with their current versions (each variant bumps them)."""
    from sqlmodel import Session, col, select

    from models.directive import TrackedItem

    ids = [i.id for i in items]
    with Session(engine) as session:
        versions = dict(session.exec(select(TrackedItem.id, TrackedItem.version)
                                     .where(col(TrackedItem.id).in_(ids))).all())
    return [replace(i, version=versions[i.id]) for i in items]


def reopen_all(engine) -> None:
    """Put every completed item back to open (versions stay bumped), between variants."""
    from sqlalchemy import update

    from models.directive import ItemStatus, TrackedItem

    with engine.begin() as conn:
        conn.execute(update(TrackedItem).where(TrackedItem.status == ItemStatus.DONE)
                     .values(status=ItemStatus.OPEN, completed_at=None, completed_by_id=None,
                             note=None))


def counts(engine) -> tuple[int, int]:
    """(items done, item.done audit rows): what the requests must have written."""
    from sqlmodel import Session, func, select

    from models.audit import AuditEntry
    from models.directive import ItemStatus, TrackedItem

    with Session(engine) as session:
        done = session.exec(select(func.count()).select_from(TrackedItem)
                            .where(TrackedItem.status == ItemStatus.DONE)).one()
        audited = session.exec(select(func.count()).select_from(AuditEntry)
                               .where(AuditEntry.action == "item.done")).one()
    return done, audited


# --- Signing in (not timed) -------------------------------------------------------------------

@dataclass(frozen=True)
class Browser:
    cookie: str
    csrftoken: str


def sign_in(base_url: str, username: str, password: str) -> Browser:
    """The login form as a browser fills it: GET for the CSRF cookie, POST, keep the session."""
    with httpx.Client(base_url=base_url) as client:
        client.get("/login").raise_for_status()
        token = client.cookies["csrftoken"]
        answer = client.post("/login", data={"username": username, "password": password,
                                             "csrftoken": token})
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in as {username} answered {answer.status_code}")
        # Signing in rotates the session's CSRF seed (web.csrf_binding): the token before it
        # no longer matches; the answer sets the new one.
        token = client.cookies["csrftoken"]
        return Browser(f"csrftoken={token}; tidtam_session={client.cookies['tidtam_session']}",
                       token)


def api_token(base_url: str, username: str, password: str) -> str:
    answer = httpx.post(base_url + "/api/v1/token",
                        data={"username": username, "password": password})
    answer.raise_for_status()
    return answer.json()["access_token"]


# --- The load ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    path: str
    body: bytes
    headers: dict[str, str]


def form_calls(items: list[Item], browsers: dict[str, Browser]) -> list[Call]:
    return [Call(f"/items/{i.id}/done",
                 f"csrftoken={browsers[i.province].csrftoken}&version={i.version}".encode(),
                 {"cookie": browsers[i.province].cookie, "content-type": FORM}) for i in items]


def api_calls(items: list[Item], tokens: dict[str, str]) -> list[Call]:
    return [Call(f"/api/v1/items/{i.id}/done", f'{{"version": {i.version}}}'.encode(),
                 {"authorization": f"Bearer {tokens[i.province]}",
                  "content-type": "application/json"}) for i in items]


def bare_calls(items: list[Item], route: str = "done") -> list[Call]:
    return [Call(f"/items/{i.id}/{route}", f"version={i.version}".encode(),
                 {"content-type": FORM}) for i in items]


def ping_calls(count: int) -> list[Call]:
    return [Call("/ping", b"version=1", {"content-type": FORM})] * count


@dataclass
class Run:
    label: str
    seconds: float
    latencies: list[float]
    statuses: Counter
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, p: int) -> float:
        """The p-th percentile latency in ms."""
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


async def _drive(base_url: str, warmup: list[Call], calls: list[Call], concurrency: int,
                 seconds: float) -> tuple[float, list[float], Counter]:
    """aiohttp, ``concurrency`` tasks on as many keep-alive connections; stops handing out calls
    after ``seconds`` (the calls in flight finish and count)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        latencies: list[float] = []
        statuses: Counter = Counter()

        async def worker(queue: Iterator[Call], record: bool, until: float) -> None:
            for call in queue:  # one iterator shared by the tasks: each call is sent once
                start = time.perf_counter()
                if start > until:
                    return
                async with http.post(call.path, data=call.body, headers=call.headers,
                                     allow_redirects=False) as answer:
                    await answer.read()
                if record:
                    latencies.append(time.perf_counter() - start)
                    statuses[answer.status] += 1

        for queue, record in ((iter(warmup), False), (iter(calls), True)):
            began = time.perf_counter()
            await asyncio.gather(*(worker(queue, record, began + seconds)
                                   for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, statuses


def load(label: str, target: Server, calls: list[Call], opts: Options) -> Run:
    """``opts.warmup`` calls untimed, then the rest timed (at most ``opts.seconds``)."""
    cpu_before, own_before = target.cpu_seconds(), _own_cpu()
    seconds, latencies, statuses = asyncio.run(_drive(
        target.base_url, calls[:opts.warmup], calls[opts.warmup:], opts.concurrency, opts.seconds))
    return Run(label, seconds, latencies, statuses,
               server_cpu=target.cpu_seconds() - cpu_before, client_cpu=_own_cpu() - own_before)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- One database -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    requests: int
    seconds: float
    warmup: int
    concurrency: int
    seed: int
    access_log: bool


def on_database(kind: str, folder: Path, opts: Options, prefect: PrefectOptions | None
                ) -> tuple[list[Run], Run | None]:
    """Build the national dataset, run the peer and tidtam's two routes on it (and Prefect)."""
    from bench._national import national_dataset, scratch_database

    with scratch_database(kind, folder) as url:
        began = time.perf_counter()
        data = national_dataset(url)
        print(f"[{kind}] national dataset: {data.districts} districts, {data.items} items, "
              f"{data.people} people ({time.perf_counter() - began:.1f} s)", flush=True)
        items = pick(data.engine, opts.warmup + opts.requests, opts.seed)
        runs = bare_side(kind, url, data.engine, items, opts)
        runs += tidtam_side(kind, folder, url, data.engine, items, opts)
        report(kind, runs)
        flows = None
        if prefect:
            try:
                flows = prefect_peer(folder, url, data.engine, prefect)
            except RuntimeError as error:
                print(f"[prefect] failed: {error}", flush=True)
        data.engine.dispose()
    return runs, flows


def bare_side(kind: str, url: str, engine, items: list[Item], opts: Options) -> list[Run]:
    runs = []
    with server("bare_app", {DB_ENV: url}, "/ping", opts.access_log) as bare:
        runs.append(load("HTTP floor: bare Starlette /ping, no database", bare,
                         ping_calls(len(items)), opts))
        routes = [("done", "bare Starlette: form parsed, one-row UPDATE in the thread pool")]
        if kind == "sqlite":  # SQLite has one writer: waiting on a lock beats its busy-wait
            routes.append(("done-serialized", "bare Starlette: the same, writes behind one lock"))
        for route, label in routes:
            calls = bare_calls(as_now(engine, items), route)
            runs.append(checked(engine, load(label, bare, calls, opts)))
            reopen_all(engine)
    peer = max(runs[1:], key=lambda r: r.rate)
    peer.label += " (peer)"
    return runs


def tidtam_side(kind: str, folder: Path, url: str, engine, items: list[Item],
                opts: Options) -> list[Run]:
    from bench._national import PASSWORD, coordinator

    env = {"TIDTAM_DATABASE_URL": url, "TIDTAM_DATA_DIR": str(folder / "var"),
           "TIDTAM_SECRET_KEY": secrets.token_urlsafe(32)}
    with server("tidtam_app", env, "/healthz", opts.access_log) as app, \
            ThreadPoolExecutor(4) as pool:
        began = time.perf_counter()
        provinces = sorted({i.province for i in items})
        users = [coordinator(p) for p in provinces]
        browsers = dict(zip(provinces, pool.map(
            lambda u: sign_in(app.base_url, u, PASSWORD), users), strict=True))
        tokens = dict(zip(provinces, pool.map(
            lambda u: api_token(app.base_url, u, PASSWORD), users), strict=True))
        print(f"[{kind}] {len(provinces)} provincial coordinators signed in, on the form and the "
              f"API ({time.perf_counter() - began:.1f} s of argon2)", flush=True)
        form = checked(engine, load(
            "tidtam form route: session + CSRF, mark_done + audit, 303", app,
            form_calls(as_now(engine, items), browsers), opts), audited=True)
        reopen_all(engine)
        api = checked(engine, load(
            "tidtam JSON API: bearer token, mark_done + audit, item read back", app,
            api_calls(as_now(engine, items), tokens), opts), audited=True)
        reopen_all(engine)
    return [form, api]


def pick(engine, count: int, seed: int) -> list[Item]:
    """``count`` different open items in random order, from as few provinces as hold them (each
    province's coordinator signs in once, and argon2 takes ~0.6 s a sign-in here)."""
    rng = random.Random(seed)
    by_province: dict[str, list[Item]] = {}
    for item in markable_items(engine):
        by_province.setdefault(item.province, []).append(item)
    chosen: list[Item] = []
    for province in rng.sample(sorted(by_province), len(by_province)):
        if len(chosen) >= count:
            break
        chosen += by_province[province]
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} markable items: lower --requests/--warmup")
    return rng.sample(chosen, count)


_audit_seen: dict[int, int] = {}


def checked(engine, run: Run, *, audited: bool = False) -> Run:
    """Note what the database holds after the run: items done, audit rows this run wrote."""
    done, audit_rows = counts(engine)
    written = audit_rows - _audit_seen.get(id(engine), 0)
    _audit_seen[id(engine)] = audit_rows
    run.notes.append(f"{done} rows done" + (f", {written} audit rows" if audited else ""))
    return run


def district_items(engine) -> list[list[int]]:
    """Every district's markable items in step order (what one Prefect flow run walks through)."""
    by_district: dict[str, list[Item]] = {}
    for item in markable_items(engine):
        by_district.setdefault(item.district, []).append(item)
    return [[i.id for i in sorted(items, key=lambda i: i.order)]
            for _, items in sorted(by_district.items())]


# --- The Prefect peer -------------------------------------------------------------------------

@dataclass(frozen=True)
class PrefectOptions:
    flows: int
    poll_interval: float


def prefect_peer(folder: Path, url: str, engine, opts: PrefectOptions) -> Run:
    """Human-in-the-loop the Prefect way: paused flow runs, resumed one step at a time."""
    import multiprocessing

    from tidtam.ops.prefect_server import LOCAL_API, server_env, wait_healthy

    port = free_port()
    api_url = LOCAL_API.format(port=port)
    prefect = str(Path(sys.executable).with_name("prefect"))
    log_path = folder / "prefect-server.log"
    began = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env(folder / "prefect", port), stdout=log, stderr=subprocess.STDOUT,
            cwd=folder, start_new_session=True)
    try:
        districts = district_items(engine)[:opts.flows]
        if not wait_healthy(api_url, is_alive=lambda: process.poll() is None):
            raise RuntimeError(f"the Prefect server did not start; see {log_path}")
        print(f"[prefect] server healthy after {time.perf_counter() - began:.1f} s; "
              f"{len(districts)} flow runs × {len(districts[0])} steps", flush=True)
        spawn = multiprocessing.get_context("spawn")
        events = spawn.Queue()
        host = spawn.Process(target=_prefect_host,
                             args=(api_url, url, districts, opts.poll_interval, events))
        host.start()
        try:
            run = asyncio.run(_resume_steps(api_url, events, sum(map(len, districts))))
        finally:
            host.join(timeout=30)
            if host.is_alive():
                host.terminate()
        run.notes.append(f"{len(districts)} flow runs at once, "
                         f"pause_flow_run(poll_interval={opts.poll_interval:g})")
        return run
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _prefect_host(api_url: str, db_url: str, districts: list[list[int]], poll_interval: float,
                  events) -> None:
    """In its own process: one flow run per district, each in a thread, pausing before each step."""
    os.environ.update(PREFECT_API_URL=api_url, PREFECT_LOGGING_LEVEL="WARNING")
    from prefect import flow
    from prefect.flow_runs import pause_flow_run
    from prefect.runtime import flow_run

    from tidtam.infra.db import engine_for

    engine = engine_for(db_url)

    @flow(name="p2-district-steps", persist_result=False)
    def district_steps(item_ids: list[int]) -> int:
        run_id = str(flow_run.id)
        events.put(("run", run_id))
        for step, item_id in enumerate(item_ids):
            pause_flow_run(timeout=600, poll_interval=poll_interval)
            mark_item(engine, item_id)
            events.put(("done", run_id, step, time.time()))
        return len(item_ids)

    threads = [threading.Thread(target=district_steps, args=(ids,)) for ids in districts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


async def _resume_steps(api_url: str, events, steps: int, timeout: float = 90) -> Run:
    """Resume every run as soon as it is paused again; per step, resume call → row written."""
    from prefect.client.orchestration import PrefectClient

    resumed: dict[tuple[str, int], float] = {}
    done: dict[tuple[str, int], float] = {}
    issued: Counter = Counter()
    finished: Counter = Counter()
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    async with PrefectClient(api_url) as client:
        while len(done) < steps and time.monotonic() < deadline:
            for event in _drain(events):
                if event[0] == "run":
                    ids.append(event[1])
                else:
                    done[(event[1], event[2])] = event[3]
                    finished[event[1]] += 1
            ready = [r for r in await _read_runs(client, ids)
                     if r.state and r.state.is_paused() and finished[str(r.id)] == issued[str(r.id)]]
            for run in ready:
                resumed[(str(run.id), issued[str(run.id)])] = time.time()
                issued[str(run.id)] += 1
            await asyncio.gather(*(client.resume_flow_run(r.id) for r in ready))
            await asyncio.sleep(0.02)
    if not done:
        raise RuntimeError(f"no step done in {timeout:.0f} s")
    latencies = [done[key] - resumed[key] for key in done]
    seconds = max(done.values()) - min(resumed.values())
    run = Run("Prefect: resume_flow_run → the step's UPDATE (peer)", seconds, latencies,
              Counter({"steps": len(done)}))
    if len(done) < steps:
        run.notes.append(f"stopped after {timeout:.0f} s with {len(done)} of {steps} steps done")
    return run


def _drain(events) -> list[tuple]:
    import queue

    drained = []
    while True:
        try:
            drained.append(events.get_nowait())
        except queue.Empty:
            return drained


async def _read_runs(client, ids: list[str]) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    if not ids:
        return []
    return await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))


# --- Report -----------------------------------------------------------------------------------

def report(kind: str, runs: list[Run]) -> None:
    peer = next(r for r in runs if r.label.endswith("(peer)"))
    print(f"\n{kind}, {runs[0].statuses.total()} pings, then up to "
          f"{len(runs[1].latencies)} marks per variant (each a different item)")
    print_table(
        ["variant", "req/s", "p50 ms", "p95 ms", "p99 ms", "server CPU ms/req",
         "client CPU ms/req", "answers", "x peer"],
        [[r.label, f"{r.rate:.0f}", f"{r.pct(50):.1f}", f"{r.pct(95):.1f}", f"{r.pct(99):.1f}",
          f"{r.server_cpu / len(r.latencies) * 1000:.2f}",
          f"{r.client_cpu / len(r.latencies) * 1000:.2f}",
          " ".join(f"{s}×{n}" for s, n in sorted(r.statuses.items())) + (
              "; " + "; ".join(r.notes) if r.notes else ""),
          f"{r.rate / peer.rate:.2f}x"] for r in runs])
    for r in runs:
        if r.label.startswith("tidtam"):
            print(verdict(kind, r, peer))


def verdict(kind: str, run: Run, peer: Run) -> str:
    """Issue 17's goal for one route on one database, in one plain line: at least half the
    peer's req/s, at most twice its server CPU a request and its p99; which ratio misses."""
    ratio, p99 = run.rate / peer.rate, run.pct(99) / peer.pct(99)
    cpu = (run.server_cpu / len(run.latencies)) / (peer.server_cpu / len(peer.latencies))
    checks = [(f"req/s {ratio:.2f}x", ratio >= 0.5, "≥ 0.5x"), (f"CPU {cpu:.2f}x", cpu <= 2, "≤ 2x"),
              (f"p99 {p99:.2f}x", p99 <= 2, "≤ 2x")]
    missed = [f"{name} (goal {goal})" for name, ok, goal in checks if not ok]
    route = run.label.split(":")[0].removeprefix("tidtam ")
    shown = ", ".join(name for name, _, _ in checks)
    if not missed:
        return f"VERDICT {kind}, {route}: goal met ({shown})"
    return f"VERDICT {kind}, {route}: goal NOT met — missed: {'; '.join(missed)} ({shown})"


def report_prefect(run: Run, tidtam: list[tuple[str, Run]]) -> None:
    print(f"\nPrefect peer: {len(run.latencies)} steps in {run.seconds:.1f} s; "
          f"{'; '.join(run.notes)}")
    rows = [[run.label, f"{run.rate:.1f}", f"{run.pct(50):.0f}", f"{run.pct(95):.0f}",
             f"{run.pct(99):.0f}", "1.0x", "1.0x"]]
    for kind, r in tidtam:
        rows.append([f"{kind}: {r.label}", f"{r.rate:.0f}", f"{r.pct(50):.1f}",
                     f"{r.pct(95):.1f}", f"{r.pct(99):.1f}", f"{r.rate / run.rate:.0f}x",
                     f"{run.pct(50) / r.pct(50):.0f}x"])
    print_table(["variant", "steps/s", "p50 ms", "p95 ms", "p99 ms", "x Prefect steps/s",
                 "x Prefect p50 (faster)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=2500,
                        help="timed requests per variant at most (each marks its own item)")
    parser.add_argument("--seconds", type=float, default=8,
                        help="timed seconds per variant at most")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests first")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--seed", type=int, default=2567)
    parser.add_argument("--access-log", action="store_true",
                        help="uvicorn's access log on (as `tidtam serve` has it), both servers")
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--prefect-flows", type=int, default=8,
                        help="paused flow runs at once (one per district)")
    parser.add_argument("--prefect-poll-interval", type=float, default=1,
                        help="pause_flow_run's poll_interval in s (Prefect's default is 10)")
    parser.add_argument("--py-spy", metavar="DIR",
                        help="record tidtam's server with py-spy (raw stacks in DIR); for where "
                             "the time goes, not for the figures")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.py_spy:
        PY_SPY["dir"] = args.py_spy
    opts = Options(args.requests, args.seconds, args.warmup, args.concurrency, args.seed,
                   args.access_log)
    prefect = None if args.skip_prefect else PrefectOptions(args.prefect_flows,
                                                            args.prefect_poll_interval)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    print(f"P2 — mark a step done, {opts.concurrency} connections, national dataset; {machine()}")
    ours: list[tuple[str, Run]] = []
    flows = None
    with tempfile.TemporaryDirectory() as tmp:
        for n, kind in enumerate(kinds):
            (Path(tmp) / kind).mkdir()
            runs, prefect_run = on_database(kind, Path(tmp) / kind, opts,
                                            prefect if n == len(kinds) - 1 else None)
            ours += [(kind, r) for r in runs if r.label.startswith("tidtam")]
            flows = prefect_run or flows
    if flows:
        report_prefect(flows, ours)


if __name__ == "__main__":
    main()
