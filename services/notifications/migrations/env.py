from alembic import context

from services.notifications.models import Base
from services.common.storage.migrations import run_env
from services.common.storage.tables import kit_metadata

run_env(context, [kit_metadata, Base.metadata])
