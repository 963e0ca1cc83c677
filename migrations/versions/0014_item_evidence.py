"""tracked_item.evidence: a step done from the district's report, and the session that proves it

A directive's report can prove steps (``form.proves``, ``domain/evidence.py``): submitting a report
whose session qualifies completes the step "from the report", and ``evidence`` keeps which report
and session prove it, so the board links to it and a later submit that no longer proves it can
open the step again without touching a step the district marked done by hand.

Existing rows: empty, unless the audit log says the step was done from a report (a database that
was at 0014 and went back down): the latest ``item.done``/``item.evidence`` entry written by a
report (``after.via = 'report.proves'``) of a done item gives its evidence back, as written.

Revision ID: 0014
Revises: 0013
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tracked_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence', sa.JSON(none_as_null=True), nullable=True))
    _evidence_from_the_audit_log()


def _evidence_from_the_audit_log() -> None:
    """Each done item's evidence from its latest change, when a report's proof made it."""
    bind = op.get_bind()
    entries = bind.execute(sa.text(
        "SELECT a.id, t.id, a.after FROM tracked_item t JOIN audit_log a"
        " ON a.entity = 'tracked_item' AND a.entity_id = CAST(t.id AS VARCHAR(20))"
        " AND a.action IN ('item.done', 'item.evidence', 'item.reopen')"
        " WHERE t.status = 'done' ORDER BY a.id")).all()
    latest = {item_id: after for _, item_id, after in entries}
    update = sa.text("UPDATE tracked_item SET evidence = :evidence WHERE id = :id").bindparams(
        sa.bindparam("evidence", type_=sa.JSON(none_as_null=True)))
    for item_id, after in latest.items():
        after = json.loads(after) if isinstance(after, str) else (after or {})  # SQLite: text
        if after.get("via") == "report.proves" and after.get("evidence"):
            bind.execute(update, {"evidence": after["evidence"], "id": item_id})


def downgrade() -> None:
    # Steps done from a report stay done (the code before 0014 keeps them so); their evidence
    # remains in the audit entries that wrote it, from which the upgrade fills the column again.
    with op.batch_alter_table('tracked_item', schema=None) as batch_op:
        batch_op.drop_column('evidence')
