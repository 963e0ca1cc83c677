"""The audit log: who changed what, from what, to what, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlalchemy import insert as sa_insert
from sqlmodel import Column, Field, Session, SQLModel, select

from models.types import UTCDateTime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    # Every page showing a history reads one entity's entries: without this, a scan of the
    # whole log (it only grows).
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor: str = Field(description="username, or 'system:<flow>' for automation")
    action: str = Field(index=True, description="e.g. item.done, directive.launch")
    entity: str
    entity_id: str
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


def record(session: Session, *, at: datetime, actor: str, action: str, entity: str,
           entity_id: object, before: dict | None = None, after: dict | None = None,
           actor_id: int | None = None) -> AuditEntry:
    """Add an audit entry to the caller's transaction (it commits with the change)."""
    entry = AuditEntry(at=at, actor=actor, actor_id=actor_id, action=action, entity=entity,
                       entity_id=str(entity_id), before=before, after=after)
    session.add(entry)
    return entry


def insert(session: Session, *, at: datetime, actor: str, action: str, entity: str,
           entity_id: object, before: dict | None = None, after: dict | None = None,
           actor_id: int | None = None) -> None:
    """``record`` as one prepared INSERT, written at once (no ORM object, no flush): for a hot
    path that reads no entry back (marking a step done, bench P2). Same row, same transaction."""
    session.execute(_INSERT, {"at": at, "actor": actor, "actor_id": actor_id, "action": action,
                              "entity": entity, "entity_id": str(entity_id), "before": before,
                              "after": after})


_INSERT = sa_insert(AuditEntry.__table__)


def entries_for(session: Session, entity: str, entity_id: object) -> list[AuditEntry]:
    return list(session.exec(select(AuditEntry).where(
        AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id)).order_by(AuditEntry.id)))
