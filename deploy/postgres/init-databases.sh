#!/bin/bash
# Runs once, when the postgres container initialises an empty data directory (docker-entrypoint-initdb.d).
# Creates one database and one owning role per JMDI service (and the gateway): no service can read another's tables.
# Passwords come from <SERVICE>_DB_PASSWORD (required: scripts/compose-secrets, or the jmdi-secrets Secret).
set -euo pipefail

for service in calls grants notifications reporting gateway; do
  var="${service^^}_DB_PASSWORD"
  password="${!var:?is not set: every database role needs its own password}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
       -v role="jmdi_${service}" -v db="${service}" -v password="${password}" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
done
