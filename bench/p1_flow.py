"""P1 (whole flow): the `escalation-sweep` flow run on a real Prefect server, national dataset.

Data: ``tidtam demo-data --provinces all --seed 1`` as of Tuesday 13 August 2024, 10:00 Bangkok
(no photo files), on SQLite and on PostgreSQL. A local ``prefect server start`` (its own SQLite
database in a scratch PREFECT_HOME) runs for the whole benchmark.

Runs, one after another on the same data (``RUNS``): the sweep of Wednesday 14 August 2024,
10:00 Bangkok (every open item due or late) as the national run makes it by default (a task run
per group of provinces, `PROVINCE_TASKS_UP_TO`), first (it enqueues that morning's messages and
publishes every board artifact, all new to the server) and again (nothing new); the next morning
(it enqueues that day's messages); then with a task run per province and per district (878 more
task runs), again, and the morning after. Timed:
- **flow run**: the server's own record of the run, ``end_time - start_time`` of the flow run
  (what the Prefect UI shows as its duration): the start task, the province (and district) task
  runs, deciding and enqueueing, the board artifacts (published while the provinces are decided);
- **publish task**: the server's record of the `publish-boards` task run: reading ~76 boards in
  three queries, comparing them with what their keys show, writing those that changed;
- **artifacts written**: in the run, and (when more than `ARTIFACTS_IN_RUN_UP_TO` changed, the
  first run after a launch) by its on_completion hook once the run has completed, with the last
  one's `created` after the run's `end_time`;
- **call**: the wall time of calling the flow in an already-warm process (flow-run creation on the
  server, state reports, the run, the result) — what a worker adds to a scheduled run, minus the
  process start;
- **client CPU / server CPU**: CPU seconds this process and the Prefect server (with its
  children) spent during the call: what a busy machine cannot stretch, unlike the wall times;
- **process**: ``tidtam sweep --now …`` as a fresh process, imports and all (the default: a task
  run per province at national scale).
Peer: SpiffWorkflow 3 on the same 878 districts (``bench.p1_sweep``'s BPMN and its timing of
deserialize → refresh_waiting_tasks → do_engine_steps → serialize), run in the same process.
Goal: the whole flow run ≤ 2 s, ≥ 200× SpiffWorkflow for the decide-and-enqueue step.

    .venv/bin/python -m bench.p1_flow [--db sqlite|postgresql|both] [--skip-peer]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import ROOT, machine, print_table
from bench._national import demo_dataset, scratch_database
from tidtam.infra.db import engine_for
from tidtam.ops.prefect_server import server_env, wait_healthy

SWEEP_AT = "2024-08-14T10:00:00+07:00"                 # the next working morning
NEXT_MORNING = "2024-08-15T10:00:00+07:00"
MORNING_AFTER = "2024-08-16T10:00:00+07:00"


def start_prefect(folder: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = server_env(folder, port)
    log = open(folder / "prefect-server.log", "w")  # noqa: SIM115  (closed with the process)
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api_url = f"http://127.0.0.1:{port}/api"
    if not wait_healthy(api_url, timeout=120, is_alive=lambda: process.poll() is None):
        process.kill()
        raise SystemExit(f"the Prefect server did not start; see {folder / 'prefect-server.log'}")
    return process, api_url


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PUBLISH_TASK = "กระดานติดตาม · board artifacts"

# (label, the instant, district_tasks): the same national data, one run after another.
RUNS = [
    ("national · first (enqueues; every artifact new)", SWEEP_AT, False),
    ("national · again (nothing new)", SWEEP_AT, False),
    ("national · next morning (enqueues)", NEXT_MORNING, False),
    ("with district task runs · again (nothing new)", NEXT_MORNING, True),
    ("with district task runs · morning after (enqueues)", MORNING_AFTER, True),
]


async def run_record(run_id) -> tuple[float, str, float | None, float | None]:
    """The server's own record: the flow run's duration and final state, its board publishing
    task run's duration, and how long after the run's end its last artifact was written."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )

    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        published: list[float] = []
        for _ in range(60):  # task runs are recorded from their events, a moment after the run
            publish = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[PUBLISH_TASK])))
            published = [(t.end_time - t.start_time).total_seconds() for t in publish
                         if t.end_time]
            if published:
                break
            await asyncio.sleep(0.5)
        made = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        after = [(a.created - run.end_time).total_seconds() for a in made if a.created]
        return ((run.end_time - run.start_time).total_seconds(), run.state.type.value,
                published[0] if published else None, max(after) if after else None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and every process below it (the Prefect server
    runs its API in a child), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total = {pid}, 0.0
    for _ in range(4):
        tree |= {p for p, (parent, _cpu) in stats.items() if parent in tree}
    for p in tree:
        total += stats.get(p, (0, 0.0))[1]
    return total


def sweep_when_the_server_answers(at: str, per_district: bool):
    """The flow run, started once the Prefect server takes it: after 956 task runs it may answer
    503 for a while (recording their events) and refuse to create the next flow run at all."""
    from prefect.exceptions import PrefectHTTPStatusError

    from flows.escalation_sweep import escalation_sweep

    for wait in (10, 20, 40, 60, 0):
        started = time.perf_counter()
        try:
            state = escalation_sweep(now=at, district_tasks=per_district, return_state=True)
        except PrefectHTTPStatusError as error:
            if wait == 0 or error.response.status_code != 503:
                raise
            print(f"the Prefect server answered 503 before the run started; again in {wait} s")
            time.sleep(wait)
            continue
        return state, time.perf_counter() - started
    raise AssertionError("unreachable")


def measure(kind: str, folder: Path, api_url: str, server_pid: int) -> list[list[object]]:
    from tidtam.infra.settings import get_settings

    rows = []
    with scratch_database(kind, folder) as url:
        engine, _ = demo_dataset(kind, url)
        os.environ["TIDTAM_DATABASE_URL"] = url
        os.environ["TIDTAM_DATA_DIR"] = str(folder / f"data-{kind}")
        get_settings.cache_clear()
        engine_for.cache_clear()
        for label, at, per_district in RUNS:
            client, server = time.process_time(), cpu_seconds(server_pid)
            state, call = sweep_when_the_server_answers(at, per_district)
            client, server = time.process_time() - client, cpu_seconds(server_pid) - server
            report = state.result()
            duration, final, publish, last = asyncio.run(
                run_record(state.state_details.flow_run_id))
            written = (f"{report.boards_published}" if not report.boards_after_run else
                       f"{report.boards_published} + {report.boards_after_run} after, "
                       f"last {last:.2f} s after the run's end")
            rows.append([kind, label, report.task_runs, report.enqueued, written,
                         f"{publish:.2f}" if publish is not None else "", f"{duration:.2f}",
                         f"{call:.2f}", f"{client:.2f}", f"{server:.2f}", "", final,
                         "yes" if duration <= 2.0 else "NO"])
        env = dict(os.environ)
        started = time.perf_counter()
        subprocess.run([str(ROOT / ".venv" / "bin" / "tidtam"), "sweep", "--now", MORNING_AFTER],
                       env=env, check=True, capture_output=True)
        process = time.perf_counter() - started
        rows.append([kind, "`tidtam sweep` (default), fresh process, again", "", "", "", "", "",
                     "", "", "", f"{process:.2f}", "", ""])
        engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    print(f"P1 (whole flow on a Prefect server) — {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        port = free_port()
        server, api_url = start_prefect(folder, port)
        os.environ["PREFECT_API_URL"] = api_url
        rows: list[list[object]] = []
        try:
            for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
                rows += measure(kind, folder, api_url, server.pid)
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        print_table(["db", "run", "task runs", "enqueued", "artifacts written", "publish task s",
                     "flow run s", "call s", "client CPU s", "server CPU s", "process s", "state",
                     "≤ 2 s"], rows)
        if not args.skip_peer:
            from bench.p1_sweep import spiff_refresh_all, spiff_store

            store = spiff_store(folder, 878)
            started = time.perf_counter()
            spiff_refresh_all(store)
            spiff = time.perf_counter() - started
            best = min(float(r[6]) for r in rows if r[6])
            print(f"SpiffWorkflow 3, 878 instances: {spiff:.2f} s; "
                  f"whole flow run vs SpiffWorkflow: {spiff / best:.1f}× (goal for the "
                  "decide-and-enqueue step: ≥ 200×)")


if __name__ == "__main__":
    main()
