from alembic import context

from services.reporting.models import Base
from services.common.storage.migrations import run_env
from services.common.storage.tables import kit_metadata

run_env(context, [kit_metadata, Base.metadata])
