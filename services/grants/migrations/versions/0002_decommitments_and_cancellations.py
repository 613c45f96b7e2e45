"""decommitment at closure; cancellable payment requests

A closed grant records what it gave back (grants.decommitted and one decommitments row); a payment request
may be cancelled (who, when, why), and only requests that are not cancelled hold their tranche.

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

LIVE = "status <> 'cancelled'"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "decommitments",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("amount", services.common.storage.types.Money(), nullable=False),
        sa.Column("committed_before", services.common.storage.types.Money(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", services.common.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("decommitments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decommitments_grant_id"), ["grant_id"], unique=False)

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decommitted", services.common.storage.types.Money(), nullable=True))

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancelled_by", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("cancelled_at", services.common.storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("cancel_reason", sa.String(length=2000), nullable=True))
        batch_op.drop_constraint("uq_payment_tranche", type_="unique")
    op.create_index(
        "uq_payment_tranche",
        "payments",
        ["grant_id", "tranche_number"],
        unique=True,
        postgresql_where=sa.text(LIVE),
        sqlite_where=sa.text(LIVE),
    )


def downgrade() -> None:
    """Downgrade schema (fails if a tranche has a cancelled request beside a live one)."""
    op.drop_index("uq_payment_tranche", table_name="payments")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_payment_tranche", ["grant_id", "tranche_number"])
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("cancelled_by")

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("decommitted")

    with op.batch_alter_table("decommitments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decommitments_grant_id"))

    op.drop_table("decommitments")
