"""initial schema: the audit trail of refused requests

Revision ID: 0001
Revises:
Create Date: 2026-12-02 09:00:00

"""

from typing import Sequence, Union

from services.common.storage.kit_schema import create_audit_log_v1, drop_audit_log_v1

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    create_audit_log_v1()


def downgrade() -> None:
    drop_audit_log_v1()
