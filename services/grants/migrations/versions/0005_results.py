"""the logframe of proposals and grants, actual values in reports, targets amendments

Revision ID: 0005_results
Revises: 0004_currencies
Create Date: 2026-12-02 10:00:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0005_results"
down_revision: Union[str, Sequence[str], None] = "0004_currencies"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logframe", sa.JSON(), nullable=True))
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logframe", sa.JSON(), nullable=True))
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actuals", sa.JSON(), nullable=True))
    with op.batch_alter_table("amendments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("targets", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("amendments", schema=None) as batch_op:
        batch_op.drop_column("targets")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("actuals")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("logframe")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("logframe")
