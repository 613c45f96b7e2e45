"""expenditure lines of reports in their own currencies (with the rate used and the EUR value)

Revision ID: 0004_expenditure_lines
Revises: 0003_programme_period
Create Date: 2026-12-01 22:40:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


revision: str = "0004_expenditure_lines"
down_revision: Union[str, Sequence[str], None] = "0003_programme_period"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "expenditure_line_facts",
        sa.Column("report_id", sa.String(length=60), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("heading", sa.String(length=40), nullable=False),
        sa.Column("amount", services.common.storage.types.Money(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("incurred_on", sa.Date(), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("rate", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("rate_type", sa.String(length=20), nullable=True),
        sa.Column("rate_month", sa.String(length=7), nullable=True),
        sa.Column("amount_eur", services.common.storage.types.Money(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", "line_no"),
    )
    with op.batch_alter_table("expenditure_line_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_expenditure_line_facts_grant_id"), ["grant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("expenditure_line_facts")
