"""the contract's signing date on the grant's row (grant_facts.contract_signed_on): the budget report reads
whether a grant was contracted by its date without a join to contract_facts

Revision ID: 0009_grant_contract_signed_on
Revises: 0008_heading_columns
Create Date: 2026-12-02 05:00:00

Filled in from the contracts already projected, on PostgreSQL and SQLite alike.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "0009_grant_contract_signed_on"
down_revision: Union[str, Sequence[str], None] = "0008_heading_columns"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_FILL = """
UPDATE grant_facts SET contract_signed_on = (
    SELECT c.signed_on FROM contract_facts c WHERE c.grant_id = grant_facts.grant_id)
WHERE grant_id IN (SELECT grant_id FROM contract_facts)
"""


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("grant_facts") as batch:
        batch.add_column(sa.Column("contract_signed_on", sa.Date(), nullable=True))
    op.execute(_FILL)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("grant_facts") as batch:
        batch.drop_column("contract_signed_on")
