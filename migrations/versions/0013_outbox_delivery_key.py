"""outbox: the delivery a row went out in

Reminders to one recipient on one channel are sent as one message a day (a LINE Flex carousel,
one e-mail): ``delivery_key`` names that message on every row it carried, so a retry resends
the same group once and LINE pushes are counted as messages, not rows (issue 13).

Existing rows: empty (each was sent on its own, and counts as its own message).

Revision ID: 0013
Revises: 0012
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_key', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_delivery_key'), ['delivery_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_delivery_key'))
        batch_op.drop_column('delivery_key')
