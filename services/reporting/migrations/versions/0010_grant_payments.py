"""what each grant was paid, as one row (grant_payments: the sum, the number and the distinct numbers of its
tranches): the budget report of everything recorded reads it instead of aggregating the tranches by grant

Revision ID: 0010_grant_payments
Revises: 0009_grant_contract_signed_on
Create Date: 2026-12-02 11:30:00

Filled in from the tranches already projected, on PostgreSQL and SQLite alike (repository.tally_payments's SQL).
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import services.common.storage.types


# revision identifiers, used by Alembic.
revision: str = "0010_grant_payments"
down_revision: Union[str, Sequence[str], None] = "0009_grant_contract_signed_on"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_FILL = """
INSERT INTO grant_payments (grant_id, paid, tranches, tranche_numbers)
SELECT grant_id, SUM(amount), COUNT(*), COUNT(DISTINCT tranche_number) FROM tranche_facts GROUP BY grant_id
"""


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "grant_payments",
        sa.Column("grant_id", sa.String(length=60), nullable=False),
        sa.Column("paid", services.common.storage.types.Money(), nullable=False),
        sa.Column("tranches", sa.Integer(), nullable=False),
        sa.Column("tranche_numbers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.execute(_FILL)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("grant_payments")
