"""The `tidtam` command as an operator types it, against a fresh SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_database

TIDTAM = [sys.executable, "-m", "tidtam.cli"]


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_each_db(request, tmp_path, tmp_path_factory):
    yield from _cli(request.param, tmp_path, tmp_path_factory)


@pytest.fixture
def cli(tmp_path, tmp_path_factory):
    yield from _cli("sqlite", tmp_path, tmp_path_factory)


def _cli(kind, tmp_path, tmp_path_factory):
    """Run `tidtam …` in a subprocess against a new database; no Prefect server reachable."""
    url, drop = make_database(kind, tmp_path_factory)
    env = dict(os.environ, TIDTAM_DATA_DIR=str(tmp_path), TIDTAM_DATABASE_URL=url,
               TIDTAM_DEMO="1", PREFECT_API_URL="http://127.0.0.1:9/api")

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*TIDTAM, *args], env=env, capture_output=True, text=True,
                              timeout=120, cwd=Path(__file__).parents[2])
        if check and proc.returncode != 0:
            raise AssertionError(f"tidtam {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    yield run
    drop()


def outbox(cli) -> list[dict]:
    return json.loads(cli("outbox", "--json").stdout)


def test_init_demo_then_sweep_on_12_august(cli_each_db):
    cli = cli_each_db
    out = cli("init", "--demo").stdout
    assert "tidtam-demo-2567" in out and "9 districts" in out and "2 report drafts with photos" in out
    sweep = cli("sweep", "--now", "2024-08-12T09:00:00+07:00")
    assert "without orchestration" in sweep.stderr
    rows = outbox(cli)
    overdue_report = {r["district_code"] for r in rows
                      if r["rung"] == "due-today" and r["channel"] == "email"
                      and r["key"].startswith("due-today|2024-08-09|")}
    assert overdue_report == {f"270{n}" for n in range(1, 10)}
    cli("sweep", "--now", "2024-08-12T09:00:00+07:00")
    assert len(outbox(cli)) == len(rows)


def test_marking_done_before_the_sweep_means_no_message(cli):
    cli("init", "--demo")
    cli("mark-done", "2705", "G8", "--user", "staff-2705", "--note", "ส่งแล้ว")
    cli("sweep", "--now", "2024-08-12T09:00:00+07:00")
    status = json.loads(cli("status", "--json", "--today", "2024-08-12",
                            "--directive", "fy2567-sakaeo-volunteer-centers").stdout)
    row = next(d for d in status["districts"] if d["code"] == "2705")
    assert row["items"]["G8"] == "done"
    rows_2705 = [r for r in outbox(cli) if r["district_code"] == "2705"]
    assert rows_2705, "the other late items of 2705 are still chased"
    assert row["item_ids"]["G8"] not in {r["item_id"] for r in rows_2705}


def test_second_init_is_a_clear_error_and_changes_nothing(cli_each_db):
    cli = cli_each_db
    cli("init", "--demo")
    before = cli("status", "--json").stdout
    second = cli("init", "--demo", check=False)
    assert second.returncode == 1
    assert "initialised already" in second.stderr and "ตั้งค่าไว้แล้ว" in second.stderr
    assert cli("status", "--json").stdout == before
    assert cli("init", "--exist-ok").returncode == 0


BAD_INPUT = [
    (("mark-done", "9999", "G1", "--user", "staff-2701"), "9999"),
    (("mark-done", "2701", "NOPE", "--user", "staff-2701"), "NOPE"),
    (("mark-done", "2701", "G1", "--user", "staff-2703"), "2701"),
    (("sweep", "--now", "yesterday"), "ISO-8601"),
    (("sweep", "--now", "2024-08-12T09:00:00"), "timezone"),
]


def test_bad_input_is_refused_and_changes_nothing(cli):
    cli("init", "--demo")
    before = (cli("status", "--json").stdout, cli("outbox", "--json").stdout)
    for args, message in BAD_INPUT:
        proc = cli(*args, check=False)
        assert proc.returncode != 0, args
        assert message in proc.stderr and "ข้อผิดพลาด" in proc.stderr, (args, proc.stderr)
    assert (cli("status", "--json").stdout, cli("outbox", "--json").stdout) == before


def test_launching_a_malformed_directive_names_file_and_line(cli, tmp_path):
    cli("init")
    bad = tmp_path / "bad.yaml"
    bad.write_text("slug: x\nsteps:\n  - code: G1\n    due_on: not-a-date\n", encoding="utf-8")
    proc = cli("launch", str(bad), check=False)
    assert proc.returncode == 1
    assert "bad.yaml" in proc.stderr
    relaunch = cli("launch", "directives/fy2567-sakaeo-volunteer-centers.yaml")
    assert "0 new tracked items" in relaunch.stdout


def test_init_provinces_all_loads_the_departments_tree(cli):
    out = cli("init", "--provinces", "all").stdout
    assert "loaded 76 provinces, 878 districts" in out
    assert "108 tracked items" in out  # the FY 2567 Sa Kaeo directive: still Sa Kaeo's 9 × 12 steps


def test_init_with_a_bad_province_code_says_so_in_thai_and_english(cli):
    refused = cli("init", "--provinces", "27,99", check=False)
    assert refused.returncode == 2
    assert "ไม่พบรหัสจังหวัด 99" in refused.stderr and "unknown province code(s) 99" in refused.stderr
    assert "loaded" not in refused.stdout
