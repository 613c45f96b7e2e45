"""A service's database: engine and unit of work (events written to the outbox in the same transaction), the kit's
tables and column types, their frozen first migration, Alembic per service, leases for timers that run once across
replicas."""
