#!/usr/bin/env bash
# Rolling restart of the app instances of deploy/docker-compose.prod.yml,
# one at a time, so nginx always has one that answers (docs/deployment.md).
#
#   scripts/rolling_restart.sh            restart each instance (new secrets,
#                                         new .env values): stop (SIGTERM
#                                         drains in-flight requests), start,
#                                         wait until it is ready
#   scripts/rolling_restart.sh --update   replace each instance by one from
#                                         the current permiso:latest image (an
#                                         upgrade, or a rollback after
#                                         `docker tag permiso:previous permiso:latest`):
#                                         start the new ones, wait until they
#                                         are ready, then stop the old ones
#
# Requests an instance refuses while it stops are passed to another one by
# nginx (proxy_next_upstream), so clients see no error. nginx looks the
# instances up in Docker's DNS every 2 s (deploy/nginx/nginx.conf), and a
# restarted instance may have a new address: after each instance is ready
# the script waits SETTLE_SECONDS (3) before stopping the next, so nginx
# never holds only addresses that are gone.
set -euo pipefail
COMPOSE_FILE="${COMPOSE_FILE:-$(cd "$(dirname "$0")/.." && pwd)/deploy/docker-compose.prod.yml}"
if [ -n "${COMPOSE:-}" ]; then read -r -a DC <<<"$COMPOSE"
elif command -v docker-compose >/dev/null 2>&1; then DC=(docker-compose)
else DC=(docker compose); fi
DC+=(-f "$COMPOSE_FILE")
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
SETTLE_SECONDS="${SETTLE_SECONDS:-3}"

ready() { # wait until the container answers /health/ready from inside
  local c=$1
  for _ in $(seq 1 120); do
    if docker exec "$c" permiso health --url http://127.0.0.1:8000/health/ready >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "instance $c is not ready after 60 s; stopping here" >&2
  docker logs --tail 20 "$c" >&2
  return 1
}

old=$("${DC[@]}" ps -q app)
n=$(echo "$old" | grep -c . || true)
[ "$n" -gt 0 ] || { echo "no app instance is running" >&2; exit 1; }

case "${1:-}" in
"")
  for c in $old; do
    echo "restarting $c"
    docker stop -t "$STOP_TIMEOUT" "$c" >/dev/null
    docker start "$c" >/dev/null
    ready "$c"
    sleep "$SETTLE_SECONDS"
  done
  ;;
--update)
  # Twice as many instances, the new ones from the current image...
  "${DC[@]}" up -d --no-deps --no-recreate --scale app=$((2 * n)) app
  for c in $("${DC[@]}" ps -q app); do
    echo "$old" | grep -qx "$c" || ready "$c"
  done
  sleep "$SETTLE_SECONDS"
  # ...then the old ones leave, one at a time.
  for c in $old; do
    echo "retiring $c"
    docker stop -t "$STOP_TIMEOUT" "$c" >/dev/null
    docker rm "$c" >/dev/null
    sleep "$SETTLE_SECONDS"
  done
  ;;
*)
  echo "usage: $0 [--update]" >&2; exit 2 ;;
esac
echo "rolling restart done: $("${DC[@]}" ps -q app | wc -l) instance(s)"
