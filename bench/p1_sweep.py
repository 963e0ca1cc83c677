"""P1: the escalation sweep at national scale — tidtam against SpiffWorkflow 3.

The data: 76 provinces and 878 districts (geothai, Bangkok left out), the FY 2567 directive
launched once per province (76 copies: slug and province_code changed in memory), so 878 × 12
tracked items, all open; two district people per district and two per province, each with a LINE
id and an e-mail address. The sweep runs at Tuesday 13 August 2024, 10:00 Bangkok, when every
item is due or overdue.

tidtam's side: ``tidtam.app.escalation.sweep`` (decide and enqueue, one transaction), first on an
empty outbox and again at the same instant (nothing new to enqueue; --sweep-repeats times, the
median the figure), and the indexed query for the
overdue set alone (``models.directive.open_items_due_by``). The write's floor: the rows the first
sweep enqueued, inserted by sqlite3 alone into the database as it was before it. Wall and CPU
seconds (this process's, so the ratio by CPU stretches less on a shared machine).
The peer: SpiffWorkflow 3 with bench/p1_directive.bpmn (the same 12 steps as user tasks, each with
a non-interrupting timer boundary event), 878 instances persisted as JSON in SQLite; timed:
read → deserialize → refresh_waiting_tasks → do_engine_steps → serialize → write, for all 878.

    .venv/bin/python -m bench.p1_sweep
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import func, select

from bench._common import machine, print_table
from bench._national import national_dataset
from models.directive import ItemStatus, TrackedItem, open_items_due_by
from models.outbox import OutboxMessage
from tidtam.app.escalation import sweep
from tidtam.infra.db import session_scope

BANGKOK = ZoneInfo("Asia/Bangkok")
BPMN = Path(__file__).with_name("p1_directive.bpmn")
NOW = datetime(2024, 8, 13, 3, 0, tzinfo=UTC)  # Tuesday 13 August 2024, 10:00 Bangkok
BASE_URL = "https://tidtam.example"


def timed(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def cpu_timed(run: Callable[[], object]) -> tuple[float, float, object]:
    """Wall seconds, this process's CPU seconds, and the value: on a shared machine the CPU
    seconds stretch less than the wall time (both sides run in this one process)."""
    cpu = time.process_time()
    seconds, value = timed(run)
    return seconds, time.process_time() - cpu, value


def tidtam_side(engine: Engine, query_repeats: int, folder: Path, sweep_repeats: int = 5,
                ) -> dict[str, object]:
    today = NOW.astimezone(BANGKOK).date()
    with session_scope(engine) as session:
        items = session.exec(select(func.count()).select_from(TrackedItem)).one()
    query_times, id_times = [], []
    for _ in range(query_repeats):
        with session_scope(engine) as session:
            seconds, overdue = timed(lambda s=session: open_items_due_by(s, today))
            query_times.append(seconds)
            seconds, ids = timed(lambda s=session: overdue_ids(s, today))
            id_times.append(seconds)
    before = snapshot(engine, folder)
    with session_scope(engine) as session:
        first, first_cpu, result = cpu_timed(
            lambda: sweep(session, NOW, tz=BANGKOK, base_url=BASE_URL))
    # The repeat takes ~0.1 s, so one momentary load spike on a shared machine moves it by
    # half: it is run ``sweep_repeats`` times (each its own transaction, as a scheduled run
    # would be) and the median is the figure; the first of them is shown too.
    repeats = []
    for _ in range(max(1, sweep_repeats)):
        with session_scope(engine) as session:
            repeats.append(cpu_timed(lambda s=session: sweep(s, NOW, tz=BANGKOK,
                                                                base_url=BASE_URL)))
    again_first, again_first_cpu, repeat = repeats[0]
    again = statistics.median(wall for wall, _cpu, _result in repeats)
    again_cpu = statistics.median(cpu for _wall, cpu, _result in repeats)
    with session_scope(engine) as session:
        rows = session.exec(select(func.count()).select_from(OutboxMessage)).one()
    floor, floor_cpu, floor_rows = raw_insert_floor(engine, before)
    return {"items": items, "overdue": len(overdue), "query": statistics.median(query_times),
            "ids": statistics.median(id_times), "id_count": len(ids),
            "first": first, "first_cpu": first_cpu, "first_result": result,
            "again": again, "again_cpu": again_cpu, "repeat_result": repeat,
            "again_first": again_first, "again_first_cpu": again_first_cpu,
            "sweep_repeats": len(repeats),
            "outbox_rows": rows, "floor": floor, "floor_cpu": floor_cpu, "floor_rows": floor_rows}


def snapshot(engine: Engine, folder: Path) -> Path:
    """A copy of the SQLite database as it is (WAL checkpointed into the file)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    source = Path(engine.url.database)
    copy = folder / "p1-before-sweep.db"
    shutil.copyfile(source, copy)
    return copy


def raw_insert_floor(engine: Engine, before: Path) -> tuple[float, float, int]:
    """The write's floor: the rows the first sweep enqueued (every column but the id, in id
    order), inserted into the database as it was before it (``before``) by sqlite3 alone, one
    ``executemany`` of INSERT … ON CONFLICT (idempotency_key) DO NOTHING and a commit, on a
    connection set up as tidtam's (WAL, foreign keys on): no Python but the driver's."""
    with engine.connect() as connection:
        columns = [row[1] for row in connection.exec_driver_sql("PRAGMA table_info(outbox)")
                   if row[1] != "id"]
        rows = connection.exec_driver_sql(
            f"SELECT {', '.join(columns)} FROM outbox ORDER BY id").fetchall()
    rows = [tuple(row) for row in rows]
    insert = (f"INSERT INTO outbox ({', '.join(columns)}) VALUES "
              f"({', '.join('?' * len(columns))}) ON CONFLICT (idempotency_key) DO NOTHING")
    with sqlite3.connect(before) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")

        def write() -> None:
            db.executemany(insert, rows)
            db.commit()

        seconds, cpu, _ = cpu_timed(write)
    return seconds, cpu, len(rows)


def overdue_ids(session, today) -> list[int]:
    """The same WHERE as open_items_due_by, ids only: the SQL without building ORM objects."""
    return list(session.exec(select(TrackedItem.id).where(
        TrackedItem.status == ItemStatus.OPEN, TrackedItem.due_on <= today)))


# --- The peer: SpiffWorkflow 3 ----------------------------------------------------------------

def spiff_store(folder: Path, instances: int) -> Path:
    """``instances`` started workflows (12 user tasks ready, 12 timers waiting) as JSON rows.

    The model's timers say 2099 so that nothing fires while the instances are created; the
    stored JSON is then moved to the directive's real 2024 dates, i.e. into the past, as if
    the deadlines had passed since the last sweep.
    """
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("district_directive")
    serializer = BpmnWorkflowSerializer()
    path = folder / "spiff.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE workflow (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
        for n in range(instances):
            workflow = BpmnWorkflow(spec)
            workflow.data["district"] = n
            workflow.do_engine_steps()
            state = serializer.serialize_json(workflow).replace('"2099-', '"2024-')
            db.execute("INSERT INTO workflow (id, state) VALUES (?, ?)", (n, state))
    return path


def spiff_refresh_all(path: Path) -> tuple[int, int]:
    """The peer's sweep: every instance read, deserialized, refreshed, stepped, written back."""
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    serializer = BpmnWorkflowSerializer()
    fired = 0
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, state FROM workflow").fetchall()
        for row_id, state in rows:
            workflow = serializer.deserialize_json(state)
            with warnings.catch_warnings():  # 3.x deprecates it for refresh_timers (the same)
                warnings.simplefilter("ignore", DeprecationWarning)
                workflow.refresh_waiting_tasks()
            workflow.do_engine_steps()
            fired += sum(1 for t in workflow.get_tasks(state=TaskState.COMPLETED)
                         if t.task_spec.name.startswith("escalated_"))
            db.execute("UPDATE workflow SET state = ? WHERE id = ?",
                       (serializer.serialize_json(workflow), row_id))
    return len(rows), fired


# --- Report -----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--query-repeats", type=int, default=5)
    parser.add_argument("--sweep-repeats", type=int, default=5,
                        help="repeat sweeps at the same instant; the median is the figure")
    args = parser.parse_args()
    print(f"P1 — national escalation sweep at {NOW.astimezone(BANGKOK):%Y-%m-%d %H:%M} Bangkok; "
          f"{machine()}")
    print(f"run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average (1, 5, 15 min): "
          f"{load_average()}")
    with tempfile.TemporaryDirectory() as folder:
        setup, data = timed(lambda: national_dataset(f"sqlite:///{Path(folder) / 'p1.db'}"))
        districts = data.districts
        print(f"setup: {districts} districts, directive launched in {len(data.provinces)} "
              f"provinces ({setup:.1f} s)")
        ours = tidtam_side(data.engine, args.query_repeats, Path(folder), args.sweep_repeats)
        build, store = timed(lambda: spiff_store(Path(folder), districts))
        print(f"SpiffWorkflow: {districts} instances created and stored ({build:.1f} s, "
              f"{store.stat().st_size / 1e6:.0f} MB of JSON in SQLite)")
        spiff, spiff_cpu, (instances, fired) = cpu_timed(lambda: spiff_refresh_all(store))
    first, again = ours["first_result"], ours["repeat_result"]
    print_table(
        ["variant", "seconds", "CPU s", "work done", "x SpiffWorkflow", "x by CPU"],
        [["SpiffWorkflow 3: read+deserialize+refresh+step+serialize+write, all instances",
          f"{spiff:.3f}", f"{spiff_cpu:.3f}", f"{instances} instances, {fired} timers fired",
          "1.0x", "1.0x"],
         ["tidtam: overdue set, indexed query (open_items_due_by), median",
          f"{ours['query']:.4f}", "", f"{ours['overdue']} of {ours['items']} items",
          f"{spiff / ours['query']:.0f}x", ""],
         ["tidtam: same WHERE, ids only (SQL without ORM objects), median",
          f"{ours['ids']:.4f}", "", f"{ours['id_count']} ids", f"{spiff / ours['ids']:.0f}x", ""],
         ["tidtam: sweep(), first at this instant (decide + enqueue)", f"{ours['first']:.3f}",
          f"{ours['first_cpu']:.3f}",
          f"{first.items_considered} items, {first.enqueued} rows enqueued",
          f"{spiff / ours['first']:.1f}x", f"{spiff_cpu / ours['first_cpu']:.1f}x"],
         ["tidtam: sweep() again at the same instant (all already queued), the first",
          f"{ours['again_first']:.3f}", f"{ours['again_first_cpu']:.3f}",
          f"{again.enqueued} new, {again.already_queued} already queued",
          f"{spiff / ours['again_first']:.1f}x", f"{spiff_cpu / ours['again_first_cpu']:.1f}x"],
         [f"tidtam: sweep() again, median of {ours['sweep_repeats']} (each its own transaction)",
          f"{ours['again']:.3f}", f"{ours['again_cpu']:.3f}", "the same each time",
          f"{spiff / ours['again']:.1f}x", f"{spiff_cpu / ours['again_cpu']:.1f}x"],
         ["floor: the first sweep's rows by sqlite3 alone (executemany + commit)",
          f"{ours['floor']:.3f}", f"{ours['floor_cpu']:.3f}", f"{ours['floor_rows']} rows",
          f"{spiff / ours['floor']:.1f}x", f"{spiff_cpu / ours['floor_cpu']:.1f}x"]])
    print(f"outbox rows after both sweeps: {ours['outbox_rows']}; by rung (first sweep): "
          f"{first.by_rung}")
    print(f"load average (1, 5, 15 min) at the end: {load_average()}")
    for line in verdict_lines(spiff, spiff_cpu, ours):
        print(line)


GOAL = 200  # issue 17, P1: sweep() at least 200 times as fast as SpiffWorkflow, first and repeated


def _met(wall: float, cpu: float) -> str:
    if wall >= GOAL and cpu >= GOAL:
        return "goal met (wall and CPU)"
    if cpu >= GOAL:
        return "goal met by CPU only, NOT by wall"
    if wall >= GOAL:
        return "goal met by wall only, NOT by CPU"
    return "goal NOT met"


def verdict_lines(spiff: float, spiff_cpu: float, ours: dict[str, object]) -> list[str]:
    """Plain verdict lines: each sweep's ratio to SpiffWorkflow by wall and by CPU against the
    goal, and for the first sweep what bounds it (the floor: sqlite3 alone writing its rows)."""
    lines = []
    for name, key in (("first sweep", "first"),
                      (f"repeat sweep (median of {ours['sweep_repeats']})", "again")):
        wall, cpu = spiff / ours[key], spiff_cpu / ours[f"{key}_cpu"]
        lines.append(f"VERDICT {name}: {wall:.1f}x SpiffWorkflow by wall, {cpu:.1f}x by CPU "
                     f"(goal >= {GOAL}x): {_met(wall, cpu)}")
        if key == "first":
            floor_wall, floor_cpu = spiff / ours["floor"], spiff_cpu / ours["floor_cpu"]
            why = (f"  why: sqlite3 alone inserting the same {ours['floor_rows']} rows (no "
                   f"Python but the driver's) is {floor_wall:.1f}x SpiffWorkflow by wall, "
                   f"{floor_cpu:.1f}x by CPU (the floor row)")
            if max(floor_wall, floor_cpu) < GOAL:
                why += (f": no first sweep that writes these rows can reach {GOAL}x on SQLite; "
                        f"the sweep is {ours['first'] / ours['floor']:.2f}x the floor's wall "
                        f"time, {ours['first_cpu'] / ours['floor_cpu']:.2f}x its CPU")
            lines.append(why)
    return lines


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
