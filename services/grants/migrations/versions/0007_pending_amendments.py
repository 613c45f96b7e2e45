"""amendments that raise an award wait for a second person (four eyes)

Revision ID: 0007_pending_amendments
Revises: 0006_termination
Create Date: 2026-12-01 21:30:00.000000

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0007_pending_amendments"
down_revision: Union[str, Sequence[str], None] = "0006_termination"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "pending_amendments",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("current_amount", services.common.storage.types.Money(), nullable=False),
        sa.Column("new_amount", services.common.storage.types.Money(), nullable=False),
        sa.Column("new_budget", sa.JSON(), nullable=True),
        sa.Column("new_annual_budgets", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", services.common.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", services.common.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pending_amendments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_amendments_grant_id"), ["grant_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("pending_amendments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_amendments_grant_id"))
    op.drop_table("pending_amendments")
