#!/usr/bin/env bash
# Load benchmark (docs/benchmarks.md; docs/architecture.md, "Performance by design"): builds permiso and
# permiso-load, starts `permiso serve` on a free 127.0.0.1 port with a fresh
# embedded SQLite database (rate limits off), creates an administrator, runs
# every permiso-load scenario and prints the figures. With
# PERMISO_BENCH_DATABASE_URL and PERMISO_BENCH_REDIS_URL set it does the same
# again against PostgreSQL (a fresh database, dropped afterwards) and Redis
# (a unique key prefix, deleted afterwards).
#
# Usage: scripts/bench.sh [DURATION [PERMISO-LOAD FLAGS...]]
#   scripts/bench.sh                 # 10s per scenario
#   scripts/bench.sh 30s -json       # longer, and JSON output
#   scripts/bench.sh 5s -scenarios baseline,bearer
#
# After each scenario permiso-load scrapes the server's METRICS_PATH and
# prints permiso_audit_events_dropped_total ("audit dropped"); the script
# prints it again at the end of each run and says so when it is not 0
# (docs/audit.md: load must slow audited requests down, never erase their
# events).
#
# Needs go, curl and python3 (for a free port); psql and redis-cli for the
# PostgreSQL + Redis run. Figures are only comparable as ratios to the
# baseline of the same run: a shared machine is noisy.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10s}"
[ $# -gt 0 ] && shift
EXTRA=("$@")

work=$(mktemp -d "${TMPDIR:-/tmp}/permiso-bench.XXXXXX")
server_pid=""
pg_admin_url=""
pg_db=""
redis_url=""
redis_prefix=""
metrics_path=/metrics
dropped_runs=()

stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

cleanup() {
  stop_server
  if [ -n "$pg_db" ]; then
    psql -q -X "$pg_admin_url" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null ||
      echo "bench: could not drop database $pg_db" >&2
  fi
  if [ -n "$redis_prefix" ]; then
    redis-cli -u "$redis_url" --scan --pattern "${redis_prefix}*" |
      xargs -r -n 500 redis-cli -u "$redis_url" DEL >/dev/null ||
      echo "bench: could not delete Redis keys ${redis_prefix}*" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

echo "== build ($(go version))"
go build -o "$work/permiso" ./cmd/permiso
go build -o "$work/permiso-load" ./cmd/permiso-load
: >"$work/empty.env"
admin_password="Pw-$(rand_hex 12)-Aa1!"

# bench LABEL [VAR=value ...]: one server, one permiso-load run.
bench() {
  local label=$1
  shift
  local port
  port=$(free_port)
  local env=(
    "PATH=$PATH" "HOME=$HOME"
    ENVIRONMENT=development HOST=127.0.0.1 "PORT=$port" LOG_LEVEL=warning
    ENABLE_METRICS=true "METRICS_PATH=$metrics_path"
    "JWT_SECRET_KEY=$(rand_hex 32)"
    RATE_LIMIT_LOGIN= RATE_LIMIT_REGISTER= RATE_LIMIT_API= RATE_LIMIT_REFRESH= RATE_LIMIT_SERVICE_TOKEN=
    "$@"
  )
  env -i "${env[@]}" "$work/permiso" --env-file "$work/empty.env" serve >"$work/$label.log" 2>&1 &
  server_pid=$!

  local url="http://127.0.0.1:$port" i
  for i in $(seq 1 600); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "bench: permiso serve ($label) exited:" >&2
      cat "$work/$label.log" >&2
      server_pid=""
      exit 1
    fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health" || true)" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health" || true)" = 200 ] || {
    echo "bench: $url/health never answered 200" >&2
    exit 1
  }
  printf '%s\n' "$admin_password" | env -i "${env[@]}" "$work/permiso" --env-file "$work/empty.env" \
    create-admin --username bench --email bench@example.com --password-stdin >/dev/null

  echo "== $label: permiso-load -duration $DURATION against $url"
  printf '%s\n' "$admin_password" | "$work/permiso-load" -url "$url" -duration "$DURATION" \
    -admin-user bench -admin-password-stdin -metrics-path "$metrics_path" ${EXTRA[@]+"${EXTRA[@]}"}
  local dropped
  dropped=$(curl -s "$url$metrics_path" | awk '$1 == "permiso_audit_events_dropped_total" { print $2 }')
  echo "-- $label: permiso_audit_events_dropped_total ${dropped:-unknown}" >&2
  if [ "${dropped:-unknown}" != 0 ]; then
    dropped_runs+=("$label")
  fi
  stop_server
  if grep -q '"level":"ERROR"' "$work/$label.log"; then
    echo "-- server errors ($label):"
    grep '"level":"ERROR"' "$work/$label.log" | head -20
  fi
}

bench sqlite "DATABASE_URL=sqlite://$work/permiso.db"

if [ -n "${PERMISO_BENCH_DATABASE_URL:-}" ] && [ -n "${PERMISO_BENCH_REDIS_URL:-}" ]; then
  id=$(rand_hex 6)
  pg_admin_url="$PERMISO_BENCH_DATABASE_URL"
  pg_admin_url="${pg_admin_url/postgresql+asyncpg:/postgresql:}"
  psql -q -X "$pg_admin_url" -c "CREATE DATABASE permiso_bench_$id" >/dev/null
  pg_db="permiso_bench_$id"
  # The same URL with the new database's name as its path.
  base="${pg_admin_url%%\?*}"
  query=""
  [ "$base" != "$pg_admin_url" ] && query="?${pg_admin_url#*\?}"
  if [[ "$base" =~ ^[a-z+]+://[^/]*$ ]]; then
    db_url="$base/$pg_db$query"
  else
    db_url="${base%/*}/$pg_db$query"
  fi
  redis_url="$PERMISO_BENCH_REDIS_URL"
  redis_prefix="permiso-bench-$id:"
  bench postgres+redis "DATABASE_URL=$db_url" "REDIS_URL=$redis_url" \
    "CACHE_TOKEN_PREFIX=${redis_prefix}token:" "CACHE_SESSION_PREFIX=${redis_prefix}session:" \
    "CACHE_RATE_LIMIT_PREFIX=${redis_prefix}rate:" "CACHE_USER_PREFIX=${redis_prefix}user:"
else
  echo "== postgres+redis: skipped (set PERMISO_BENCH_DATABASE_URL and PERMISO_BENCH_REDIS_URL)"
fi

if [ ${#dropped_runs[@]} -gt 0 ]; then
  echo "bench: audit events were dropped (or the metric could not be read) in: ${dropped_runs[*]}" >&2
  exit 1
fi
