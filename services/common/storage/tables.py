"""Tables the kit keeps in every service's own database: outbox, inbox, dead letters, leases, audit trail."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

kit_metadata = MetaData()

# BigInteger ids that stay INTEGER on SQLite, so AUTOINCREMENT-style rowids keep working there
Id = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    kit_metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(60), nullable=False),
    Column("exchange", String(120), nullable=False),
    Column("routing_key", String(120), nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
)
# the relay only ever looks for pending rows: keep that index small
Index(
    "ix_outbox_pending",
    outbox.c.id,
    postgresql_where=text("published_at IS NULL"),
    sqlite_where=text("published_at IS NULL"),
)

inbox = Table(
    "inbox",
    kit_metadata,
    Column("consumer", String(120), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("event_type", String(60), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

dead_letters = Table(
    "dead_letters",
    kit_metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("consumer", String(120), nullable=False),
    Column("event_id", String(36)),
    Column("event_type", String(60)),
    Column("body", Text, nullable=False),
    Column("headers", JSON, nullable=False, default=dict),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(20), nullable=False, default="held"),  # held | replayed | discarded
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    UniqueConstraint("consumer", "event_id", name="uq_dead_letters_consumer_event"),
)

leases = Table(
    "leases",
    kit_metadata,
    Column("name", String(120), primary_key=True),
    Column("holder", String(120), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    kit_metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user", String(200)),
    Column("roles", JSON, nullable=False, default=list),
    Column("operation", String(120), nullable=False),
    Column("outcome", String(20), nullable=False),  # done | refused
    Column("entity", String(200)),
    Column("detail", JSON, nullable=False, default=dict),
    Column("correlation_id", String(200)),
)
Index("ix_audit_entity", audit_log.c.entity)
Index("ix_audit_user_at", audit_log.c.user, audit_log.c.at)
