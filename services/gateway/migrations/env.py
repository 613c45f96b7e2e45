from alembic import context

from services.common.storage.migrations import run_env
from services.gateway.models import metadata

run_env(context, metadata)
