"""outbox_delivery: the claim on a recipient's one message of the day

Two pumps running at once could each send one person that day's grouped message: each checked
that no row of the delivery was sent yet, and both were right until one of them sent. The
delivery key is now a row of its own (unique): a pass claims it by INSERT … ON CONFLICT DO
NOTHING or a conditional update before sending, and marks it sent in the transaction that marks
its rows sent, so the database lets one pass send it (issue 13).

Existing deliveries: none are written; a recipient's delivery already sent today is still
recognised by its rows (``delivery_went_out``).

Revision ID: 0015
Revises: 0014 (the integrator re-chains it after 0014)
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'outbox_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('lease_until', models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('sent_at', models.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('delivery_key'),
    )


def downgrade() -> None:
    op.drop_table('outbox_delivery')
