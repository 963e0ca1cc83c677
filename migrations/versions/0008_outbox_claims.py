"""outbox claims: a claim is no longer an attempt

Until 0007 the pump counted an attempt when it claimed a row, so every claim that died with
its pump (kill -9, a lost machine) spent one of the row's 20 attempts without a try. From 0008
``claims`` counts claims (and is the fencing token of the claim's result) and ``attempts``
counts tries, each when its result is written.

Existing rows: ``claims`` starts at ``attempts`` (every claim so far spent one), and a row in
``sending`` (its claim's result not written yet) gets back the attempt its claim took, as it
will be counted when the result is written. Upgrade with the pumps stopped: a pump of the old
code still sending would find its claim moved on and its result refused (the row is then
reclaimed after its lease; LINE refuses the replay by its retry key).

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE outbox SET claims = attempts")
    op.execute("UPDATE outbox SET attempts = attempts - 1 WHERE status = 'sending' AND attempts > 0")


def downgrade() -> None:
    # The old code fences a claim on ``attempts``: a row in ``sending`` counts its claim there
    # again. Claims that ended without a result are forgotten (they were never tries).
    op.execute("UPDATE outbox SET attempts = attempts + 1 WHERE status = 'sending'")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('claims')
