"""P5: `tidtam serve` — resident memory of the web process and of the Prefect server, and the
seconds from start to the first signed-in board page; against a bare `prefect server start` and a
minimal Starlette app started the same way, in the same run.

The data: the national dataset (bench._national) in the data folder's SQLite file (or a scratch
PostgreSQL database with ``--database postgresql``). ``tidtam serve`` runs as a user would start it
(not in demo mode, a real ``TIDTAM_SECRET_KEY``, so no LINE stand-in): it starts ``prefect server
start`` and the deployments process (which waits for Prefect by itself), and serves the web app
at once, in its own process.

Timed from ``Popen`` to: the Prefect server's ``/api/health`` answering, the web app's ``/healthz``,
and the first page — ``GET /login``, ``POST /login`` (argon2, about 0.6 s here) as the coordinator
of the province with the most districts, then ``GET /board`` answering 200 (that province's
board). RSS (``VmRSS``) of each process tree right after the first page and again after
``--pages`` more board pages. The peers: ``prefect server start`` alone (a fresh PREFECT_HOME) to
``/api/health``, and a 3-route Starlette app under uvicorn to its first 200. A second ``tidtam
serve`` against the already running peer server (``PREFECT_API_URL``) shows the web side alone.

    .venv/bin/python -m bench.p5_serve
    .venv/bin/python -m bench.p5_serve --database postgresql --pages 50
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench._common import ROOT, machine, print_table

MINIMAL_APP = '''
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

async def page(request):
    return HTMLResponse("<h1>board</h1>")

async def health(request):
    return JSONResponse({"ok": True})

app = Starlette(routes=[Route("/", page), Route("/board", page), Route("/healthz", health)])
'''


# --- Processes and their memory (Linux /proc) ----------------------------------------------------

def rss_mb(pid: int) -> float:
    """VmRSS of one process in MB (0 when it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else 0.0


def descendants(pid: int) -> list[int]:
    """The process and every process below it."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS summed over the tree (shared pages count once per process: an upper bound)."""
    return sum(rss_mb(p) for p in descendants(pid))


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@contextmanager
def started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child in its own session, stopped with SIGTERM to its group (SIGKILL after 30 s)."""
    with open(log, "ab") as out:
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # tidtam serve stops its children itself
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # anything its group left behind


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], bool], process: subprocess.Popen, began: float,
             timeout: float) -> float:
    """Seconds since ``began`` when ``check`` first holds (polled every 50 ms)."""
    while time.perf_counter() - began < timeout:
        if check():
            return time.perf_counter() - began
        if process.poll() is not None:
            raise RuntimeError(f"{command_of(process.pid) or process.args} exited "
                               f"({process.returncode})")
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered within {timeout:.0f} s")


# --- The measurements ---------------------------------------------------------------------------

@dataclass
class Start:
    label: str
    seconds: dict[str, float] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)


def minimal_starlette(folder: Path) -> Start:
    (folder / "minimal_app.py").write_text(MINIMAL_APP)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(folder)}
    began = time.perf_counter()
    with started([sys.executable, "-m", "uvicorn", "minimal_app:app", "--host", "127.0.0.1",
                  "--port", str(port), "--log-level", "warning"], env,
                 folder / "minimal.log") as process:
        result = Start("minimal Starlette app (uvicorn)")
        result.seconds["first page"] = wait_for(
            lambda: answers(f"http://127.0.0.1:{port}/board"), process, began, 60)
        result.rss["web"] = tree_rss_mb(process.pid)
    return result


@contextmanager
def bare_prefect(folder: Path, result: Start) -> Iterator[str]:
    """``prefect server start`` alone, fresh PREFECT_HOME; yields its API URL while it runs."""
    from tidtam.ops.prefect_server import LOCAL_API, healthy, server_env

    port = free_port()
    api_url = LOCAL_API.format(port=port)
    prefect = str(Path(sys.executable).with_name("prefect"))
    began = time.perf_counter()
    with started([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                 server_env(folder / "bare-prefect", port), folder / "bare-prefect.log") as process:
        result.seconds["Prefect healthy"] = wait_for(lambda: healthy(api_url), process, began, 240)
        result.rss["Prefect server"] = tree_rss_mb(process.pid)
        yield api_url
        result.rss["Prefect server, later"] = tree_rss_mb(process.pid)


@dataclass(frozen=True)
class Serve:
    folder: Path
    database_url: str | None
    username: str
    password: str
    pages: int


def tidtam_serve(setup: Serve, label: str, prefect_api: str | None = None) -> Start:
    """`tidtam serve` from Popen to the first signed-in board page, then its processes' RSS."""
    from tidtam.ops.prefect_server import LOCAL_API, healthy

    port, prefect_port = free_port(), free_port()
    home = setup.folder / "var"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TIDTAM_", "PREFECT_"))}
    env.update(TIDTAM_DATA_DIR=str(home), TIDTAM_SECRET_KEY=secrets.token_urlsafe(32),
               TIDTAM_BASE_URL=f"http://127.0.0.1:{port}", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1")
    if setup.database_url:
        env["TIDTAM_DATABASE_URL"] = setup.database_url
    if prefect_api:
        env["PREFECT_API_URL"] = prefect_api
    api_url = prefect_api or LOCAL_API.format(port=prefect_port)
    web = f"http://127.0.0.1:{port}"
    result = Start(label)
    tidtam = str(Path(sys.executable).with_name("tidtam"))
    began = time.perf_counter()
    with started([tidtam, "serve", "--port", str(port), "--prefect-port", str(prefect_port)],
                 env, setup.folder / f"serve-{port}.log") as process:
        # The web app does not wait for Prefect: time it first, then see when Prefect answers
        # (each figure is seconds since Popen, whichever order they come in).
        result.seconds["web /healthz"] = wait_for(lambda: answers(web + "/healthz"), process,
                                                  began, 240)
        with httpx.Client(base_url=web) as client:
            result.seconds["first page"] = wait_for(
                lambda: first_page(client, setup), process, began, 240)
            if not prefect_api:
                result.seconds["Prefect healthy"] = wait_for(lambda: healthy(api_url), process,
                                                             began, 240)
            result.rss.update(serve_rss(process.pid, prefect_api is None))
            for _ in range(setup.pages):
                client.get("/board", follow_redirects=True).raise_for_status()
            result.rss.update({f"{k}, later": v for k, v in
                               serve_rss(process.pid, prefect_api is None).items()})
    return result


def first_page(client: httpx.Client, setup: Serve) -> bool:
    """Sign in through the form (when not yet) and ask for the board: True once it is 200.
    ``/board`` sends a coordinator on to their province's letter (``/directives/{slug}``, since
    one province may run several letters): the redirect is followed, the page is what counts."""
    if "tidtam_session" not in client.cookies:
        if client.get("/login").status_code != 200:
            return False
        answer = client.post("/login", data={"username": setup.username,
                                             "password": setup.password,
                                             "csrftoken": client.cookies["csrftoken"]})
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in answered {answer.status_code}")
    return client.get("/board", follow_redirects=True).status_code == 200


def serve_rss(pid: int, own_prefect: bool) -> dict[str, float]:
    """The web process (`tidtam serve` itself runs uvicorn), the Prefect server tree, the rest."""
    rss = {"web": rss_mb(pid), "Prefect server": 0.0, "deployments": 0.0, "other": 0.0}
    for child in descendants(pid)[1:]:
        command = command_of(child)
        if "prefect server start" in command or (own_prefect and _below_prefect(child, pid)):
            rss["Prefect server"] += rss_mb(child)
        elif "tidtam.ops.deployments" in command:
            rss["deployments"] += rss_mb(child)
        else:
            rss["other"] += rss_mb(child)
    return rss


def _below_prefect(child: int, root: int) -> bool:
    """A process whose ancestry, up to ``root``, runs `prefect server start`."""
    current = child
    while current not in (root, 0, 1):
        if "prefect server start" in command_of(current):
            return True
        try:
            current = int(Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


# --- Report -----------------------------------------------------------------------------------

def warm_imports() -> float:
    """Import the web app and the Prefect server once, so no variant pays for a cold disk cache."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import web.app, prefect.server.api.server"], cwd=ROOT,
                   check=True)
    return time.perf_counter() - began


def report(starts: list[Start]) -> None:
    minimal, bare, own, external = starts
    rows = []
    for s in starts:
        rows.append([s.label,
                     *(f"{s.seconds[k]:.2f}" if k in s.seconds else "—"
                       for k in ("Prefect healthy", "web /healthz", "first page")),
                     *(f"{s.rss[k]:.0f}" if s.rss.get(k) else "—"
                       for k in ("web", "web, later", "Prefect server", "Prefect server, later",
                                 "deployments"))])
    print_table(["variant", "Prefect healthy s", "web /healthz s", "first page s", "web MB",
                 f"web MB after {own_pages} pages", "Prefect MB", "Prefect MB later",
                 "deployments MB"], rows)
    web, page = own.rss["web, later"], own.seconds["first page"]
    print(f"web RSS {own.rss['web']:.0f} MB at the first page, {web:.0f} MB after {own_pages} "
          f"pages: {web / minimal.rss['web']:.1f}x the minimal Starlette app — goal ≤ 200 MB: "
          f"{'met' if web <= 200 else 'NOT met'}")
    print(f"Prefect server RSS in tidtam serve {own.rss['Prefect server']:.0f} MB: "
          f"{own.rss['Prefect server'] / bare.rss['Prefect server']:.2f}x the bare one")
    print(f"first page {page:.2f} s: {page / bare.seconds['Prefect healthy']:.2f}x the bare Prefect "
          f"server's time to healthy, {page / minimal.seconds['first page']:.1f}x the minimal "
          f"app's first page — goal ≤ 5 s: {'met' if page <= 5 else 'NOT met'}; with Prefect "
          f"already running: {external.seconds['first page']:.2f} s "
          f"({'met' if external.seconds['first page'] <= 5 else 'NOT met'})")


own_pages = 0


def main() -> None:
    global own_pages
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pages", type=int, default=20,
                        help="board pages loaded before RSS is read again")
    args = parser.parse_args()
    own_pages = args.pages
    print(f"P5 — tidtam serve: memory and time to the first page, national dataset; {machine()}")
    from bench._national import PASSWORD, coordinator, national_dataset, scratch_database

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "var").mkdir()
        with scratch_database(args.database, folder / "var") as url:
            if args.database == "sqlite":
                url = f"sqlite:///{(folder / 'var' / 'tidtam.db').resolve()}"  # serve's default
            data = national_dataset(url)
            biggest = largest_province(data.engine)
            data.engine.dispose()
            print(f"national dataset on {args.database}: {data.districts} districts, "
                  f"{data.items} items; signing in as {coordinator(biggest)}; imports warmed in "
                  f"{warm_imports():.1f} s", flush=True)
            setup = Serve(folder, url if args.database != "sqlite" else None,
                          coordinator(biggest), PASSWORD, args.pages)
            minimal = minimal_starlette(folder)
            bare = Start("prefect server start (bare)")
            with bare_prefect(folder, bare) as api_url:
                external = tidtam_serve(setup, "tidtam serve, Prefect already running",
                                        prefect_api=api_url)
            own = tidtam_serve(setup, "tidtam serve (starts its Prefect server)")
    report([minimal, bare, own, external])


def largest_province(engine) -> str:
    from sqlmodel import Session, func, select

    from models.org import District

    with Session(engine) as session:
        return session.exec(select(District.province_code).group_by(District.province_code)
                            .order_by(func.count().desc(), District.province_code)).first()


if __name__ == "__main__":
    main()
