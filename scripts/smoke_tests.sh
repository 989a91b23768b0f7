#!/usr/bin/env bash
# Smoke tests after a deployment (the guide's `python scripts/smoke_tests.py`).
# Usage: BASE_URL=https://yourdomain.com ADMIN_USER=admin ADMIN_PASSWORD=... scripts/smoke_tests.sh
# Checks: health, discovery (one issuer, the same absolute URL from every
# instance behind the load balancer), JWKS, a login, a bearer call
# (introspection of the token itself), refresh rotation, and logout (the
# token dies at once). CURL_ARGS adds curl options (--cacert FILE, --resolve).
set -euo pipefail
BASE_URL="${BASE_URL:-http://127.0.0.1:8000}"
API="${API_V1_PREFIX:-/api/v1}"
fail() { echo "FAIL: $*" >&2; exit 1; }
read -r -a extra <<<"${CURL_ARGS:-}"
curl() { command curl "${extra[@]}" "$@"; }
json() { python3 -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }

code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/health") || fail "health unreachable"
[ "$code" = 200 ] || fail "GET /health = $code"
echo "ok   GET /health"

issuer=$(curl -sf "$BASE_URL/.well-known/oauth-authorization-server" | json issuer) || fail "discovery"
[ -n "$issuer" ] || fail "discovery has no issuer"
case "$issuer" in
  http://localhost*|http://127.0.0.1*|http://0.0.0.0*)
    case "$BASE_URL" in http://localhost*|http://127.0.0.1*) ;; *)
      fail "discovery issuer $issuer is an instance's own address, not the public URL (set PUBLIC_URL)" ;;
    esac ;;
  http://*|https://*) ;;
  *) fail "discovery issuer $issuer is not an absolute URL" ;;
esac
# Behind a load balancer every instance must advertise the same issuer.
for _ in 1 2 3 4 5 6; do
  again=$(curl -sf "$BASE_URL/.well-known/oauth-authorization-server" | json issuer) || fail "discovery"
  [ "$again" = "$issuer" ] || fail "discovery issuer changes between requests: $issuer, then $again"
done
echo "ok   discovery (issuer $issuer, the same on every request)"
curl -sf "$BASE_URL/.well-known/jwks.json" | grep -q '"keys"' || fail "JWKS"
echo "ok   JWKS"

if [ -z "${ADMIN_USER:-}" ] || [ -z "${ADMIN_PASSWORD:-}" ]; then
  echo "skip login checks (set ADMIN_USER and ADMIN_PASSWORD)"
  exit 0
fi
tokens=$(curl -sf "$BASE_URL$API/auth/token" --data-urlencode "username=$ADMIN_USER" \
  --data-urlencode "password=$ADMIN_PASSWORD" -d grant_type=password) || fail "login"
access=$(echo "$tokens" | json access_token); refresh=$(echo "$tokens" | json refresh_token)
[ -n "$access" ] && [ -n "$refresh" ] || fail "login returned no tokens"
echo "ok   login"

active=$(curl -sf -H "Authorization: Bearer $access" "$BASE_URL$API/auth/introspect" -d "token=$access" | json active)
[ "$active" = True ] || fail "introspection of a fresh token: active=$active"
echo "ok   bearer + introspection"

rotated=$(curl -sf "$BASE_URL$API/auth/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$refresh") || fail "refresh"
access=$(echo "$rotated" | json access_token)
[ -n "$access" ] || fail "refresh returned no access token"
echo "ok   refresh rotation"

curl -sf -X POST -H "Authorization: Bearer $access" "$BASE_URL$API/auth/logout" >/dev/null || fail "logout"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $access" "$BASE_URL$API/auth/logout")
[ "$code" = 401 ] || fail "token still accepted after logout ($code)"
echo "ok   logout revokes at once"
echo "smoke tests passed"
