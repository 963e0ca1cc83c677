"""Run names read like a logbook; retries only for transient database errors."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from domain.errors import Conflict, InvalidInput
from domain.runs import district_task_name, run_name
from flows._runs import is_transient_db_error

BKK = ZoneInfo("Asia/Bangkok")


def test_a_sweep_run_is_named_by_province_and_local_instant_in_buddhist_era():
    instant = datetime(2024, 8, 14, 1, 30, tzinfo=ZoneInfo("UTC"))
    assert run_name("escalation-sweep", instant, BKK, "สระแก้ว") == \
        "escalation-sweep · สระแก้ว · 14 ส.ค. 2567 08:30"
    assert run_name("coordinator-digest", instant, BKK, None) == \
        "coordinator-digest · 14 ส.ค. 2567 08:30"


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError):
        run_name("escalation-sweep", datetime(2024, 8, 14, 8, 30), BKK)


def test_a_district_task_is_named_by_its_name_and_code():
    assert district_task_name("เมืองสระแก้ว", "2701") == "เมืองสระแก้ว 2701"


def test_only_transient_database_errors_are_retried():
    locked = OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    gone = OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
    assert is_transient_db_error(locked)
    assert is_transient_db_error(gone)
    unique = IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_transient_db_error(unique)
    assert not is_transient_db_error(Conflict("already done", "ทำแล้ว"))
    assert not is_transient_db_error(InvalidInput("bad", "ผิด"))
    assert not is_transient_db_error(ValueError("bug"))
    assert not is_transient_db_error(None)
