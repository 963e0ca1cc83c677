"""waived items: who marked a district's step not applicable (ยกเว้น), when, and why

``status = 'waived'`` has been a valid value since 0001 (a VARCHAR with no CHECK constraint);
this adds the waiver's own columns, kept apart from completed_by_id/completed_at because nothing
was completed (and a waiver is never counted late).

An item waived before this migration keeps these columns empty, unless the audit log says who waived it,
when and why (an ``item.waive`` entry: a database that was at 0007 and went back down): they are
filled from its latest entry, as the waiver wrote them, so a downgrade and upgrade lose nothing.

Revision ID: 0007
Revises: 0006
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tracked_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waived_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('waived_at', models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('waiver_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_foreign_key('fk_tracked_item_waived_by_id_user', 'user', ['waived_by_id'], ['id'])
    _waivers_from_the_audit_log()


def _waivers_from_the_audit_log() -> None:
    """Who waived each waived item, when and why, from its latest item.waive audit entry.

    The waiver writes the entry with the same instant, actor and reason as the item's columns
    (``tidtam.app.tracking.waive``), so the values are copied as stored, not re-encoded.
    """
    bind = op.get_bind()
    entries = bind.execute(sa.text(
        "SELECT a.id, t.id, a.actor_id, a.at, a.after FROM tracked_item t JOIN audit_log a"
        " ON a.entity = 'tracked_item' AND a.entity_id = CAST(t.id AS VARCHAR(20))"
        " AND a.action = 'item.waive' WHERE t.status = 'waived' ORDER BY a.id")).all()
    latest = {item_id: (actor_id, at, after) for _, item_id, actor_id, at, after in entries}
    for item_id, (actor_id, at, after) in latest.items():
        after = json.loads(after) if isinstance(after, str) else after  # SQLite: the JSON's text
        bind.execute(sa.text("UPDATE tracked_item SET waived_by_id = :by, waived_at = :at,"
                             " waiver_reason = :reason WHERE id = :id"),
                     {"by": actor_id, "at": at, "reason": (after or {}).get("reason"), "id": item_id})


def downgrade() -> None:
    # Waived items stay waived (the code before 0007 already counts them settled and never
    # chases them); who waived them and why remain in their item.waive audit entries, from which
    # the upgrade fills the columns again.
    with op.batch_alter_table('tracked_item', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tracked_item_waived_by_id_user', type_='foreignkey')
        batch_op.drop_column('waiver_reason')
        batch_op.drop_column('waived_at')
        batch_op.drop_column('waived_by_id')
