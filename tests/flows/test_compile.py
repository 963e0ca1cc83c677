"""`tidtam compile` as an operator runs it, on SQLite and PostgreSQL: totals equal the districts' sums.

Three districts have accepted reports, one has only submitted, five have none (tests/unit/
test_exports.py holds the reports and the hand-added figures).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from models.directive import get_directive_by_slug
from models.report import Report, ReportStatus
from tests.conftest import NOW, make_database
from tests.unit.test_exports import EXPECTED, REPORTS
from tidtam.infra import db

TIDTAM = [sys.executable, "-m", "tidtam.cli"]
SLUG = "fy2567-sakaeo-volunteer-centers"


def add_reports(session: Session, directive_id: int, reports: dict = REPORTS) -> dict[str, Report]:
    """Report rows as the lifecycle leaves them (status and stored content), written directly."""
    rows = {}
    for code, (status, content) in reports.items():
        rows[code] = Report(directive_id=directive_id, district_code=code, status=ReportStatus(status),
                            content=content, created_at=NOW, updated_at=NOW,
                            submitted_at=NOW, accepted_at=NOW if status == "accepted" else None)
        session.add(rows[code])
    session.flush()
    return rows


def runner(url: str, data_dir: Path, api: str = "http://127.0.0.1:9/api"):
    """`tidtam …` in a subprocess on this database; by default no Prefect server is reachable."""
    env = dict(os.environ, TIDTAM_DATA_DIR=str(data_dir), TIDTAM_DATABASE_URL=url,
               TIDTAM_DEMO="1", PREFECT_API_URL=api)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*TIDTAM, *args], env=env, capture_output=True, text=True,
                              timeout=180, cwd=Path(__file__).parents[2])
        if check and proc.returncode != 0:
            raise AssertionError(f"tidtam {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def init_with_reports(run, url: str) -> None:
    """`tidtam init`, then the sample reports written straight into the database."""
    run("init")
    engine = db.engine_for(url)
    with db.session_scope(engine) as session:
        add_reports(session, get_directive_by_slug(session, SLUG).id)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def reported(request, tmp_path, tmp_path_factory):
    """A new database with the sample reports; yields the CLI runner."""
    url, drop = make_database(request.param, tmp_path_factory)
    run = runner(url, tmp_path / "data")
    init_with_reports(run, url)
    yield run
    drop()


def test_compile_json_totals_equal_the_hand_added_district_figures(reported, tmp_path):
    out = tmp_path / "out"
    proc = reported("compile", "--out", str(out), "--json")
    assert "without orchestration" in proc.stderr
    data = json.loads(proc.stdout)
    totals = data["totals"]
    assert {p["code"]: p["count"] for p in totals["participants"]} == EXPECTED["participants"]
    assert totals["total_participants"] == EXPECTED["total"] == 167
    assert (totals["centers"], totals["sessions"]) == (EXPECTED["centers"], EXPECTED["sessions"])
    kinds = {k["code"]: (k["places"], k["sessions"]) for k in totals["kinds"]}
    assert kinds == {k: v for k, v in EXPECTED["kinds"].items() if v != (0, 0)}
    assert data["accepted"] == EXPECTED["accepted"]
    missing = {d["code"]: d for d in data["missing"]}
    assert list(missing) == EXPECTED["missing"]
    assert missing["2703"]["status_th"] == "ส่งแล้ว รอจังหวัดตรวจ"
    assert missing["2709"]["name_th"] == "วังสมบูรณ์" and missing["2709"]["status"] == "none"

    names = sorted(Path(f).name for f in data["files"])
    assert names == sorted(f"{SLUG}-{n}" for n in ("compiled.xlsx", "totals.csv", "districts.csv",
                                                   "sessions.csv"))
    book = load_workbook(io.BytesIO((out / f"{SLUG}-compiled.xlsx").read_bytes()))
    value = {(r[0], r[1]): r[4] for r in book["totals"].iter_rows(min_row=2, values_only=True)}
    for code, count in EXPECTED["participants"].items():
        assert value[("participants", code)] == count
    assert value[("participants", "total")] == 167
    rows = list(book["districts"].iter_rows(values_only=True))
    total = rows[0].index("ผู้เข้าร่วมรวม (คน)")  # the headers are Thai
    by_code = {r[0]: r for r in rows[1:]}
    assert sum(by_code[c][total] for c in EXPECTED["accepted"]) == 167
    assert (out / f"{SLUG}-totals.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_compile_prints_thai_totals_and_missing_districts_and_refuses_an_unknown_directive(reported):
    proc = reported("compile")
    out = proc.stdout
    assert "ผู้นำจิตอาสาพัฒนาชุมชน" in out and "167" in out
    assert "อำเภอวังสมบูรณ์" in out and "ยังไม่ได้บันทึกรายงาน" in out
    assert "อำเภอตาพระยา" in out and "ส่งแล้ว รอจังหวัดตรวจ" in out
    assert f"/data/compiled/{SLUG}/{SLUG}-compiled.xlsx" in out, "the default folder is in the data dir"
    wrong = reported("compile", "--directive", "no-such-letter", check=False)
    assert wrong.returncode == 1
    assert "no-such-letter" in wrong.stderr and "ไม่พบหนังสือสั่งการ" in wrong.stderr


def test_the_deployment_is_declared_without_a_schedule():
    from tidtam.ops.deployments import deployments_from_yaml

    deployment = next(d for d in deployments_from_yaml() if d.name == "compile-provincial-report")
    assert deployment.schedules == []
    assert deployment.flow_name == "compile-provincial-report"


@pytest.mark.prefect_server
def test_with_a_prefect_server_compile_is_a_tracked_flow_run(tmp_path, tmp_path_factory):
    """The same command against a real `prefect server`: a completed run, the same totals."""
    import httpx

    from tests.helpers.prefect_server import PrefectServer

    server = PrefectServer(tmp_path / "prefect")
    (tmp_path / "prefect").mkdir()
    server.start()
    api = server.api
    try:
        url, _ = make_database("sqlite", tmp_path_factory)
        run = runner(url, tmp_path / "data", api)
        init_with_reports(run, url)
        proc = run("compile", "--out", str(tmp_path / "out"), "--json")
        assert "without orchestration" not in proc.stderr
        data = json.loads(proc.stdout)
        assert data["totals"]["total_participants"] == EXPECTED["total"]
        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
        states = [r["state_type"] for r in runs]
        assert states == ["COMPLETED"], runs
    finally:
        server.stop()
