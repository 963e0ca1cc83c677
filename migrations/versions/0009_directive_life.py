"""a directive's life: loaded → active → closed, and the letter's revision

A province follows many directives at once (``tidtam.app.directives``). Each now says where it is
in its life — ``loaded`` (stored, nothing tracked yet), ``active`` (tracked and chased) or
``closed`` (never chased again, still readable) — who closed it, when and why, and which revision
of the letter it follows (an amended YAML raises ``revision:``; ``tidtam.app.amendment``).

Existing rows: every directive was launched when it was stored, so each is ``active``, except a
province's directive with no tracked item, which was stored and never launched (``loaded``); a
database that was at 0009 and went back down gets back the closures its audit log records (the
latest ``directive.close`` or ``directive.reopen`` entry of each directive, written with the same
instant, actor and reason as the columns). The revision is the one in the stored YAML (1 when it
has none).

Revision ID: 0009
Revises: 0008
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.Enum('loaded', 'active', 'closed', name='directivestatus',
                                                        native_enum=False, create_constraint=False,
                                                        length=24),
                                      server_default='active', nullable=False))
        batch_op.add_column(sa.Column('closed_at', models.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=120),
                                      nullable=True))
        batch_op.add_column(sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='1', nullable=False))
    bind = op.get_bind()
    op.execute("UPDATE directive SET status = 'loaded' WHERE province_code IS NOT NULL AND NOT EXISTS"
               " (SELECT 1 FROM tracked_item t WHERE t.directive_id = directive.id)")
    for directive_id, definition in bind.execute(sa.text("SELECT id, definition FROM directive")).all():
        definition = json.loads(definition) if isinstance(definition, str) else definition
        revision_no = (definition or {}).get("revision") or 1
        if revision_no != 1:
            bind.execute(sa.text("UPDATE directive SET revision = :r WHERE id = :id"),
                         {"r": revision_no, "id": directive_id})
    _closures_from_the_audit_log(bind)


def _closures_from_the_audit_log(bind) -> None:
    entries = bind.execute(sa.text(
        "SELECT a.id, d.id, a.action, a.actor, a.at, a.after FROM directive d JOIN audit_log a"
        " ON a.entity = 'directive' AND a.entity_id = CAST(d.id AS VARCHAR(20))"
        " AND a.action IN ('directive.close', 'directive.reopen') ORDER BY a.id")).all()
    latest = {directive_id: (action, actor, at, after)
              for _, directive_id, action, actor, at, after in entries}
    for directive_id, (action, actor, at, after) in latest.items():
        if action != 'directive.close':
            continue
        after = json.loads(after) if isinstance(after, str) else after  # SQLite: the JSON's text
        bind.execute(sa.text("UPDATE directive SET status = 'closed', closed_at = :at,"
                             " closed_by = :by, close_reason = :reason WHERE id = :id"),
                     {"at": at, "by": actor, "reason": (after or {}).get("reason"),
                      "id": directive_id})


def downgrade() -> None:
    # The code before 0009 knows no closed directive: a closed one is chased again after a
    # downgrade (its closure stays in the audit log, from which the upgrade restores it).
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.drop_column('revision')
        batch_op.drop_column('close_reason')
        batch_op.drop_column('closed_by')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('status')
