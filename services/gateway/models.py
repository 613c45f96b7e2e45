"""The gateway's database holds one table of the kit: the audit trail (of the requests it refused)."""

from sqlalchemy import MetaData

from services.common.storage.tables import audit_log

metadata = MetaData()
audit_log.to_metadata(metadata)
