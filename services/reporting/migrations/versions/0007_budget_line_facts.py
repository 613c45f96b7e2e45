"""budget lines as facts: each heading of a grant's budget (as awarded or amended) with the EC's part of it;
grant facts indexed in the report's order (reference, grant id), by which its grant lines are paged

Revision ID: 0007_budget_line_facts
Revises: 0006_terminations
Create Date: 2026-12-01 22:00:00

On PostgreSQL the lines of the grants and amendments already projected are filled in from their JSON budgets
(the same largest-remainder rule as budget_report.ec_part_by_heading, in integer cents); on SQLite the report
does not read them (a rebuild fills them).
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0007_budget_line_facts"
down_revision: Union[str, Sequence[str], None] = "0006_terminations"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_BACKFILL = """
WITH budgets AS (
    SELECT grant_id, 'award' AS source, amount, budget FROM grant_facts
    UNION ALL
    SELECT grant_id, amendment_id, amount, budget FROM amendment_facts),
lines AS (
    SELECT b.grant_id, b.source, b.amount AS award, e.key AS heading, e.ord AS position,
           trunc(e.value::numeric * 100)::bigint AS cents
    FROM budgets b, json_each_text(b.budget) WITH ORDINALITY AS e(key, value, ord)
    WHERE json_typeof(b.budget) = 'object'),
totals AS (
    SELECT *, SUM(cents) OVER (PARTITION BY grant_id, source) AS total FROM lines),
parts AS (
    SELECT *, LEAST(award, total) AS share,
           CASE WHEN total > 0 THEN div(LEAST(award, total)::numeric * cents, total) ELSE 0 END AS part,
           CASE WHEN total > 0 THEN mod(LEAST(award, total)::numeric * cents, total) ELSE 0 END AS remainder
    FROM totals),
ranked AS (
    SELECT *, share - SUM(part) OVER (PARTITION BY grant_id, source) AS left_over,
           ROW_NUMBER() OVER (PARTITION BY grant_id, source ORDER BY remainder DESC, position) AS rank
    FROM parts)
INSERT INTO budget_line_facts (grant_id, source, heading, position, amount, ec_part)
SELECT grant_id, source, heading, position, cents,
       part + CASE WHEN total > 0 AND rank <= left_over THEN 1 ELSE 0 END
FROM ranked
ON CONFLICT DO NOTHING
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "budget_line_facts",
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column("heading", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("amount", services.common.storage.types.Money(), nullable=False),
        sa.Column("ec_part", services.common.storage.types.Money(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", "source", "heading"),
    )
    op.create_index("ix_grant_facts_reference_grant_id", "grant_facts", ["reference", "grant_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_BACKFILL)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_grant_facts_reference_grant_id", table_name="grant_facts")
    op.drop_table("budget_line_facts")
