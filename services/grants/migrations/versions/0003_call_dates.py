"""dates of the call and its programme on call copies (awards and contracts are dated against them)

Revision ID: 0003_call_dates
Revises: 0002_decommitment
Create Date: 2026-12-01 17:53:02.176485

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0003_call_dates"
down_revision: Union[str, Sequence[str], None] = "0002_decommitment"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deadline", services.common.storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("programme_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("programme_end", sa.Date(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("programme_end")
        batch_op.drop_column("programme_start")
        batch_op.drop_column("deadline")
