#!/usr/bin/env bash
# Health check for monitoring (deployment guide, "Health Checks").
# Usage: scripts/health_check.sh [URL]   (default https://yourdomain.com/health)
# Exit 0 when permiso answers 200 (database and Redis healthy), 1 otherwise.
# CURL_ARGS adds curl options (--cacert FILE, --resolve HOST:443:ADDR).
set -uo pipefail
HEALTH_URL="${1:-${HEALTH_URL:-https://yourdomain.com/health}}"
read -r -a extra <<<"${CURL_ARGS:-}"
RESPONSE=$(curl "${extra[@]}" -s -o /tmp/permiso_health.$$ -w "%{http_code}" --max-time 10 "$HEALTH_URL")
BODY=$(cat /tmp/permiso_health.$$ 2>/dev/null); rm -f /tmp/permiso_health.$$
if [ "$RESPONSE" = "200" ]; then
  echo "Health check passed"
  exit 0
fi
echo "Health check failed with status: $RESPONSE"
[ -n "$BODY" ] && echo "$BODY"
exit 1
