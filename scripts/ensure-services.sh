#!/usr/bin/env bash
# Makes sure the real services the test suite uses are installed and running:
# PostgreSQL 15 with pgvector, the `tenantry_owner` role the migrations run as, and Redis
# (cache invalidation across replicas).
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
log() { echo "[ensure-services] $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to install $1; install it by hand or rerun as root"
    exit 1
  fi
}

# --- PostgreSQL server -------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need_root postgresql
  log "installing postgresql"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

# --- pgvector ------------------------------------------------------------------
if [ ! -f /usr/lib/postgresql/15/lib/vector.so ]; then
  need_root pgvector
  log "building pgvector from Debian trixie's source package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-server-dev-15 build-essential >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-server-dev-15 build-essential >/dev/null
  }
  work=$(mktemp -d)
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} trixie main" > "$work/trixie.list"
  mkdir -p "$work/lists/partial"
  apt_opts=(-o Dir::Etc::SourceList="$work/trixie.list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$work/lists")
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && apt-get "${apt_opts[@]}" source --download-only pgvector >/dev/null)
  tar -xf "$work"/pgvector_*.orig.tar.* -C "$work"
  src=$(find "$work" -maxdepth 1 -type d -name 'pgvector-*' | head -1)
  make -s -C "$src" PG_CONFIG=$PG_BIN/pg_config OPTFLAGS="" >/dev/null
  make -s -C "$src" PG_CONFIG=$PG_BIN/pg_config OPTFLAGS="" install >/dev/null
  rm -rf "$work"
  # installing the dev package can upgrade the server's minor version: restart to pick it up
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main restart
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

# --- roles ---------------------------------------------------------------------
# The schema owner: runs migrations, creates the per-test databases. Not a superuser.
psql_admin() { psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_admin -c "select 1 from pg_roles where rolname = 'tenantry_owner'")" != "1" ]; then
  log "creating role tenantry_owner"
  psql_admin -c "create role tenantry_owner login createdb createrole"
fi

# pgvector is not a trusted extension: a superuser installs it once in template1, so every database
# the (non-superuser) owner creates has it and the migration's `create extension if not exists` is a no-op.
psql -h 127.0.0.1 -U postgres -d template1 -v ON_ERROR_STOP=1 -qtA -c "create extension if not exists vector" >/dev/null


# --- Redis -------------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  need_root redis
  log "installing redis"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

# TLS: a private CA and a server certificate for 127.0.0.1 signed by it (made once, kept under
# /var/lib/tenantry-tls), and a Redis that speaks only TLS on port 6380, for the rediss:// tests.
tls=/var/lib/tenantry-tls
if [ ! -s "$tls/ca.pem" ] || [ ! -s "$tls/server.pem" ]; then
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 3650 \
    -subj "/CN=tenantry test CA" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -keyout "$tls/server.key" -out "$tls/server.csr" \
    -subj "/CN=127.0.0.1" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/server.pem" -days 3650 -extfile "$tls/server.ext" >/dev/null 2>&1
  chmod 600 "$tls/ca.key" "$tls/server.key"
fi
if ! redis-cli --tls --cacert "$tls/ca.pem" -h 127.0.0.1 -p 6380 ping >/dev/null 2>&1; then
  log "starting redis with TLS on 6380"
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port 6380 --tls-cert-file "$tls/server.pem" \
    --tls-key-file "$tls/server.key" --tls-ca-cert-file "$tls/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/tls.log
  for _ in $(seq 1 30); do
    redis-cli --tls --cacert "$tls/ca.pem" -h 127.0.0.1 -p 6380 ping >/dev/null 2>&1 && break; sleep 0.2
  done
fi
# PostgreSQL's own certificate (Debian: ssl = on with the snakeoil certificate, for localhost)
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -qtA -c 'show ssl')" != "on" ]; then
  echo "[ensure-services] PostgreSQL does not have ssl = on; the TLS tests need it" >&2
fi

log "services ready"
