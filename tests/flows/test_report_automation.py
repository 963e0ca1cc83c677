"""The report flows on a real Prefect server: the automation that compiles once every district's
report is accepted, and the artifacts the digest and the compilation leave.

One `prefect server start` for the module (test_automations.py's fixture), and one deployments
process started as `tidtam serve` starts it (`python -m tidtam.ops.deployments`: every deployment
of prefect.yaml served, the automations ensured first). The database is a SQLite file with the
Sa Kaeo demo and its second letter; all nine district reports of the first letter are filed,
submitted and accepted through tidtam.app.reporting. The `tidtam.report.accepted` events are
POSTed to the server's /events as the event contract says (part C's outbox sends the same).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import select

from models.directive import get_directive_by_slug
from models.org import District, Province
from models.report import get_report
from tests.conftest import unavailable
from tests.db.test_reporting import accepted
from tests.flows.test_automations import prefect_api  # noqa: F401  (this module's server)
from tests.helpers.poll import wait_until
from tests.web.conftest import make_app
from tests.web.helpers import signed_in
from tidtam.infra import db
from tidtam.infra.photos import PhotoStore
from tidtam.ops.bootstrap import DEMO_FOLLOW_UPS, initialise

ROOT = Path(__file__).resolve().parents[2]
BKK = ZoneInfo("Asia/Bangkok")
SLUG = "fy2567-sakaeo-volunteer-centers"
FOLLOW_UP = "fy2567-sakaeo-outstanding-centers"
LAUNCHED = datetime(2024, 7, 12, 3, 0, tzinfo=UTC)
BASE_URL = "http://tidtam.test"
COMPILE = "compile-provincial-report"
# Each district files the same form (tests/db/test_reporting.py): 3 sessions of 23 participants
# at 2 centers, one landscape session.
DISTRICTS = 9


@dataclass
class Demo:
    url: str
    data_dir: Path
    report_ids: dict[str, int]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """The demo with both letters; every district report of the first one accepted."""
    data_dir = tmp_path_factory.mktemp("tidtam-data")
    url = f"sqlite:///{data_dir / 'tidtam.db'}"
    engine = db.engine_for(url)
    initialise(engine, demo=True, now=LAUNCHED, follow_ups=DEMO_FOLLOW_UPS)
    store = PhotoStore(data_dir / "photos")
    with db.session_scope(engine) as session:
        directive = get_directive_by_slug(session, SLUG)
        codes = sorted(session.exec(select(District.code).where(District.province_code == "27")))
        assert len(codes) == DISTRICTS
        for code in codes:
            accepted(session, store, code, directive=directive)
        report_ids = {code: get_report(session, directive.id, code).id for code in codes}
    engine.dispose()
    return Demo(url, data_dir, report_ids)


@pytest.fixture(scope="module")
def served(prefect_api, demo, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """The deployments process of `tidtam serve`, on this module's server and database."""
    log = tmp_path_factory.mktemp("served") / "flows.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDTAM_"))}
    env.update(PREFECT_API_URL=prefect_api, TIDTAM_DATABASE_URL=demo.url,
               TIDTAM_DATA_DIR=str(demo.data_dir), TIDTAM_DEMO="1", TIDTAM_BASE_URL=BASE_URL,
               TIDTAM_HOME=str(ROOT), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tidtam.ops.deployments"], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def alive() -> None:
        if proc.poll() is not None:
            pytest.fail(f"the deployments process exited:\n{log.read_text()[-4000:]}")

    try:
        wait_until(lambda: "automations watching" in log.read_text(errors="replace")
                   and _compile_deployment(), timeout=120, interval=0.3, check=alive,
                   message=lambda: f"deployments and automations:\n{log.read_text()[-4000:]}")
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


# --- Reading the Prefect server ----------------------------------------------------------------

def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _compile_deployment():
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            return client.read_deployment_by_name(f"{COMPILE}/{COMPILE}")
        except ObjectNotFound:
            return None


def compile_runs() -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment = _compile_deployment()
    with _client() as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment.id])))


def artifacts_of(flow_run_id) -> dict[str, object]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with _client() as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found}


def finished(run_id):
    with _client() as client:
        run = client.read_flow_run(run_id)
    return run if run.state and run.state.is_final() else None


# --- The event, as the contract of common events says ------------------------------------------

def report_accepted(api: str, demo: Demo, *, slug: str, district: str, all_accepted: bool,
                    event_id: uuid.UUID) -> None:
    """POST one `tidtam.report.accepted` event (an outbox redelivery sends the same id)."""
    engine = db.engine_for(demo.url)
    with db.session_scope(engine) as session:
        directive = get_directive_by_slug(session, slug)
        place = session.get(District, district)
        province = session.get(Province, directive.province_code)
        report = get_report(session, directive.id, district)
        report_id = report.id if report else 0
    event = {
        "id": str(event_id), "occurred": datetime.now(UTC).isoformat(),
        "event": "tidtam.report.accepted",
        "resource": {"prefect.resource.id": f"tidtam.report.{report_id}",
                     "prefect.resource.name": f"{place.name_th} · รายงาน {directive.reference_no}",
                     "tidtam.directive": slug, "tidtam.province": province.code,
                     "tidtam.district": district,
                     "tidtam.all_accepted": "true" if all_accepted else "false"},
        "related": [
            {"prefect.resource.id": f"tidtam.district.{district}",
             "prefect.resource.role": "district", "prefect.resource.name": place.name_th},
            {"prefect.resource.id": f"tidtam.directive.{slug}", "prefect.resource.role": "directive",
             "prefect.resource.name": f"{directive.reference_no} {directive.title_th}"},
            {"prefect.resource.id": f"tidtam.province.{province.code}",
             "prefect.resource.role": "province", "prefect.resource.name": province.name_th}],
        "payload": {"actor": "coordinator"},
    }
    response = httpx.post(f"{api}/events", json=[event], timeout=10)
    assert response.status_code == 204, response.text


def _until_the_automation_listens(api: str, demo: Demo) -> int:
    """The trigger service loads a new automation on its own schedule, and an event it saw before
    is gone for it. Send a fresh event for the second letter every 3 s until one starts a
    compile run; then let every run so started finish. Returns how many there are."""
    state = {"next": 0.0}

    def started():
        import time

        if time.monotonic() >= state["next"]:
            report_accepted(api, demo, slug=FOLLOW_UP, district="2701", all_accepted=True,
                            event_id=uuid.uuid4())
            state["next"] = time.monotonic() + 3
        return compile_runs()

    runs = wait_until(started, timeout=90, interval=0.3,
                      message="no compile run started within 90 s of the first event")
    wait_until(lambda: all(finished(r.id) for r in compile_runs()), timeout=120, interval=0.5,
               message="the second letter's compile run did not finish")
    assert {r.parameters["directive_slug"] for r in runs} == {FOLLOW_UP}
    return len(compile_runs())


# --- The automation ----------------------------------------------------------------------------

def deliver_the_events(api: str, demo: Demo) -> int:
    """Run the outbox pump over the demo's queued Prefect events (the launches, and the nine
    acceptances `tidtam.app.reporting` recorded in the fixture), as `tidtam serve`'s pump does."""
    from sqlmodel import Session

    from models.outbox import Channel
    from notifications.prefect_events import PrefectEventsTransport
    from notifications.pump import deliver_due

    engine = db.engine_for(demo.url)
    sent = 0
    with httpx.Client(timeout=10) as http:
        transports = {Channel.PREFECT_EVENT.value: PrefectEventsTransport(http, api)}
        while (result := deliver_due(lambda: Session(engine), transports,
                                     datetime.now(UTC))).sent:
            sent += result.sent
    return sent


def requeue_the_acceptances(demo: Demo) -> int:
    """A redelivery: the pump lost the server's answer and sends the same rows again."""
    from sqlmodel import Session, update

    from models.outbox import Channel, OutboxMessage, OutboxStatus

    engine = db.engine_for(demo.url)
    with Session(engine) as session:
        count = session.exec(update(OutboxMessage).where(
            OutboxMessage.channel == Channel.PREFECT_EVENT,
            OutboxMessage.subject == "tidtam.report.accepted").values(
            status=OutboxStatus.QUEUED)).rowcount
        session.commit()
    return count


def _marker_behind(api: str, demo: Demo) -> None:
    """One fresh event for the second letter, after everything sent so far: the trigger service
    reads events in order, so once its compile run exists every earlier event was handled."""
    def follow_ups() -> list:
        return [r for r in compile_runs() if r.parameters.get("directive_slug") == FOLLOW_UP]

    before = len(follow_ups())
    report_accepted(api, demo, slug=FOLLOW_UP, district="2701", all_accepted=True,
                    event_id=uuid.uuid4())
    wait_until(lambda: len(follow_ups()) > before, timeout=60, interval=0.3,
               message="the marker event started no compile run")


@pytest.mark.prefect_server
def test_the_last_acceptance_compiles_once_and_its_links_lead_to_the_files(prefect_api, demo,  # noqa: F811
                                                                              served):
    """The whole path: the fixture accepted the nine district reports through
    tidtam.app.reporting, each acceptance an event row in the outbox (the last one with
    tidtam.all_accepted = "true"); the pump delivers them; the automation compiles once."""
    if shutil.which("chromium") is None:
        unavailable("chromium not installed: the automation compiles with the PDF")
    before = _until_the_automation_listens(prefect_api, demo)
    assert deliver_the_events(prefect_api, demo) >= DISTRICTS
    ours = wait_until(lambda: [r for r in compile_runs()
                               if r.parameters.get("directive_slug") == SLUG], timeout=60,
                      interval=0.3, message="the last acceptance started no compile run")
    run = wait_until(lambda: finished(ours[0].id), timeout=180, interval=0.5,
                     message="the compile run did not finish")
    assert run.state_name == "Completed", run.state.message
    # Delivered again (same ids): Prefect keeps each event once and compiles nothing more.
    assert requeue_the_acceptances(demo) == DISTRICTS
    assert deliver_the_events(prefect_api, demo) == DISTRICTS
    _marker_behind(prefect_api, demo)
    # One compile for the directive: none for the eight "false" events nor for the redelivery.
    assert [r.parameters for r in compile_runs()
            if r.parameters.get("directive_slug") == SLUG] == [{"directive_slug": SLUG, "pdf": True}]
    assert len(compile_runs()) > before
    assert re.fullmatch(r"compile-provincial-report · สระแก้ว · สก ๐๐๑๙/ว ๒๕๒ · "
                        r"\d{1,2} \S+ 25\d\d \d\d:\d\d", run.name), run.name

    found = artifacts_of(run.id)
    assert {"compiled-xlsx-" + SLUG, "compiled-pdf-" + SLUG, "totals-" + SLUG} <= set(found)
    folder = demo.data_dir / "compiled" / SLUG
    for kind in ("xlsx", "pdf"):
        link = found[f"compiled-{kind}-{SLUG}"]
        assert link.type == "markdown", "Prefect stores a link artifact as markdown: [text](url)"
        url = re.search(r"\]\((.+)\)$", link.data).group(1)
        assert url == f"{BASE_URL}/directives/{SLUG}/reports/compiled.{kind}"
        written = folder / f"{SLUG}-compiled.{kind}"
        assert written.as_uri() in link.description and written.stat().st_size > 0
        _download_through_the_web(demo, url, kind, written)


def _download_through_the_web(demo: Demo, url: str, kind: str, written: Path) -> None:
    """The link, opened by the province's coordinator in the web app, gives the same document."""
    engine = db.engine_for(demo.url)
    app = make_app(engine, data_dir=demo.data_dir, base_url=BASE_URL)
    with TestClient(app, base_url=BASE_URL) as client:
        response = signed_in(client, "coordinator").get(url.removeprefix(BASE_URL))
    assert response.status_code == 200, response.text[:500]
    if kind == "pdf":
        assert response.content.startswith(b"%PDF") and written.read_bytes().startswith(b"%PDF")
        return
    import io

    web = load_workbook(io.BytesIO(response.content))
    disk = load_workbook(written)
    assert [list(s.values) for s in web.worksheets] == [list(s.values) for s in disk.worksheets]
    totals = {(r[0], r[1]): r[4] for r in disk["totals"].iter_rows(min_row=2, values_only=True)}
    assert totals[("participants", "total")] == 23 * 3 * DISTRICTS


@pytest.mark.prefect_server
def test_the_totals_table_holds_the_provincial_totals(prefect_api, demo, served):  # noqa: F811
    """Run in this process, tracked on the module's server (as `tidtam compile` does)."""
    from flows.compile_provincial_report import compile_provincial_report

    report = _in_process(demo, compile_provincial_report, directive_slug=SLUG,
                         now=datetime(2024, 8, 14, 10, 0, tzinfo=BKK))
    run = _run_named(f"{COMPILE} · สระแก้ว · สก ๐๐๑๙/ว ๒๕๒ · 14 ส.ค. 2567 10:00")
    table = artifacts_of(run.id)[f"totals-{SLUG}"]
    assert table.type == "table"
    rows = {row["item"]: row["count"] for row in json.loads(table.data)}
    assert rows["๒. รวมผู้เข้าร่วมกิจกรรม (คน) / participants"] == 23 * 3 * DISTRICTS == \
        report.totals.total_participants
    assert rows["จำนวนครั้งที่จัดกิจกรรม / sessions"] == 3 * DISTRICTS
    assert rows["อำเภอที่จังหวัดรับรายงานแล้ว / districts accepted"] == DISTRICTS
    assert rows["อำเภอที่ยังไม่มีรายงานที่รับแล้ว / districts missing"] == 0
    for category in report.totals.participants:  # 5 + 5 + 8 + 3 + 2 a session, 27 sessions
        assert rows[f"๒. {category.title_th} (คน) / {category.title_en}"] == category.count
    assert [c.count for c in report.totals.participants] == [5 * 27, 5 * 27, 8 * 27, 3 * 27, 2 * 27]
    assert sorted(report.accepted) == sorted(demo.report_ids)


@pytest.mark.prefect_server
def test_watching_again_leaves_one_compile_automation(served):
    """`tidtam watch-flows` after `tidtam serve` (or serve started twice): still one of each."""
    from tidtam.ops.automations import OPS_ALERT, TAG
    from tidtam.ops.deployments import watch

    with _client() as client:
        ops_alert = client.read_deployment_by_name(f"{OPS_ALERT}/{OPS_ALERT}").id
        before = sorted(a.id for a in client.read_automations() if TAG in a.tags)
    assert sorted(watch(ops_alert)) == sorted(watch(ops_alert)) == before
    with _client() as client:
        [automation] = client.read_automations_by_name(
            "tidtam: every district's report accepted, compile the provincial report")
    assert automation.trigger.expect == {"tidtam.report.accepted"}
    assert automation.trigger.match.model_dump() == {"prefect.resource.id": "tidtam.report.*",
                                                     "tidtam.all_accepted": "true"}
    [action] = automation.actions
    assert (action.deployment_id, action.parameters) == (_compile_deployment().id, {
        "directive_slug": '{{ event.resource.get("tidtam.directive") }}', "pdf": True})
    assert len(before) == 4


# --- The digest's markdown artifact ------------------------------------------------------------

@pytest.mark.prefect_server
def test_each_coordinators_digest_is_a_markdown_artifact(prefect_api, demo, served):  # noqa: F811
    from flows.coordinator_digest import coordinator_digest

    report = _in_process(demo, coordinator_digest, now=datetime(2024, 8, 13, 8, 0, tzinfo=BKK))
    assert report.artifacts == ["digest-27-coordinator"]
    run = _run_named("coordinator-digest · 13 ส.ค. 2567 08:00")
    assert run.state_name == "Completed"
    digest = artifacts_of(run.id)["digest-27-coordinator"]
    assert digest.type == "markdown"
    text = digest.data
    assert text.startswith("# สรุปงานประจำวัน · จังหวัดสระแก้ว · 13 สิงหาคม 2567\n")
    assert "ถึง ผู้ประสานงานจังหวัด (สาธิต) (coordinator)" in text
    assert "## สก ๐๐๑๙/ว ๒๕๒ " in text and "## สก ๐๐๑๙/ว ๒๘๗ " in text
    assert f"({BASE_URL}/directives/{FOLLOW_UP})" in text
    assert "| ขั้นตอน | ครบกำหนด | อำเภอ |" in text, "late steps are a table"
    assert "รายงานที่รอจังหวัดตรวจ" not in text.split("## สก ๐๐๑๙/ว ๒๘๗")[0], \
        "every report of the first letter is accepted: none waits"
    with _client() as client:
        [task_run] = client.read_task_runs(flow_run_filter=_only(run.id))
    assert task_run.name.startswith("send-digests") and task_run.state_name == "Completed"


def _in_process(demo: Demo, flow, **parameters):
    """A tracked run in this process on the demo database (settings read afresh)."""
    from tidtam.infra.settings import get_settings

    keep = {k: os.environ.get(k) for k in ("TIDTAM_DATABASE_URL", "TIDTAM_DATA_DIR",
                                           "TIDTAM_BASE_URL")}
    os.environ.update(TIDTAM_DATABASE_URL=demo.url, TIDTAM_DATA_DIR=str(demo.data_dir),
                      TIDTAM_BASE_URL=BASE_URL)
    get_settings.cache_clear()
    db.engine_for.cache_clear()
    try:
        return flow(**parameters)
    finally:
        for key, value in keep.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def _only(flow_run_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))


def _run_named(name: str):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with _client() as client:
        [run] = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=[name])))
    return run


# --- Parameters are checked by Prefect, in Thai and English ------------------------------------

@pytest.mark.parametrize("flow_module, flow_name", [
    ("flows.compile_provincial_report", "compile_provincial_report"),
    ("flows.coordinator_digest", "coordinator_digest"),
])
def test_a_naive_now_is_refused_before_the_run_starts(flow_module, flow_name):
    import importlib

    from prefect.exceptions import ParameterTypeError

    flow = getattr(importlib.import_module(flow_module), flow_name)
    with pytest.raises(ParameterTypeError) as refused:
        flow.validate_parameters({"now": "2024-08-13T08:00:00"})
    assert "ไม่ได้ระบุเขตเวลา" in str(refused.value) and "has no UTC offset" in str(refused.value)
    checked = flow.validate_parameters({"now": "2024-08-13T08:00:00+07:00"})
    assert checked["now"] == datetime(2024, 8, 13, 1, 0, tzinfo=UTC)


def test_a_malformed_slug_or_province_is_refused_in_thai_and_english():
    from prefect.exceptions import ParameterTypeError

    from flows.compile_provincial_report import compile_provincial_report
    from flows.coordinator_digest import coordinator_digest

    with pytest.raises(ParameterTypeError, match="ไม่ใช่รหัสหนังสือสั่งการ.*is not a slug"):
        compile_provincial_report.validate_parameters({"directive_slug": "Sa Kaeo!"})
    with pytest.raises(ParameterTypeError, match="ไม่ใช่รหัสจังหวัดสองหลัก.*two-digit"):
        coordinator_digest.validate_parameters({"province_code": "sakaeo"})


def test_an_artifact_key_is_lowercase_letters_digits_and_dashes():
    from flows.report_artifacts import artifact_key

    assert artifact_key("digest", "27", "Somchai.K_01") == "digest-27-somchai-k-01"
    assert artifact_key("totals", SLUG) == f"totals-{SLUG}"
    assert artifact_key("digest", "27", "สมชาย") == "digest-27", "nothing left of a Thai name"


def test_a_coordinator_whose_username_has_no_latin_letter_is_keyed_by_id():
    from types import SimpleNamespace

    from flows.report_artifacts import digest_artifacts

    province = SimpleNamespace(code="27", name_th="สระแก้ว")
    digest = SimpleNamespace(province=province, today=datetime(2024, 8, 13).date(), sections=[],
                             broken=[], late_count=0, waiting_count=0)
    people = [SimpleNamespace(id=7, username="สมชาย", full_name="สมชาย ใจดี"),
              SimpleNamespace(id=8, username="Coordinator.2", full_name="ผู้ประสานงาน")]
    found = digest_artifacts(digest, people, base_url=BASE_URL, tz=BKK)
    assert [a.key for a in found] == ["digest-27-user-7", "digest-27-coordinator-2"]
    assert found[0].markdown.startswith("# สรุปงานประจำวัน · จังหวัดสระแก้ว · 13 สิงหาคม 2567\n")
    assert "ถึง สมชาย ใจดี (สมชาย)" in found[0].markdown
