#!/usr/bin/env bash
# Start Debian's PostgreSQL cluster on 127.0.0.1 and make a role + database for r1agent's tests (as root).
# Prints the connection URL on stdout, e.g. for: export R1AGENT_TEST_POSTGRES_URL=$(bash scripts/start-postgres.sh)
# Idempotent: a running cluster, an existing role or database are left as they are.
set -euo pipefail
ROLE=${R1AGENT_PG_ROLE:-r1agent}
PASSWORD=${R1AGENT_PG_PASSWORD:-r1agent-test}
DB=${R1AGENT_PG_DB:-r1agent_test}
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "error: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  exit 1
fi
read -r version cluster port _ < <(pg_lsclusters -h | head -n 1) || true
if [ -z "${version:-}" ]; then
  # The package normally creates a cluster; a minimal image may have skipped it.
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  cluster=main
  pg_createcluster "$version" "$cluster" >/dev/null
  port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')
fi
# Start-up chatter ("Removed stale pid file.") goes to stderr: stdout is only the URL, which callers capture.
pg_ctlcluster "$version" "$cluster" status >/dev/null 2>&1 || pg_ctlcluster "$version" "$cluster" start >&2
as_postgres() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }
for _ in $(seq 1 30); do  # bounded wait: the server accepts connections a moment after start
  as_postgres <<<"SELECT 1" >/dev/null 2>&1 && break
  sleep 1
done
# psql variables (:'name', read from stdin, not -c) quote the values: nothing is pasted into SQL text.
if [ -z "$(as_postgres -v role="$ROLE" <<<"SELECT 1 FROM pg_roles WHERE rolname = :'role'")" ]; then
  as_postgres -v role="$ROLE" -v pw="$PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
SQL
fi
if [ -z "$(as_postgres -v db="$DB" <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" ]; then
  as_postgres -v db="$DB" -v role="$ROLE" <<'SQL'
CREATE DATABASE :"db" OWNER :"role";
SQL
fi
echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$port/$DB"
