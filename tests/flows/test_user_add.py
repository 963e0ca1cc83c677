"""`tidtam user-add`: real accounts, the Department viewer among them; bad input changes nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from domain.access import Role
from models.audit import AuditEntry
from models.user import User, get_by_username
from tidtam.app.accounts import authenticate
from tidtam.app.orgtree import load_provinces
from tidtam.cli import app
from tidtam.infra import db

PASSWORD = "a-long-enough-password"


@pytest.fixture
def cli(cli_database):
    """The real CLI over a migrated SQLite database holding Sa Kaeo."""
    db.migrate(cli_database)
    engine = db.engine_for(cli_database)
    with Session(engine) as session:
        load_provinces(session, ["27"])
        session.commit()
    runner = CliRunner()

    def run(*args: str, password: str = PASSWORD):
        return runner.invoke(app, ["user-add", *args, "--password-stdin"], input=password + "\n")

    return run, engine


def count(engine, model) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def test_a_department_viewer_and_district_staff_are_created_and_can_sign_in(cli):
    run, engine = cli
    made = run("dept-somchai", "--role", "department_viewer", "--full-name", "สมชาย ใจดี")
    assert made.exit_code == 0, made.output
    staff = run("staff-a", "--role", "district_staff", "--full-name", "ก", "--province", "27",
                "--district", "2701", "--email", "a@example.org")
    assert staff.exit_code == 0, staff.output
    with Session(engine) as session:
        viewer = authenticate(session, "dept-somchai", PASSWORD)
        assert viewer is not None and viewer.role == Role.DEPARTMENT_VIEWER
        assert viewer.province_code is None and viewer.password_hash.startswith("$argon2")
        assert get_by_username(session, "staff-a").district_code == "2701"
        actions = session.exec(select(AuditEntry.action).where(AuditEntry.entity == "user")).all()
        assert actions.count("user.add") == 2


@pytest.mark.parametrize(("args", "password", "message"), [
    (["x", "--role", "department_viewer", "--full-name", "x", "--province", "27"], PASSWORD,
     "belongs to no province"),
    (["x", "--role", "coordinator", "--full-name", "x"], PASSWORD, "needs a province"),
    (["x", "--role", "district_staff", "--full-name", "x", "--province", "27"], PASSWORD,
     "need --district"),
    (["x", "--role", "district_staff", "--full-name", "x", "--province", "27", "--district",
      "5001"], PASSWORD, "no district 5001 in province 27"),
    (["x", "--role", "coordinator", "--full-name", "x", "--province", "99"], PASSWORD,
     "no province 99"),
    (["x", "--role", "king", "--full-name", "x"], PASSWORD, "unknown role"),
    (["x", "--role", "coordinator", "--full-name", "x", "--province", "27"], "short",
     "at least 12 characters"),
    (["x y", "--role", "coordinator", "--full-name", "x", "--province", "27"], PASSWORD,
     "letters, digits"),
])
def test_bad_input_is_refused_in_thai_and_english_and_nothing_is_written(cli, args, password,
                                                                         message):
    run, engine = cli
    answer = run(*args, password=password)
    assert answer.exit_code != 0 and message in answer.output
    assert "ข้อผิดพลาด" in answer.output
    assert count(engine, User) == 0 and count(engine, AuditEntry) == 0


def test_a_taken_username_is_refused(cli):
    run, engine = cli
    assert run("coord", "--role", "coordinator", "--full-name", "x", "--province", "27").exit_code == 0
    again = run("coord", "--role", "coordinator", "--full-name", "y", "--province", "27")
    assert again.exit_code == 1 and "exists already" in again.output
    assert count(engine, User) == 1
