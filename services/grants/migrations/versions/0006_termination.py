"""early termination of grants, and who signed each contract (termination's four eyes)

Revision ID: 0006_termination
Revises: 0005_results
Create Date: 2026-12-01 21:40:00.000000

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0006_termination"
down_revision: Union[str, Sequence[str], None] = "0005_results"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("terminated_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("termination_reason", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("terminated_by", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("terminated_at", services.common.storage.types.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("terminated_at")
        batch_op.drop_column("terminated_by")
        batch_op.drop_column("termination_reason")
        batch_op.drop_column("terminated_on")
        batch_op.drop_column("signed_by")
