"""outbox and directives: rungs named by meaning (`overdue` → `due-today`), the `late` rule

Issue 13: the due-day notice was stored as rung ``overdue``, so a district that finished on time
looked chased. The rung is now ``due-today``; the district's repeated reminders after the due date
are the new rung ``late`` (the ladder's ``late: {every, up_to}``).

Existing rows:

- outbox: ``rung`` ``overdue`` becomes ``due-today``, and so does the first part of an
  idempotency key ``overdue|<occurrence>|<subject>|<recipient>|<channel>``: the sweep now builds
  ``due-today|...`` for the same notice and day, and a key left as it was would let it queue the
  notice a second time. The key is UNIQUE; no ``due-today|`` key exists before this revision.
  Run it with the pump stopped: LINE's retry key is derived from the idempotency key, so a row
  caught between a timed-out send and its retry would retry under a new one.
- directive: in ``definition.ladder.rungs`` (the YAML as stored), a rung coded ``overdue``
  becomes ``due-today``; a ladder without ``late`` gets the default written out
  (``{every: 2, up_to: 5, audience: [district_staff, district_head], channels: [line, email]}``),
  which is what the code applies to it anyway. Definitions of another shape are left alone.

Downgrade: the reverse renames; ``late`` is removed from every stored ladder (the code before
0012 refuses an unknown field), so a directive whose ``late`` differs from the default gets the
default back on the next upgrade. Outbox rows of rung ``late`` stay (the rung column is free text).

Revision ID: 0012
Revises: 0011
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD, NEW = "overdue", "due-today"
DEFAULT_LATE = {"every": 2, "up_to": 5, "audience": ["district_staff", "district_head"],
                "channels": ["line", "email"]}


def _rename_outbox(old: str, new: str) -> None:
    op.execute(sa.text("UPDATE outbox SET rung = :new WHERE rung = :old")
               .bindparams(old=old, new=new))
    op.execute(sa.text("UPDATE outbox SET idempotency_key = :new || substr(idempotency_key, :cut) "
                       "WHERE idempotency_key LIKE :prefix")
               .bindparams(new=new, cut=len(old) + 1, prefix=f"{old}|%"))


def _rewrite_ladders(old: str, new: str, *, late: bool) -> None:
    """Rename the rung in every stored ladder; add the default ``late`` (upgrade) or drop it."""
    connection = op.get_bind()
    directive = sa.table("directive", sa.column("id", sa.Integer), sa.column("definition", sa.JSON))
    for directive_id, definition in connection.execute(
            sa.select(directive.c.id, directive.c.definition)).all():
        raw = json.loads(definition) if isinstance(definition, str) else definition
        ladder = raw.get("ladder") if isinstance(raw, dict) else None
        if not isinstance(ladder, dict) or not isinstance(ladder.get("rungs"), list):
            continue
        before = json.dumps(ladder, sort_keys=True)
        for rung in ladder["rungs"]:
            if isinstance(rung, dict) and rung.get("code") == old:
                rung["code"] = new
        if late:
            ladder.setdefault("late", dict(DEFAULT_LATE))
        else:
            ladder.pop("late", None)
        if json.dumps(ladder, sort_keys=True) != before:
            connection.execute(sa.update(directive).where(directive.c.id == directive_id)
                               .values(definition=raw))


def upgrade() -> None:
    _rename_outbox(OLD, NEW)
    _rewrite_ladders(OLD, NEW, late=True)


def downgrade() -> None:
    _rename_outbox(NEW, OLD)
    _rewrite_ladders(NEW, OLD, late=False)
