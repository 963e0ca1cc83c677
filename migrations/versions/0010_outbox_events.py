"""outbox: Prefect events and the review nudge

The outbox carries a channel for machines, ``prefect-event`` (every step an event, issue 12): the
column is a VARCHAR, so the new value needs no change of its own. Event rows and the review
nudge name no item or step, so two columns say what they are about: ``directive_id`` (whose
province sees the row, whose calendar it keeps) and ``report_id`` (the nudge is cancelled once
its report is reviewed).

Existing rows: both columns are empty (every earlier row is about an item, a step, or nothing).

Revision ID: 0010
Revises: 0009
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('directive_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('report_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_directive_id'), ['directive_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_report_id'), ['report_id'], unique=False)
        batch_op.create_foreign_key('fk_outbox_directive_id_directive', 'directive',
                                    ['directive_id'], ['id'])
        batch_op.create_foreign_key('fk_outbox_report_id_report', 'report', ['report_id'], ['id'])


def downgrade() -> None:
    # The code before 0010 knows no event channel: its rows would be 'not sent: no channel'.
    op.execute("DELETE FROM outbox WHERE channel = 'prefect-event'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_report_id_report', type_='foreignkey')
        batch_op.drop_constraint('fk_outbox_directive_id_directive', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_report_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_directive_id'))
        batch_op.drop_column('report_id')
        batch_op.drop_column('directive_id')
