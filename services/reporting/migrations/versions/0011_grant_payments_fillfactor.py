"""grant_payments keeps free room on its pages (fillfactor 70, PostgreSQL): the fact writer updates a grant's row
in place (repository.tally_payments, an upsert), as a HOT update pruned on the page without VACUUM

Revision ID: 0011_grant_payments_fillfactor
Revises: 0010_grant_payments
Create Date: 2026-12-02 17:30:00

The rows are written again (TRUNCATE, then filled from the tranches as 0010 did) so that the pages already there
have the room too. Nothing to do on SQLite.
"""

from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0011_grant_payments_fillfactor"
down_revision: Union[str, Sequence[str], None] = "0010_grant_payments"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

FILLFACTOR = 70  # the share of each page filled by inserts: the rest takes the updated versions of its rows

_FILL = """
INSERT INTO grant_payments (grant_id, paid, tranches, tranche_numbers)
SELECT grant_id, SUM(amount), COUNT(*), COUNT(DISTINCT tranche_number) FROM tranche_facts GROUP BY grant_id
"""


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE grant_payments SET (fillfactor = {FILLFACTOR})")
    op.execute("TRUNCATE grant_payments")
    op.execute(_FILL)


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE grant_payments RESET (fillfactor)")
