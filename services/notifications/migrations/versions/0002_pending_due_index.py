"""the pending notifications indexed in the dispatcher's claim order (next_attempt_at, created_at), partial

Revision ID: 0002_pending_due_index
Revises: 0001
Create Date: 2026-12-04 02:20:00

The claim (`SELECT … WHERE status = 'pending' AND next_attempt_at <= now ORDER BY next_attempt_at, created_at
LIMIT 20 FOR UPDATE SKIP LOCKED`) walked ix_notifications_due (status, next_attempt_at) and sorted every row sharing
the first next_attempt_at by created_at: the rows one planning batch wrote share both, so each claim read a whole
batch of rows to keep 20, and more as the backlog grew. The partial index holds the pending rows only, in the
claim's order: the claim reads what it takes.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0002_pending_due_index"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_due")
    op.create_index(
        "ix_notifications_pending_due",
        "notifications",
        ["next_attempt_at", "created_at"],
        unique=False,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_notifications_pending_due", table_name="notifications")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["status", "next_attempt_at"], unique=False)
