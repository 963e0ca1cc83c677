"""PostgreSQL: the mark's unit takes its connection from the pool without the ping
(``tidtam.infra.db.unpinged``). Connections the server dropped while they sat in the pool
must then cost the click nothing: the unit's first statement (the sign-in and the item, a
read) meets the dead connection, and the unit runs again on a fresh one — written once, one
audit row, one event. Other requests keep the ping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from models.audit import AuditEntry
from models.directive import DirectiveStep, ItemStatus, StepKind, TrackedItem
from models.outbox import OutboxMessage
from tests.conftest import PG_ADMIN_URL
from tests.web.conftest import make_app
from tests.web.helpers import api_token, csrf, item_of, signed_in
from tidtam.infra import db


@pytest.fixture
def pg_engine(request) -> Iterator[Engine]:
    """A copy of the demo database on PostgreSQL, through ``engine_for`` (the app's pool)."""
    template = request.getfixturevalue("postgres_demo")
    name = f"tidtam_drop_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine = db.engine_for(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    yield engine
    engine.dispose()
    db.engine_for.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _drop_pooled_connections(engine: Engine) -> int:
    """The server ends every connection to this database but the one asking."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"),
                {"name": engine.url.database}).all())
    finally:
        admin.dispose()


def _open_items(engine: Engine, count: int) -> list[TrackedItem]:
    with Session(engine) as session:
        return list(session.exec(
            select(TrackedItem).join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
            .where(TrackedItem.status == ItemStatus.OPEN, DirectiveStep.kind != StepKind.REPORT)
            .order_by(TrackedItem.id).limit(count)))


def _written(engine: Engine, item_id: int) -> tuple[ItemStatus, int, int]:
    with Session(engine) as session:
        audits = session.exec(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "item.done", AuditEntry.entity_id == str(item_id))).one()
        events = session.exec(select(func.count()).select_from(OutboxMessage).where(
            col(OutboxMessage.idempotency_key).startswith(
                f"event:tidtam.item.completed:{item_id}:"))).one()
    return item_of(engine, *_codes(engine, item_id)).status, audits, events


def _codes(engine: Engine, item_id: int) -> tuple[str, str]:
    with Session(engine) as session:
        row = session.execute(text(
            "SELECT i.district_code, s.code FROM tracked_item i JOIN directive_step s "
            "ON s.id = i.step_id WHERE i.id = :id"), {"id": item_id}).one()
    return row[0], row[1]


def test_a_mark_on_a_dropped_connection_is_written_once(pg_engine):
    with TestClient(make_app(pg_engine)) as client:
        headers = api_token(client, "coordinator")
        first, second, third = _open_items(pg_engine, 3)
        assert client.post(f"/api/v1/items/{first.id}/done", headers=headers,
                           json={"version": first.version}).status_code == 200
        assert _drop_pooled_connections(pg_engine) >= 1

        answer = client.post(f"/api/v1/items/{second.id}/done", headers=headers,
                             json={"version": second.version})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == second.version + 1
        assert _written(pg_engine, second.id) == (ItemStatus.DONE, 1, 1)

        # The form route the same way, and a page (pinged as ever) after the drop.
        signed_in(client, "coordinator")
        _drop_pooled_connections(pg_engine)
        answer = client.post(f"/items/{third.id}/done", follow_redirects=False,
                             data={"csrftoken": csrf(client), "version": str(third.version)})
        assert answer.status_code == 303, answer.text
        assert _written(pg_engine, third.id) == (ItemStatus.DONE, 1, 1)
        _drop_pooled_connections(pg_engine)
        assert client.get(f"/items/{third.id}").status_code == 200
