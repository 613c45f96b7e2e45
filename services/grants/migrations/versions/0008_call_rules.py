"""the call's Annex III caps and longest duration, carried by call_opened, so amendments follow the call's rules

Revision ID: 0008_call_rules
Revises: 0007_pending_amendments
Create Date: 2026-12-02 05:10:00.000000

Calls opened before call_opened carried them keep NULL: EC PRAG's caps and no duration bound apply to them.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "0008_call_rules"
down_revision: Union[str, Sequence[str], None] = "0007_pending_amendments"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contingency_cap", sa.Numeric(precision=6, scale=4), nullable=True))
        batch_op.add_column(sa.Column("indirect_cap", sa.Numeric(precision=6, scale=4), nullable=True))
        batch_op.add_column(sa.Column("max_duration_months", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("max_duration_months")
        batch_op.drop_column("indirect_cap")
        batch_op.drop_column("contingency_cap")
