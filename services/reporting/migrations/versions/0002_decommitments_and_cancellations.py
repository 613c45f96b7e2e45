"""facts of decommitments and of cancelled payment requests

Revision ID: 0002_decommitment
Revises: 0001
Create Date: 2026-12-01 18:00:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0002_decommitment"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "decommitment_facts",
        sa.Column("decommitment_id", sa.String(length=60), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("amount", services.common.storage.types.Money(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("decommitted_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("decommitment_id"),
    )
    with op.batch_alter_table("decommitment_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decommitment_facts_grant_id"), ["grant_id"], unique=False)

    op.create_table(
        "payment_cancellations",
        sa.Column("payment_id", sa.String(length=60), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("cancelled_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("payment_id"),
    )
    with op.batch_alter_table("payment_cancellations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_cancellations_grant_id"), ["grant_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("payment_cancellations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_cancellations_grant_id"))

    op.drop_table("payment_cancellations")
    with op.batch_alter_table("decommitment_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decommitment_facts_grant_id"))

    op.drop_table("decommitment_facts")
