"""Imports every scenario module so that each registers itself (scenario.SCENARIOS)."""

from . import (
    r01_kill9,
    r02_broker_outage,
    r03_database_outage,
    r04_duplicates,
    r05_poison,
    r06_late_consumer,
    r07_fuzz,
    r08_races,
    r09_access,
    r10_broker_permissions,
    r11_malformed,
    r12_flood,
    r13_cluster,
    r14_hostile_text,
)
