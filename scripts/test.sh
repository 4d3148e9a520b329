#!/usr/bin/env bash
# The one test command (README "Test"; CI runs exactly this through .ci/run):
# installs/starts the real services, then formatting, lints and every test of the workspace,
# with PostgreSQL and Redis always enabled (DATABASE_URL, REDIS_URL), so no such test can silently skip.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-services.sh

export DATABASE_URL="${DATABASE_URL:-postgres://tenantry_owner@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

# Per-test databases from earlier runs (each test creates its own); drop leftovers.
psql -h 127.0.0.1 -U postgres -d postgres -qtA -c \
  "select datname from pg_database where datname like 'tenantry\_t\_%'" | while read -r db; do
  [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -d postgres -q -c "drop database if exists \"$db\" with (force)" >/dev/null
done

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
