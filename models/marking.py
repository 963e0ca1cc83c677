"""Marking a step done on the hot path of a click (bench P2): who is signed in and the item's
facts in one query, and on PostgreSQL the whole write in one statement.

- ``session_user_and_item``: the session row joined to its user (``models.sessions``'s
  ``session_and_user``) and, left-joined, the item with its step, directive, district and
  province (``models.directive.item_facts``): one round trip for the sign-in check and the read.
- ``write_done`` (PostgreSQL): data-modifying CTEs run as one statement, so one round trip and,
  on an autocommit connection, no BEGIN or COMMIT. The conditional ``UPDATE tracked_item …
  WHERE id, version, status = 'open' RETURNING version``; the item's queued messages cancelled;
  its step's grouped messages cancelled when no other item of the step is open; the audit row;
  the event's outbox row (``ON CONFLICT (idempotency_key) DO NOTHING``). Every other part reads
  the UPDATE's RETURNING, so a lost race (another writer changed the item first) writes
  nothing at all. The statement's parts all see one snapshot, taken before the UPDATE: the
  open-step check leaves the item itself out (it is being closed), which is what the separate
  statements saw after the UPDATE.

The values that never change (statuses, the audit action, the cancel reasons, the event's
channel and recipient) are SQL literals: the statement has 14 bound parameters, and psycopg
prepares it on the server after a few uses.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, text
from sqlalchemy import select as sa_select
from sqlmodel import Session

from models.directive import _ITEM_FACTS, ItemFacts, TrackedItem
from models.sessions import _SESSION_AND_USER, LoginSession, SessionKind
from models.user import User

_SESSION_WIDTH = len(_SESSION_AND_USER.selected_columns)


class SessionUserAndItem(NamedTuple):
    """``session_and_user``'s row (``session_id``, ``created_at``, ``ended_at``, ``is_active``,
    then ``UserPublic``'s fields, by name) and the item's facts (None when there is no item)."""

    session: Any
    facts: ItemFacts | None


def session_user_and_item(session: Session, key_hash: str, kind: SessionKind,
                          item_id: int) -> SessionUserAndItem | None:
    """The session this key names with its user and the item, in one prepared query; None when
    the key names no session."""
    row = session.execute(_SESSION_USER_AND_ITEM, {"key_hash": key_hash, "kind": kind,
                                                   "item_id": item_id}).first()
    if row is None:
        return None
    values = tuple(row)
    user = _UserRow(dict(zip(_SESSION_KEYS, values[:_SESSION_WIDTH], strict=True)))
    facts = values[_SESSION_WIDTH:]
    return SessionUserAndItem(user, ItemFacts(*facts) if facts[0] is not None else None)


class _UserRow:
    """``session_and_user``'s row as attributes and a ``_mapping`` (what ``live_user`` reads)."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


def _session_user_and_item_query():
    login, user = LoginSession.__table__, User.__table__
    item_join = _ITEM_FACTS.get_final_froms()[0]  # item ⋈ step ⋈ directive ⋈ district ⟕ province
    item = TrackedItem.__table__
    columns = [c.label(f"s_{i}") for i, c in enumerate(_SESSION_AND_USER.selected_columns)]
    columns += [c.label(f"f_{i}") for i, c in enumerate(_ITEM_FACTS.selected_columns)]
    return (sa_select(*columns)
            .select_from(login.join(user, user.c.id == login.c.user_id)
                         .outerjoin(item_join, item.c.id == bindparam("item_id")))
            .where(login.c.key_hash == bindparam("key_hash"), login.c.kind == bindparam("kind")))


_SESSION_KEYS = tuple(c.key for c in _SESSION_AND_USER.selected_columns)
_SESSION_USER_AND_ITEM = _session_user_and_item_query()


def write_done(session: Session, *, item_id: int, version: int, step_id: int, actor_id: int,
               actor: str, now: datetime, note: str | None, before: dict, after: dict,
               event_key: str, event_subject: str, event_body: str, district_code: str,
               directive_id: int) -> tuple[int, int] | None:
    """PostgreSQL: mark the item done if it is still open at ``version``, with everything that
    goes with it, in one statement (see the module's docstring). The item's new version and how
    many queued messages were cancelled; None when the item had changed (nothing written).

    ``after``: the audit row's ``after`` but for ``cancelled_messages``, which the statement
    counts and appends (the row's JSON is the same text ``models.audit.insert`` writes)."""
    head = json.dumps(after)
    after_head = (head[:-1] + ", " if after else "{") + '"cancelled_messages": '
    row = session.execute(_WRITE_DONE, {
        "item_id": item_id, "version": version, "step_id": step_id, "actor_id": actor_id,
        "actor": actor, "now": now, "note": note, "before": json.dumps(before),
        "after_head": after_head, "event_key": event_key, "event_subject": event_subject,
        "event_body": event_body, "district_code": district_code, "directive_id": directive_id,
    }).first()
    return (row[0], row[1]) if row is not None else None


# The values models.outbox.cancel_pending_for_item / cancel_grouped_for_closed_steps,
# models.audit.insert and tidtam.app.events.emit write, as literals.
_WRITE_DONE = text("""
WITH marked AS (
    UPDATE tracked_item
       SET version = version + 1, status = 'done', completed_by_id = :actor_id,
           completed_at = :now, note = :note
     WHERE id = :item_id AND version = :version AND status = 'open'
 RETURNING id, version
), item_cancelled AS (
    UPDATE outbox SET status = 'cancelled', last_error = 'item completed before sending'
     WHERE item_id = :item_id AND status = 'queued' AND EXISTS (SELECT FROM marked)
 RETURNING 1
), step_cancelled AS (
    UPDATE outbox
       SET status = 'cancelled',
           last_error = 'every district listed completed the step before sending'
     WHERE status = 'queued' AND item_id IS NULL AND step_id = :step_id
       AND EXISTS (SELECT FROM marked)
       AND NOT EXISTS (SELECT FROM tracked_item
                        WHERE step_id = :step_id AND status = 'open' AND id <> :item_id)
 RETURNING 1
), cancelled AS (
    SELECT (SELECT count(*) FROM item_cancelled) + (SELECT count(*) FROM step_cancelled) AS n
), audited AS (
    INSERT INTO audit_log (at, actor_id, actor, action, entity, entity_id, before, after)
    SELECT :now, :actor_id, :actor, 'item.done', 'tracked_item', CAST(marked.id AS VARCHAR),
           CAST(:before AS JSON), CAST(CAST(:after_head AS TEXT) || cancelled.n || '}' AS JSON)
      FROM marked, cancelled
), evented AS (
    INSERT INTO outbox (idempotency_key, channel, recipient, district_code, directive_id,
                        subject, body, status, attempts, claims, next_try_at, created_at)
    SELECT :event_key, 'prefect-event', 'prefect', :district_code, :directive_id,
           :event_subject, :event_body, 'queued', 0, 0, :now, :now
      FROM marked
        ON CONFLICT (idempotency_key) DO NOTHING
)
SELECT marked.version, cancelled.n FROM marked, cancelled
""").bindparams(bindparam("now", type_=TrackedItem.__table__.c.completed_at.type))
