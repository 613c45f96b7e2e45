"""budgets and accepted expenditure with the Annex III headings as columns: one row per grant budget
(budget_facts) and one per accepted report (report_expenditure_facts), so the report's totals by heading sum one
row per grant or report instead of one per heading

Revision ID: 0008_heading_columns
Revises: 0007_budget_line_facts
Create Date: 2026-12-02 01:30:00

Both are filled in from the rows already projected (budget_line_facts, expenditure_facts), on PostgreSQL and
SQLite alike.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types
from services.common.values.annex import HEADINGS


# revision identifiers, used by Alembic.
revision: str = "0008_heading_columns"
down_revision: Union[str, Sequence[str], None] = "0007_budget_line_facts"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _pivot(column: str) -> str:
    return ", ".join(f"MAX(CASE WHEN heading = '{h}' THEN {column} END)" for h in HEADINGS)


_BUDGETS = f"""
INSERT INTO budget_facts (grant_id, source, {", ".join(HEADINGS)}, {", ".join(f"{h}_ec" for h in HEADINGS)})
SELECT grant_id, source, {_pivot("amount")}, {_pivot("ec_part")}
FROM budget_line_facts GROUP BY grant_id, source
"""

_EXPENDITURE = f"""
INSERT INTO report_expenditure_facts (event_id, report_id, grant_id, accepted_on, {", ".join(HEADINGS)})
SELECT event_id, MIN(report_id), MIN(grant_id), MIN(accepted_on), {_pivot("amount")}
FROM expenditure_facts GROUP BY event_id
"""


def _heading_columns(suffix: str = "") -> list:
    return [sa.Column(f"{h}{suffix}", services.common.storage.types.Money(), nullable=True) for h in HEADINGS]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "budget_facts",
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        *_heading_columns(),
        *_heading_columns("_ec"),
        sa.PrimaryKeyConstraint("grant_id", "source"),
    )
    op.create_table(
        "report_expenditure_facts",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=60), nullable=False),
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=False),
        *_heading_columns(),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_report_expenditure_facts_grant_id"), "report_expenditure_facts", ["grant_id"], unique=False
    )
    op.execute(_BUDGETS)
    op.execute(_EXPENDITURE)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_report_expenditure_facts_grant_id"), table_name="report_expenditure_facts")
    op.drop_table("report_expenditure_facts")
    op.drop_table("budget_facts")
