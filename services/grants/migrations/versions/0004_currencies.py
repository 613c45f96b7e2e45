"""exchange rates, expenditure lines in their currencies, the conversion rule of a call

Revision ID: 0004_currencies
Revises: 0003_call_dates
Create Date: 2026-12-01 21:50:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


revision: str = "0004_currencies"
down_revision: Union[str, Sequence[str], None] = "0003_call_dates"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("rate_type", sa.String(length=20), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("published_at", services.common.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rate_type", "month", "currency"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency_conversion", sa.String(length=30), nullable=True))
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lines", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("lines")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("currency_conversion")
    op.drop_table("exchange_rates")
