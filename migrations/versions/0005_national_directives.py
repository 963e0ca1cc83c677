"""national directives and provincial reports

A directive with no province is the Department's (national); each province carries out its own
copy, which points at it (parent_id). A province's compiled report to the Department is a
provincial_report row.

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provincial_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('directive_id', sa.Integer(), nullable=False),
    sa.Column('province_code', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('districts_expected', sa.Integer(), nullable=False),
    sa.Column('districts_accepted', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('first_submitted_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['directive_id'], ['directive.id'], ),
    sa.ForeignKeyConstraint(['province_code'], ['province.code'], ),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('directive_id')
    )
    with op.batch_alter_table('provincial_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provincial_report_province_code'), ['province_code'], unique=False)

    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.alter_column('province_code',
               existing_type=sa.VARCHAR(length=2),
               nullable=True)
        batch_op.create_index(batch_op.f('ix_directive_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key('fk_directive_parent_id_directive', 'directive', ['parent_id'], ['id'])



def downgrade() -> None:
    # National directives have no province to fall back on: remove them first.
    op.execute("UPDATE directive SET parent_id = NULL")
    op.execute("DELETE FROM directive_step WHERE directive_id IN "
               "(SELECT id FROM directive WHERE province_code IS NULL)")
    op.execute("DELETE FROM directive WHERE province_code IS NULL")
    with op.batch_alter_table('directive', schema=None) as batch_op:
        batch_op.drop_constraint('fk_directive_parent_id_directive', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_directive_parent_id'))
        batch_op.alter_column('province_code',
               existing_type=sa.VARCHAR(length=2),
               nullable=False)
        batch_op.drop_column('parent_id')

    with op.batch_alter_table('provincial_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provincial_report_province_code'))

    op.drop_table('provincial_report')
