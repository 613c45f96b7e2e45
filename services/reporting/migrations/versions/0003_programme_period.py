"""the programme period on programme facts (the period an EC report covers)

Revision ID: 0003_programme_period
Revises: 0002_decommitment
Create Date: 2026-12-01 17:53:54.776556

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0003_programme_period"
down_revision: Union[str, Sequence[str], None] = "0002_decommitment"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("programme_facts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.Date(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("programme_facts", schema=None) as batch_op:
        batch_op.drop_column("period_end")
        batch_op.drop_column("period_start")
