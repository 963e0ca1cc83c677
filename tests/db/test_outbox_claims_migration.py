"""Migration 0008 (outbox claims) on a database with rows in every state, down and up again."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from models.outbox import OutboxMessage, OutboxStatus
from tests.notifications.conftest import NOW, migrate_and_seed, outbox_message
from tidtam.infra import db

# key → (status, attempts before 0008) and (attempts, claims) after it
ROWS = {
    "sent-first-try": (OutboxStatus.SENT, 1, 1, 1),
    "queued-after-two-tries": (OutboxStatus.QUEUED, 2, 2, 2),
    "never-tried": (OutboxStatus.QUEUED, 0, 0, 0),
    # claimed (its attempt counted at the claim), the result not written yet: the attempt is
    # given back and counted when the result is written
    "sending-third-claim": (OutboxStatus.SENDING, 3, 2, 3),
}


def outbox(connection) -> dict[str, tuple]:
    columns = "idempotency_key, status, attempts" + (
        ", claims" if "claims" in {c["name"] for c in _columns(connection)} else "")
    return {key: tuple(rest) for key, *rest in connection.exec_driver_sql(
        f"SELECT {columns} FROM outbox ORDER BY id")}


def _columns(connection):
    from sqlalchemy import inspect

    return inspect(connection).get_columns("outbox")


def test_0008_turns_claims_into_attempts_and_back(fresh_engine):
    url = fresh_engine.url.render_as_string(hide_password=False)
    migrate_and_seed(fresh_engine)
    command.downgrade(db.alembic_config(url), "0007")
    zone = "" if fresh_engine.dialect.name == "sqlite" else "+00"  # SQLite keeps naive UTC
    with fresh_engine.begin() as connection:
        for n, (key, (status, before, _a, _c)) in enumerate(ROWS.items()):
            lease = (f"'2024-08-07 02:05:00{zone}'" if status == OutboxStatus.SENDING
                     else "NULL")
            connection.exec_driver_sql(
                "INSERT INTO outbox (idempotency_key, channel, recipient, subject, body, status, "
                "attempts, next_try_at, lease_until, created_at) VALUES "
                f"('{key}', 'line', 'U{n:032x}', 's', 'b', '{status.value}', {before}, "
                f"'2024-08-07 02:00:00{zone}', {lease}, '2024-08-07 02:00:00{zone}')")

    command.upgrade(db.alembic_config(url), "0008")
    with fresh_engine.connect() as connection:
        assert outbox(connection) == {key: (status.value, attempts, claims)
                                      for key, (status, _b, attempts, claims) in ROWS.items()}
    command.upgrade(db.alembic_config(url), "head")  # the models are the newest schema
    with fresh_engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                SQLModel.metadata) == []
    # a row inserted without the column gets no claims
    with Session(fresh_engine) as session:
        session.add(outbox_message("new", recipient="U" + "f" * 32))
        session.commit()
        assert session.exec(select(OutboxMessage.claims)
                            .where(OutboxMessage.idempotency_key == "new")).one() == 0

    command.downgrade(db.alembic_config(url), "0007")
    with fresh_engine.connect() as connection:
        assert outbox(connection) == {
            **{key: (status.value, before) for key, (status, before, _a, _c) in ROWS.items()},
            "new": (OutboxStatus.QUEUED.value, 0)}
    command.upgrade(db.alembic_config(url), "head")
    with Session(fresh_engine) as session:
        sending = session.exec(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == "sending-third-claim")).one()
        assert (sending.attempts, sending.claims) == (2, 3)
        assert sending.lease_until == NOW + timedelta(minutes=5)
