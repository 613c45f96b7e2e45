"""actual values of logframe indicators reported in accepted reports

Revision ID: 0005_indicator_results
Revises: 0004_expenditure_lines
Create Date: 2026-12-02 10:30:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0005_indicator_results"
down_revision: Union[str, Sequence[str], None] = "0004_expenditure_lines"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "indicator_result_facts",
        sa.Column("report_id", sa.String(length=60), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("reference", sa.String(length=60), nullable=False),
        sa.Column("programme_id", sa.String(length=60), nullable=False),
        sa.Column("window", sa.String(length=60), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("report_kind", sa.String(length=10), nullable=False),
        sa.Column("report_number", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("result_type", sa.String(length=10), nullable=False),
        sa.Column("result_title", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("measure", sa.String(length=12), nullable=False),
        sa.Column("unit", sa.String(length=60), nullable=False),
        sa.Column("baseline_value", sa.String(length=500), nullable=False),
        sa.Column("baseline_year", sa.Integer(), nullable=False),
        sa.Column("target_value", sa.String(length=500), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("actual_value", sa.String(length=500), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", "code"),
    )
    with op.batch_alter_table("indicator_result_facts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_indicator_result_facts_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_indicator_result_facts_programme_id"), ["programme_id"], unique=False)


def downgrade() -> None:
    op.drop_table("indicator_result_facts")
