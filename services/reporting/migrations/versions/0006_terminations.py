"""facts of early terminations

Revision ID: 0006_terminations
Revises: 0005_indicator_results
Create Date: 2026-12-01 21:45:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "0006_terminations"
down_revision: Union[str, Sequence[str], None] = "0005_indicator_results"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "termination_facts",
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("terminated_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("grant_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("termination_facts")
