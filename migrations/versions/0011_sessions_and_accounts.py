"""sessions that end: a row per sign-in and per API token, failed sign-ins, reset links

Every browser session and every API token is now a ``login_session`` row named by the SHA-256
of its secret; sign-out, a password change or disabling the account ends rows, so the old
cookie or token stops at once. ``sign_in_failure`` counts wrong passwords for the guessing
limits; ``password_reset`` holds one-time links. Existing cookies and tokens (signed, with no
row) stop working: everyone signs in again once.

Revision ID: 0011
Revises: 0010
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, models.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        'login_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('web', 'api', name='sessionkind', native_enum=False,
                                  create_constraint=False, length=8), nullable=False),
        _instant('created_at'), _instant('last_seen_at'), _instant('ended_at', True),
        sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'))
    op.create_index('ix_login_session_user_id', 'login_session', ['user_id'])
    op.create_table(
        'sign_in_failure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        _instant('at'),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_sign_in_failure_username', 'sign_in_failure', ['username'])
    op.create_index('ix_sign_in_failure_address', 'sign_in_failure', ['address'])
    op.create_index('ix_sign_in_failure_at', 'sign_in_failure', ['at'])
    op.create_table(
        'password_reset',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        _instant('created_at'), _instant('expires_at'), _instant('used_at', True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'))
    op.create_index('ix_password_reset_user_id', 'password_reset', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_password_reset_user_id', table_name='password_reset')
    op.drop_table('password_reset')
    for column in ('at', 'address', 'username'):
        op.drop_index(f'ix_sign_in_failure_{column}', table_name='sign_in_failure')
    op.drop_table('sign_in_failure')
    op.drop_index('ix_login_session_user_id', table_name='login_session')
    op.drop_table('login_session')
