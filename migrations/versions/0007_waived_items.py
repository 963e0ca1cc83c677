"""waived items: who marked a district's step not applicable (ยกเว้น), when, and why

``status = 'waived'`` has been a valid value since 0001 (a VARCHAR with no CHECK constraint);
this adds the waiver's own columns, kept apart from completed_by_id/completed_at because nothing
was completed (and a waiver is never counted late).

Revision ID: 0007
Revises: 0006
"""
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


def downgrade() -> None:
    # Waived items stay waived (the code before 0007 already counts them settled and never
    # chases them); who waived them and why remain in their item.waive audit entries.
    with op.batch_alter_table('tracked_item', schema=None) as batch_op:
        batch_op.drop_constraint('fk_tracked_item_waived_by_id_user', type_='foreignkey')
        batch_op.drop_column('waiver_reason')
        batch_op.drop_column('waived_at')
        batch_op.drop_column('waived_by_id')
