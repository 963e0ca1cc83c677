"""calendar feeds: a secret, revocable address per person or district

``calendar_feed`` holds one row per ICS address a person made (their own deadlines, or one
district's), named by the SHA-256 of its secret; ``revoked_at`` ends it (the address then
answers 404). No existing rows.

Revision ID: 0016
Revises: 0015
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'calendar_feed',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.Enum('person', 'district', name='feedscope', native_enum=False,
                                   create_constraint=False, length=8), nullable=False),
        sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
        sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.ForeignKeyConstraint(['district_code'], ['district.code']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'))
    op.create_index('ix_calendar_feed_user_id', 'calendar_feed', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_calendar_feed_user_id', table_name='calendar_feed')
    op.drop_table('calendar_feed')
