"""each grant's standing in the report of everything recorded, kept as one row (grant_standing): the report reads
it instead of computing every grant's amendment, closure, payments and expenditure on every call

Revision ID: 0012_grant_standing
Revises: 0011_grant_payments_fillfactor
Create Date: 2026-12-03 17:40:00

The table is the model's (models.GrantStandingRow; fillfactor 70 on PostgreSQL). On PostgreSQL it is filled from
the facts already projected by the fact writer's own statement (standing.compute_all); on SQLite the report is
computed in Python and the table stays empty.
"""

from typing import Sequence, Union

from alembic import op

from services.reporting import standing
from services.reporting.models import GrantStandingRow


# revision identifiers, used by Alembic.
revision: str = "0012_grant_standing"
down_revision: Union[str, Sequence[str], None] = "0011_grant_payments_fillfactor"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    bind = op.get_bind()
    GrantStandingRow.__table__.create(bind)
    if bind.dialect.name == "postgresql":
        standing.compute_all(bind)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table(GrantStandingRow.__tablename__)
