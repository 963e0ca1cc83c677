"""department viewer: a user may belong to no province (the Department sits above them)

The role itself needs no change: roles are stored by value in a VARCHAR(24) with no CHECK
constraint, so "department_viewer" fits as it is.

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('province_code', existing_type=sqlmodel.sql.sqltypes.AutoString(length=2),
                              nullable=True)


def downgrade() -> None:
    # Department viewers have no province to fall back on: remove them before going back.
    op.execute("DELETE FROM \"user\" WHERE province_code IS NULL")
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.alter_column('province_code', existing_type=sqlmodel.sql.sqltypes.AutoString(length=2),
                              nullable=False)
