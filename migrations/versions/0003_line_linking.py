"""line linking: one-time link codes, who follows the bot, groups bound to districts, webhook events seen

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:19:50.634287
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('line_contact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_user_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('followed_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unfollowed_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('line_user_id')
    )
    op.create_table('line_webhook_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_event_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('event_type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('received_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('webhook_event_id')
    )
    op.create_table('line_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
    sa.Column('joined_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('left_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('bound_by_id', sa.Integer(), nullable=True),
    sa.Column('bound_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['bound_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['district_code'], ['district.code'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id')
    )
    with op.batch_alter_table('line_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_group_district_code'), ['district_code'], unique=False)

    op.create_table('line_link_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('purpose', sa.Enum('user', 'group', name='codepurpose', native_enum=False, length=24), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('used_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['district_code'], ['district.code'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    with op.batch_alter_table('line_link_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_link_code_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('line_link_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_link_code_user_id'))

    op.drop_table('line_link_code')
    with op.batch_alter_table('line_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_group_district_code'))

    op.drop_table('line_group')
    op.drop_table('line_webhook_event')
    op.drop_table('line_contact')
