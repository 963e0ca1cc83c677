"""The sweep as Prefect shows it: a task run per province and per district, the board as artifacts.

On a real Prefect server (one `prefect server start` for the module, as in test_automations.py)
and the deployments served as `tidtam serve` serves them (`python -m tidtam.ops.deployments`,
a child process): the `escalation-sweep` deployment runs on the Sa Kaeo demo (both letters) at
08:30 on Wednesday 14 August 2024, and what the Prefect client reads back must be what
`tidtam status --json` says at that instant. In-process (no server): the flow's parameters, the
artifact keys, and that deciding a province district by district, in any order and from several
threads, enqueues exactly what `sweep()` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.runs import district_task_name
from models.outbox import OutboxMessage, to_people
from tests.flows.test_automations import prefect_api  # noqa: F401 - the module's Prefect server
from tests.helpers.poll import wait_until
from tidtam.app.boards import board, board_table
from tidtam.app.escalation import read_provinces, start_sweep, sweep

ROOT = Path(__file__).resolve().parents[2]
BKK = ZoneInfo("Asia/Bangkok")
AT = "2024-08-14T08:30:00+07:00"
DAY = date(2024, 8, 14)
SWEEP = "escalation-sweep/escalation-sweep"


# --- On a real Prefect server ------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_env(tmp_path_factory, prefect_api) -> dict[str, str]:  # noqa: F811
    """The Sa Kaeo demo with its follow-up letter, in a SQLite file of its own."""
    data = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDTAM_"))}
    env.update(TIDTAM_DATA_DIR=str(data), TIDTAM_HOME=str(ROOT), PREFECT_API_URL=prefect_api,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    tidtam(env, "init", "--demo", "--follow-up", "--now", "2024-07-12T10:00:00+07:00")
    return env


def tidtam(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tidtam.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def served(demo_env, tmp_path_factory):
    """The deployments of prefect.yaml served from a child process, as `tidtam serve` does."""
    log_path = tmp_path_factory.mktemp("served") / "deployments.log"
    with open(log_path, "wb") as log:
        # Polling every second rather than Prefect's 10 s: a run starts soon after it is asked for.
        proc = subprocess.Popen([sys.executable, "-m", "tidtam.ops.deployments"],
                                env=dict(demo_env, PREFECT_RUNNER_POLL_FREQUENCY="1"),
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def alive() -> None:
            if proc.poll() is not None:
                pytest.fail(f"the deployments process exited:\n{log_path.read_text()[-3000:]}")

        wait_until(lambda: _deployment(SWEEP), timeout=120, interval=0.2, check=alive,
                   message=lambda: f"no served deployment:\n{log_path.read_text()[-3000:]}")
        # serve() registers every deployment, then polls for runs: wait until it polls.
        wait_until(lambda: b"being served" in log_path.read_bytes(), timeout=60, interval=0.2,
                   check=alive, message=lambda: log_path.read_text()[-3000:])
        yield log_path
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _deployment(name: str):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def run_and_wait(parameters: dict, log_path: Path):
    """Start a run of the served sweep deployment and wait until it is final."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    started = run_deployment(SWEEP, parameters=parameters, timeout=0)
    with get_client(sync_client=True) as client:
        return wait_until(lambda: _final(client.read_flow_run(started.id)), timeout=120,
                          interval=0.2, message=lambda: log_path.read_text()[-3000:])


def _final(run):
    return run if run.state and run.state.is_final() else None


@pytest.fixture(scope="module")
def swept(served):
    """The deployment run at 08:30 on 14 Aug 2567, with the board `tidtam status` shows then."""
    run = run_and_wait({"now": AT}, served)
    return run


def standing_of(boards: list[dict]) -> dict[str, tuple[str, str]]:
    """District code → (its Thai name, its standing) as `tidtam status --json` has it, over every
    active letter: N late when any item is overdue, all done when every item is settled."""
    counts: dict[str, list] = {}
    for data in boards:
        for row in data["districts"]:
            name, items, done, late = counts.setdefault(row["code"], [row["name_th"], 0, 0, 0])
            counts[row["code"]] = [name, items + len(row["items"]), done + row["done"],
                                   late + row["overdue"]]
    standing = {}
    for code, (name, items, done, late) in counts.items():
        label = (f"ช้า {late} รายการ / {late} late" if late else
                 "ครบแล้ว / all done" if done == items else "ตามกำหนด / on track")
        standing[code] = (name, label)
    return standing


@pytest.fixture(scope="module")
def status(demo_env, swept) -> list[dict]:
    return json.loads(tidtam(demo_env, "status", "--json", "--now", AT))["directives"]


@pytest.mark.prefect_server
def test_the_run_is_named_like_a_logbook_and_completes(swept):
    assert swept.state.type.value == "COMPLETED", swept.state.message
    assert swept.name == "escalation-sweep · สระแก้ว · 14 ส.ค. 2567 08:30"


@pytest.mark.prefect_server
def test_a_task_run_per_sa_kaeo_district_whose_state_is_its_standing_on_the_board(swept, status):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[swept.id])))
    standing = standing_of(status)
    assert len(standing) == 9  # Sa Kaeo's nine districts, on both letters' boards
    expected = {district_task_name(name, code): label for code, (name, label) in standing.items()}
    districts = {r.name: r for r in task_runs if r.name in expected}
    assert {name: r.state.name for name, r in districts.items()} == expected
    assert all(r.state.type.value == "COMPLETED" for r in districts.values())
    assert sum(label.startswith("ช้า") for label in expected.values()) >= 1  # something to see
    # Each district's task run ran inside Sa Kaeo's province task run.
    [province] = [r for r in task_runs if r.name == "สระแก้ว"]
    assert {UUID(str(p.id)) for r in districts.values() for p in r.task_inputs["__parents__"]} \
        == {province.id}


@pytest.mark.prefect_server
def test_the_board_artifact_of_each_letter_is_its_board(swept, status, demo_env):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from tidtam.app.directives import find_directive
    from tidtam.infra.db import engine_for, session_scope

    with get_client(sync_client=True) as client:
        made = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[swept.id])))
    by_key = {a.key: a for a in made}
    url = f"sqlite:///{Path(demo_env['TIDTAM_DATA_DIR']) / 'tidtam.db'}"
    with session_scope(engine_for(url)) as session:
        for data in status:
            slug = data["directive"]["slug"]
            table = json.loads(by_key[f"board-{slug}"].data)
            assert table == board_table(board(session, find_directive(session, slug), DAY))
            # …and it says what `tidtam status` says, cell by cell.
            words = {"done": "เสร็จ ", "waived": "ยกเว้น ", "overdue": "ช้า · ", "open": "ภายใน "}
            assert [row["อำเภอ"] for row in table] == [f"{r['name_th']} {r['code']}"
                                                      for r in data["districts"]]
            for row, district in zip(table, data["districts"], strict=True):
                for step in data["steps"]:
                    assert row[step["code"]].startswith(words[district["items"][step["code"]]])
                    assert row[step["code"]].endswith(" 2567")  # due day in B.E.
            items = sum(len(r["items"]) for r in data["districts"])
            settled = sum(r["done"] for r in data["districts"])
            assert by_key[f"progress-{slug}"].data == pytest.approx(100 * settled / items, abs=0.05)
            assert by_key[f"board-{slug}"].type == "table"


@pytest.mark.prefect_server
def test_a_second_run_publishes_no_board_that_did_not_change(swept, served):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    again = run_and_wait({"now": AT}, served)
    assert again.state.type.value == "COMPLETED"
    with get_client(sync_client=True) as client:
        made = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[again.id])))
    assert made == []


@pytest.mark.prefect_server
def test_the_sweep_and_the_digest_run_one_at_a_time(served):
    for name in (SWEEP, "coordinator-digest/coordinator-digest"):
        deployment = _deployment(name)
        assert deployment.global_concurrency_limit.limit == 1, name
        assert deployment.concurrency_options.collision_strategy == "ENQUEUE", name


@pytest.mark.prefect_server
def test_many_changed_boards_are_written_once_the_run_has_completed(served, demo_env,
                                                                   monkeypatch):
    """More changed artifacts than `ARTIFACTS_IN_RUN_UP_TO` (the first national run) are written
    by the run's on_completion hook: after its end, linked to it, before the call returns."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    import flows.escalation_sweep as module
    from tidtam.app.directives import find_directive
    from tidtam.infra.db import engine_for, session_scope
    from tidtam.infra.settings import get_settings

    for name in ("TIDTAM_DATA_DIR", "TIDTAM_HOME"):
        monkeypatch.setenv(name, demo_env[name])
    monkeypatch.delenv("TIDTAM_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    engine_for.cache_clear()
    monkeypatch.setattr(module, "ARTIFACTS_IN_RUN_UP_TO", 0)
    later = date(2024, 9, 2)  # a fortnight on: more cells late, so a board changed
    try:
        state = module.escalation_sweep(now=datetime(2024, 9, 2, 8, 30, tzinfo=BKK),
                                        province_code="27", return_state=True)
        report = state.result()
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(state.state_details.flow_run_id)
            made = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        assert run.state.type.value == "COMPLETED"
        assert report.boards_published == 0 and report.boards_after_run == len(made) >= 1
        assert all(a.created >= run.end_time for a in made)  # after the run, not in it
        tables = {a.key: json.loads(a.data) for a in made if a.type == "table"}
        assert tables
        url = f"sqlite:///{Path(demo_env['TIDTAM_DATA_DIR']) / 'tidtam.db'}"
        with session_scope(engine_for(url)) as session:
            for slug in report.directives:
                if f"board-{slug}" in tables:
                    assert tables[f"board-{slug}"] == board_table(
                        board(session, find_directive(session, slug), later))
    finally:
        get_settings.cache_clear()
        engine_for.cache_clear()


# --- In-process --------------------------------------------------------------------------------

def test_now_must_say_its_time_zone():
    from prefect.exceptions import ParameterTypeError

    from flows.escalation_sweep import escalation_sweep

    valid = escalation_sweep.validate_parameters({"now": AT, "province_code": "27"})
    assert valid["now"] == datetime(2024, 8, 14, 8, 30, tzinfo=BKK)
    with pytest.raises(ParameterTypeError) as refused:
        escalation_sweep.validate_parameters({"now": "2024-08-14T08:30:00"})
    assert "ไม่ได้ระบุเขตเวลา" in str(refused.value)  # flows/_common.py's check, as every flow's
    assert "has no UTC offset" in str(refused.value)


def test_artifact_keys_are_what_prefect_accepts():
    from flows.artifacts import artifact_key

    assert artifact_key("board", "fy2567-sakaeo-volunteer-centers") == \
        "board-fy2567-sakaeo-volunteer-centers"
    assert artifact_key("board", "FY2567_Sakaeo  letter.2") == "board-fy2567-sakaeo-letter-2"


def _outbox(session) -> list[tuple]:
    session.expire_all()
    return sorted((m.idempotency_key, m.subject, m.body, m.next_try_at, m.status)
                  for m in session.exec(select(OutboxMessage).where(to_people())))


@pytest.mark.parametrize("day", [date(2024, 7, 16), date(2024, 8, 6), date(2024, 8, 14),
                                 date(2024, 8, 19)])
def test_a_province_decided_district_by_district_from_threads_enqueues_what_sweep_does(
        session, launched, day):
    now = datetime(day.year, day.month, day.day, 8, 30, tzinfo=BKK)
    with session.begin_nested() as nested:
        whole = sweep(session, now, tz=BKK, base_url="http://tidtam.test")
        expected = _outbox(session)
        nested.rollback()
    assert expected, "a day the ladder says nothing proves nothing"
    assert _outbox(session) == []
    begun = start_sweep(session, now, tz=BKK)
    [province] = read_provinces(session, now, tz=BKK, base_url="http://tidtam.test", start=begun)
    with ThreadPoolExecutor(4) as pool:  # any order, several threads: as the district tasks run
        outcomes = list(pool.map(province.district, reversed(province.district_codes)))
    part = province.write(session)
    assert _outbox(session) == expected
    assert (part.enqueued, part.items_considered, part.by_rung) == (
        whole.enqueued, whole.items_considered, whole.by_rung)
    # Each district's standing is its row of the board at that day.
    rows = {r.district.code: r for r in board(session, launched, day).rows}
    assert {o.code: (o.standing.items, o.standing.settled, o.standing.late) for o in outcomes} \
        == {c: (len(r.cells), r.done_count, r.overdue_count) for c, r in rows.items()}


@pytest.mark.parametrize("grouped", [False, True])
def test_the_flow_decides_by_province_or_group_and_writes_once_what_sweep_does(
        session, launched, monkeypatch, grouped):
    """The flow (untracked: the tasks' own code) enqueues exactly what `sweep()` does, whether the
    provinces are decided one task each or in groups (the national run), in one write."""
    from contextlib import contextmanager

    import flows.escalation_sweep as module

    now = datetime(2024, 8, 14, 8, 30, tzinfo=BKK)
    with session.begin_nested() as nested:
        whole = sweep(session, now, tz=BKK, base_url="http://tidtam.test")
        expected = _outbox(session)
        nested.rollback()
    assert expected

    @contextmanager
    def this_session(_engine=None):
        yield session

    monkeypatch.setattr(module, "session_scope", this_session)
    monkeypatch.setattr(module, "get_engine", lambda: None)
    monkeypatch.setattr(module, "PROVINCE_TASKS_UP_TO", 0 if grouped else 12)
    monkeypatch.setattr(module.get_settings(), "base_url", "http://tidtam.test")
    writes = []
    monkeypatch.setattr(module, "write_provinces", _counting(module.write_provinces, writes))
    report = module.escalation_sweep.fn(now=now, district_tasks=False)
    assert _outbox(session) == expected
    assert len(writes) == 1  # every province's rows in one write
    assert (report.enqueued, report.items_considered, report.by_rung) == (
        whole.enqueued, whole.items_considered, whole.by_rung)
    [province] = report.provinces
    assert (province.code, province.enqueued, len(province.districts)) == ("27", whole.enqueued, 9)
    again = module.escalation_sweep.fn(now=now, district_tasks=False)
    assert (again.enqueued, again.already_queued) == (0, whole.enqueued)


def _counting(write, calls: list):
    def counted(*args):
        calls.append(args)
        return write(*args)
    return counted


def test_the_whole_country_is_swept_in_nine_groups_named_by_their_codes():
    from flows.escalation_sweep import ProvincePlan, province_groups
    from tidtam.app.orgtree import department_provinces

    country = [ProvincePlan(code=c, name_th=c, directive_ids=[]) for c in department_provinces()]
    assert (len(country), len(province_groups(country))) == (76, 9)
    codes = ["11", "12", "20", "27", "30", "40", "50", "60", "70", "80", "90", "96"]
    plans = [ProvincePlan(code=c, name_th=c, directive_ids=[]) for c in codes]
    groups = province_groups(plans)
    assert [label for label, _ in groups] == [
        "จังหวัด 11–12 (2) · provinces 11–12", "จังหวัด 20–27 (2) · provinces 20–27",
        "จังหวัด 30 (1) · provinces 30", "จังหวัด 40 (1) · provinces 40",
        "จังหวัด 50 (1) · provinces 50", "จังหวัด 60 (1) · provinces 60",
        "จังหวัด 70 (1) · provinces 70", "จังหวัด 80 (1) · provinces 80",
        "จังหวัด 90–96 (2) · provinces 90–96"]
    assert [at for _, places in groups for at in places] == list(range(len(codes)))
