#!/usr/bin/env bash
# HTTP load test of OFREP bulk evaluation against `tenantry serve` (release build, embedded store,
# on loopback) with wrk: a tenant with 100 flags (global, tier, tenant overrides, rollouts).
# Usage: bash scripts/bench-http.sh [duration, default 20s] [connections, default 32]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-20s}"
connections="${2:-32}"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }

cargo build --release -q -p tenantry-cli
bin=target/release/tenantry
dir=$(mktemp -d)
port=18088
t() { "$bin" --data-dir "$dir" "$@" >/dev/null; }

key=$("$bin" --data-dir "$dir" keys create --platform-admin --admin-name bench 2>/dev/null)
t tenant create finance --name Finance --tier gold
for i in $(seq -w 1 100); do
  t flag set "feature.f$i" --enabled false --scope global
  if [ $((10#$i % 3)) = 0 ]; then t flag set "feature.f$i" --enabled true --scope tier --scope-id gold --rollout 50; fi
  if [ $((10#$i % 10)) = 0 ]; then t flag set "feature.f$i" --enabled true --scope tenant --scope-id finance; fi
done

"$bin" --data-dir "$dir" serve --bind "127.0.0.1:$port" --log error &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

cat > "$dir/bulk.lua" <<LUA
wrk.method = "POST"
wrk.body   = '{"context": {"targetingKey": "finance"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
curl -fs -X POST "http://127.0.0.1:$port/ofrep/v1/evaluate/flags" -H "Authorization: Bearer $key" \
  -H 'Content-Type: application/json' -d '{"context": {"targetingKey": "finance"}}' | head -c 200; echo
wrk -t2 -c"$connections" -d"$duration" --latency -s "$dir/bulk.lua" "http://127.0.0.1:$port/ofrep/v1/evaluate/flags"
