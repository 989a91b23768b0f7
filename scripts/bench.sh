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
# The PostgreSQL run ends with its commit-rate ceiling: pgbench (Debian's
# postgresql-client) runs a one-row UPDATE transaction on a throwaway table
# of the same throwaway database, with as many clients as permiso-load has
# workers, for the same duration; the refresh figure is printed next to it
# (docs/benchmarks.md, "The refresh path"). Without pgbench it says so.
#
# Before and after, interleaved (docs/benchmarks.md):
#   PERMISO_BENCH_BEFORE=6351d28 PERMISO_BENCH_ROUNDS=3 scripts/bench.sh 5s -scenarios baseline,refresh
# builds permiso at that revision too, and runs each round's two builds
# (each backend) before then after in odd rounds, after then before in even
# ones, always with this checkout's permiso-load.
#
# Memory (docs/benchmarks.md, "Memory"): each run prints the server's
# resident size (VmRSS) right after it answers /health, and 0, 30 and 60 s
# after permiso-load ends, with the server idle. PERMISO_BENCH_MEMORY_WAIT
# (seconds, default 60) sets the last sample's delay (the middle one is at
# half of it); 0 prints only the first sample after the run.
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
idle_rss=""
metrics_path=/metrics
dropped_runs=()
redis_limits=""
redis_used_before=""
statuses=""

stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

# cleanup_pg drops the PostgreSQL run's database and Redis keys.
cleanup_pg() {
  if [ -n "$pg_db" ]; then
    psql -q -X "$pg_admin_url" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null ||
      echo "bench: could not drop database $pg_db" >&2
    pg_db=""
  fi
  if [ -n "$redis_prefix" ]; then
    redis-cli -u "$redis_url" --scan --pattern "${redis_prefix}*" |
      xargs -r -n 500 redis-cli -u "$redis_url" DEL >/dev/null ||
      echo "bench: could not delete Redis keys ${redis_prefix}*" >&2
    redis_prefix=""
  fi
}

cleanup() {
  stop_server
  cleanup_pg
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

echo "== build ($(go version))"
go build -o "$work/permiso-after" ./cmd/permiso
go build -o "$work/permiso-load" ./cmd/permiso-load
builds=(after)
if [ -n "${PERMISO_BENCH_BEFORE:-}" ]; then
  mkdir "$work/before-src"
  git archive "$PERMISO_BENCH_BEFORE" | tar -x -C "$work/before-src"
  (cd "$work/before-src" && go build -o "$work/permiso-before" ./cmd/permiso)
  rm -rf "$work/before-src"
  builds=(before after)
fi
rounds="${PERMISO_BENCH_ROUNDS:-1}"
# The workers of permiso-load (its -concurrency, default 16): pgbench's
# client count.
clients=16
for ((i = 0; i < ${#EXTRA[@]}; i++)); do
  case "${EXTRA[$i]}" in
  -concurrency | --concurrency) clients="${EXTRA[$((i + 1))]:-16}" ;;
  -concurrency=* | --concurrency=*) clients="${EXTRA[$i]#*=}" ;;
  esac
done
summary=()
: >"$work/empty.env"
admin_password="Pw-$(rand_hex 12)-Aa1!"

# rss: the server's VmRSS in MiB (Linux /proc), or "unknown".
rss() {
  awk '$1 == "VmRSS:" { printf "%.1f MiB", $2 / 1024; found = 1 } END { if (!found) printf "unknown" }' \
    "/proc/$server_pid/status" 2>/dev/null || printf unknown
}

# cpu_ticks PID...: the CPU time (user and system) the processes have
# used, in clock ticks of 10 ms, from /proc/PID/stat (0 for one that is
# gone).
cpu_ticks() {
  local p
  for p in "$@"; do
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0
  done | awk '{ s += $1 } END { print s + 0 }'
}

# pg_backends: the pids of the PostgreSQL server processes connected to the
# run's database (none on SQLite).
pg_backends() {
  [ -n "$pg_db" ] || return 0
  psql -At -X "$pg_admin_url" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$pg_db'" 2>/dev/null || true
}

# cpu_window LABEL: passes permiso-load's progress lines (its stderr) on,
# and reads the CPU time of the server and of its PostgreSQL backends when
# a scenario's measurement starts ("measuring") and ends ("N requests"):
# CPU per request of each scenario, far less disturbed by a busy machine
# than the rates (docs/benchmarks.md). The lines also go to $work/LABEL.cpu.
cpu_window() {
  local label=$1 line server pid scenario n
  declare -A pg=()
  while IFS= read -r line; do
    printf '%s\n' "$line"
    case "$line" in
    "permiso-load: "*" measuring")
      server=$(cpu_ticks "$server_pid")
      pg=()
      for pid in $(pg_backends); do pg[$pid]=$(cpu_ticks "$pid"); done
      ;;
    "permiso-load: "*" requests, "*)
      [ -n "$server" ] || continue
      server=$(($(cpu_ticks "$server_pid") - server))
      local pg_used=0
      for pid in $(pg_backends); do pg_used=$((pg_used + $(cpu_ticks "$pid") - ${pg[$pid]:-0})); done
      read -r _ scenario n _ <<<"$line"
      if [ "$scenario" != baseline ] && [ "$n" -gt 0 ]; then
        awk -v l="$label" -v s="$scenario" -v n="$n" -v c="$server" -v p="$pg_used" -v db="${pg_db:+1}" 'BEGIN {
          printf "%s: %s CPU per request over the measurement (%d requests): server %.1f us", l, s, n, c * 1e4 / n
          if (db) printf ", PostgreSQL %.1f us", p * 1e4 / n
          printf "\n" }' | tee -a "$work/$label.cpu"
      fi
      server=""
      ;;
    esac
  done
}

# memory_after LABEL: the server's RSS 0, WAIT/2 and WAIT seconds after the
# run (PERMISO_BENCH_MEMORY_WAIT, default 60), idle in between.
memory_after() {
  local wait="${PERMISO_BENCH_MEMORY_WAIT:-60}" line
  line="0 s $(rss)"
  if [ "$wait" -gt 0 ]; then
    sleep $((wait / 2))
    line+=", $((wait / 2)) s $(rss)"
    sleep $((wait - wait / 2))
    line+=", $wait s $(rss)"
  fi
  echo "== $1: RSS after the run: $line"
  summary+=("$1: idle RSS $idle_rss; after the run $line")
}

# bench LABEL BUILD [VAR=value ...]: one server (permiso-BUILD), one
# permiso-load run; its refresh rate goes to $refresh_rate.
bench() {
  local label=$1 build=$2
  shift 2
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
  env -i "${env[@]}" "$work/permiso-$build" --env-file "$work/empty.env" serve >"$work/$label.log" 2>&1 &
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
  idle_rss=$(rss)
  echo "== $label: idle RSS after start: $idle_rss"
  printf '%s\n' "$admin_password" | env -i "${env[@]}" "$work/permiso-$build" --env-file "$work/empty.env" \
    create-admin --username bench --email bench@example.com --password-stdin >/dev/null

  if [ -n "$redis_prefix" ]; then redis_memory "$label" before; fi
  echo "== $label: permiso-load -duration $DURATION against $url"
  : >"$work/$label.cpu"
  local cpu_fd cpu_pid line
  exec {cpu_fd}> >(cpu_window "$label" >&2)
  cpu_pid=$!
  printf '%s\n' "$admin_password" | "$work/permiso-load" -url "$url" -duration "$DURATION" \
    -admin-user bench -admin-password-stdin -metrics-path "$metrics_path" ${EXTRA[@]+"${EXTRA[@]}"} \
    2>&"$cpu_fd" | tee "$work/$label.out"
  exec {cpu_fd}>&-
  wait "$cpu_pid" 2>/dev/null || true
  while IFS= read -r line; do summary+=("$line"); done <"$work/$label.cpu"
  if [ -n "$redis_prefix" ]; then redis_memory "$label" after; fi
  # The refresh row of the text report: "refresh WORKERS REQUESTS REQ/S RATIO ...".
  refresh_rate=$(awk '$1 == "refresh" && $4 ~ /^[0-9.]+$/ { r = $4; x = $5 } END { if (r != "") print r " req/s (" x " of baseline)" }' "$work/$label.out")
  # 429s and 503s of every scenario (columns 7 and 8 of the text report),
  # and the largest peak RSS (the last column).
  statuses=$(awk 'NF >= 16 && $3 ~ /^[0-9]+$/ { n++; t += $7; u += $8; if ($NF + 0 > p) p = $NF + 0 }
    END { if (n) printf "%d × 429, %d × 503, server RSS peak %.1f MiB", t, u, p }' "$work/$label.out")
  local dropped
  dropped=$(curl -s "$url$metrics_path" | awk '$1 == "permiso_audit_events_dropped_total" { print $2 }')
  echo "-- $label: permiso_audit_events_dropped_total ${dropped:-unknown}" >&2
  if [ "${dropped:-unknown}" != 0 ]; then
    dropped_runs+=("$label")
  fi
  memory_after "$label"
  stop_server
  if grep -q '"level":"ERROR"' "$work/$label.log"; then
    echo "-- server errors ($label):"
    grep '"level":"ERROR"' "$work/$label.log" | head -20
  fi
}

# redis_memory LABEL WHEN: Redis's used_memory (the whole server's) and,
# under this run's key prefix, the keys and their MEMORY USAGE by kind:
# the keys under CACHE_RATE_LIMIT_PREFIX by their kind and, for a limit's
# window, its period (a service client's "minute" and "hour" windows,
# docs/abuse-resistance.md; "lockout" is the login lockout), the others
# by the CACHE_* prefix they live under. Printed before and after permiso-load; the
# "after" line of the limit keys also goes to the summary.
redis_memory() {
  local label=$1 when=$2 used
  used=$(redis-cli -u "$redis_url" INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
  redis-cli -u "$redis_url" --scan --pattern "${redis_prefix}*" >"$work/redis-keys"
  if [ -s "$work/redis-keys" ]; then
    sed 's/^/MEMORY USAGE /' "$work/redis-keys" | redis-cli -u "$redis_url" >"$work/redis-usage"
  else
    : >"$work/redis-usage"
  fi
  echo "-- $label: Redis $when the run: used_memory $used bytes (whole server); keys under $redis_prefix:"
  paste "$work/redis-keys" "$work/redis-usage" | awk -v p="$redis_prefix" '
    { k = substr($1, length(p) + 1); n = split(k, part, ":")
      kind = part[1] ":"
      if (part[1] == "rate") {
        kind = "rate:" part[2] ":*"
        if (part[n] == "minute" || part[n] == "hour") kind = kind ":" part[n]
      }
      keys[kind]++; bytes[kind] += $2; all++; total += $2 }
    END {
      for (kind in keys) printf "     %-22s %6d keys %10d bytes %8.0f bytes/key\n", kind, keys[kind], bytes[kind], bytes[kind] / keys[kind]
      printf "     %-22s %6d keys %10d bytes\n", "all", all, total
    }' | sort | tee "$work/redis-$when"
  if [ "$when" = before ]; then
    redis_used_before=$used
  else
    redis_limits="used_memory $redis_used_before -> $used bytes (whole server); "
    redis_limits+=$(awk '$1 ~ /^rate:/ { printf "%s%s %d keys, %d bytes (%d per key)", sep, $1, $2, $4, $6; sep = "; " }' "$work/redis-$when")
  fi
}

# ceiling DB_URL: pgbench's one-row UPDATE transaction, $clients clients
# (each its own row, as each refresh worker rotates its own chain) for
# $DURATION on a throwaway table of the bench database; prints the rate.
ceiling() {
  command -v pgbench >/dev/null || {
    echo "no pgbench (apt-get install -y postgresql-client)"
    return
  }
  psql -q -X "$1" -c "CREATE TABLE bench_ceiling (id int PRIMARY KEY, n bigint NOT NULL);
    INSERT INTO bench_ceiling SELECT i, 0 FROM generate_series(0, $clients - 1) AS i" >/dev/null
  printf 'UPDATE bench_ceiling SET n = n + 1 WHERE id = :client_id;\n' >"$work/ceiling.sql"
  local secs
  secs=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+(?:\.\d+)?)(ms|s|m)', sys.argv[1]); print(max(1, round(float(m[1]) * {'ms': 0.001, 's': 1, 'm': 60}[m[2]])) if m else 10)" "$DURATION")
  pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$work/ceiling.sql" "$1" 2>/dev/null |
    awk '/^tps = / { printf "%.0f tps\n", $3 }'
  psql -q -X "$1" -c "DROP TABLE bench_ceiling" >/dev/null
}

for ((round = 1; round <= rounds; round++)); do
  # Before and after swap places every round (before first in odd rounds,
  # after first in even ones), so that whatever the first or second slot of
  # a round gains (a warmer or a busier machine) is not read as the change.
  order=("${builds[@]}")
  if [ ${#builds[@]} -gt 1 ] && [ $((round % 2)) -eq 0 ]; then order=(after before); fi
  for build in "${order[@]}"; do
    tag=""
    if [ ${#builds[@]} -gt 1 ] || [ "$rounds" -gt 1 ]; then tag="-$build-$round"; fi
    rm -f "$work/permiso.db" "$work/permiso.db-wal" "$work/permiso.db-shm"
    refresh_rate=""
    bench "sqlite$tag" "$build" "DATABASE_URL=sqlite://$work/permiso.db"
    [ -n "$refresh_rate" ] && summary+=("sqlite$tag: refresh $refresh_rate")
    [ -n "$statuses" ] && summary+=("sqlite$tag: $statuses")

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
      refresh_rate=""
      bench "postgres+redis$tag" "$build" "DATABASE_URL=$db_url" "REDIS_URL=$redis_url" \
        "CACHE_TOKEN_PREFIX=${redis_prefix}token:" "CACHE_SESSION_PREFIX=${redis_prefix}session:" \
        "CACHE_RATE_LIMIT_PREFIX=${redis_prefix}rate:" "CACHE_USER_PREFIX=${redis_prefix}user:"
      ceil=$(ceiling "$db_url")
      echo "== postgres+redis$tag: pgbench ceiling (one-row UPDATE transaction, $clients clients, $DURATION): $ceil"
      summary+=("postgres+redis$tag: refresh ${refresh_rate:-not run}; pgbench ceiling $ceil")
      [ -n "$statuses" ] && summary+=("postgres+redis$tag: $statuses")
      summary+=("postgres+redis$tag: Redis after the run: ${redis_limits:-not measured}")
      cleanup_pg
    else
      echo "== postgres+redis: skipped (set PERMISO_BENCH_DATABASE_URL and PERMISO_BENCH_REDIS_URL)"
    fi
  done
done

if [ ${#summary[@]} -gt 0 ]; then
  echo "== summary"
  printf '%s\n' "${summary[@]}"
fi

if [ ${#dropped_runs[@]} -gt 0 ]; then
  echo "bench: audit events were dropped (or the metric could not be read) in: ${dropped_runs[*]}" >&2
  exit 1
fi
