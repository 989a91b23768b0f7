#!/usr/bin/env bash
# The deployment guide's stack, end to end, on this machine (docs/deployment.md):
# installs Docker and Compose v1 from Debian, starts its own dockerd, builds
# local stand-ins for the images no registry can give here (the Go build
# stage, postgres, redis, nginx; the runtime image needs none), then follows
# docs/deployment.md with the guide's `docker-compose -f
# deploy/docker-compose.prod.yml ...`: build, migrate, create-admin, smoke
# tests through nginx over TLS, log rotation, an HS secret rotation and an
# upgrade and a rollback by rolling restarts under a client load (0 failed
# requests), a backup, a restore into a fresh database, `down -v`; then
# the same file once more with Compose v2 (`docker compose`, built from its
# Go module): migrate, create-admin, smoke tests, a rolling restart under
# load, a backup, `down -v`.
#
# It leaves the machine as it found it: no daemon, container, bridge,
# iptables rule or ip_forward change (checked at the end). Debian's
# packages it installs stay. Run as root:
#   scripts/compose_e2e.sh            (work dir: $COMPOSE_E2E_DIR or /tmp/permiso-compose-e2e)
# The work dir keeps only the Debian base image between runs (cache/);
# COMPOSE_E2E_KEEP=1 keeps Docker's data too (images, build cache), which
# makes a second run skip the compile.
set -euo pipefail

ROOT=${COMPOSE_E2E_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
W=${COMPOSE_E2E_DIR:-/tmp/permiso-compose-e2e}
T0=$(date +%s)
step() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (dockerd, iptables)"

step "packages (docker.io, docker-compose, debootstrap from Debian)"
missing=()
for c in dockerd docker-compose debootstrap iptables nft logrotate openssl curl; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io docker-compose debootstrap iptables nftables logrotate openssl curl >/dev/null
fi
docker-compose version --short

# Compose v2 (`docker compose`, the CLI plugin) is not packaged in Debian
# 12: it is built from its Go module, which the module proxy serves, in the
# background while the images build, and kept in $W/cache. The stack is
# started with it too, after the guide's run with Compose v1.
COMPOSE_V2=v5.6.0
V2DIR=$W/cache/compose-$COMPOSE_V2
build_compose_v2() {
  [ -x "$V2DIR/docker-compose" ] && return 0
  local mod
  mod=$(go mod download -json "github.com/docker/compose/v5@$COMPOSE_V2" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') || return 1
  rm -rf "$V2DIR.src" && cp -r "$mod" "$V2DIR.src" && chmod -R u+w "$V2DIR.src" || return 1
  mkdir -p "$V2DIR"
  (cd "$V2DIR.src" && go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_V2" \
    -o "$V2DIR/docker-compose.tmp" ./cmd) || return 1
  mv "$V2DIR/docker-compose.tmp" "$V2DIR/docker-compose"
  rm -rf "$V2DIR.src"
}

# One run at a time, and never next to another Docker daemon: the
# machine's state is compared before and after.
mkdir -p "$W/cache"
exec 9>"$W/cache/lock"
flock -n 9 || fail "another compose_e2e.sh is running"
if pgrep -x dockerd >/dev/null; then fail "a dockerd is already running; this script starts and removes its own"; fi
rm -rf "$W/run"
mkdir -p "$W/run"
R=$W/run

# The machine as found: compared with the state after cleanup.
machine_state() {
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  echo "--"
  { iptables-save 2>/dev/null || true; } | { grep -v '^#' || true; } | sed 's/\[[0-9]*:[0-9]*\]//'
  echo "--"
  cat /proc/sys/net/ipv4/ip_forward
  echo "--"
  pgrep -x dockerd || true
  pgrep -x containerd || true
}
machine_state > "$W/state.before"
iptables-save > "$W/iptables.before" 2>/dev/null || true
cp "$W/state.before" "$R/state.before"
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
links_before=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//')

DOCKERD_PID=""
LOAD_PID=""
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
  [ -n "${V2BUILD_PID:-}" ] && kill "$V2BUILD_PID" 2>/dev/null && wait "$V2BUILD_PID" 2>/dev/null
  if [ -n "$DOCKERD_PID" ]; then
    if [ $rc -ne 0 ] && [ -d "$R/src" ]; then
      (cd "$R/src" && docker-compose -f deploy/docker-compose.prod.yml ps; \
        docker-compose -f deploy/docker-compose.prod.yml logs --tail 40) 2>&1 | tail -120
    fi
    (cd "$R/src" 2>/dev/null && docker-compose -f deploy/docker-compose.prod.yml down -v --remove-orphans -t 5) >/dev/null 2>&1
    [ -x "$R/dockercfg/cli-plugins/docker-compose" ] && (cd "$R/src" 2>/dev/null \
      && DOCKER_CONFIG=$R/dockercfg docker compose -f deploy/docker-compose.prod.yml down -v --remove-orphans -t 5) >/dev/null 2>&1
    ids=$(docker ps -aq 2>/dev/null)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    kill "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
  fi
  # Leftovers of the daemon: containerd it started, mounts, links, rules.
  for p in $(pgrep -x containerd-shim-runc-v2 2>/dev/null) $(pgrep -f "containerd --config $W/exec" 2>/dev/null); do
    kill "$p" 2>/dev/null
  done
  grep -o " $W/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    echo "$links_before" | grep -qx "$l" || ip link delete "$l" 2>/dev/null
  done
  # iptables: the tables as they were (iptables-restore replaces each table
  # it names, Docker's chains and rules included); tables that did not
  # exist before are deleted.
  if grep -q '^\*' "$W/iptables.before"; then iptables-restore < "$W/iptables.before"; fi
  for t in filter nat; do
    if iptables-save -t $t 2>/dev/null | grep -q "^\*$t" && ! grep -q "^\*$t" "$W/iptables.before"; then
      nft delete table ip $t 2>/dev/null || { iptables -t $t -F; iptables -t $t -X; iptables -t $t -P FORWARD ACCEPT 2>/dev/null; }
    fi
  done
  echo "$ip_forward_before" > /proc/sys/net/ipv4/ip_forward
  rm -rf "$R/exec" 2>/dev/null
  [ "${COMPOSE_E2E_KEEP:-}" = 1 ] || rm -rf "$W/data" 2>/dev/null
  machine_state > "$W/state.after"
  if ! diff -u "$W/state.before" "$W/state.after"; then
    echo "FAIL: the machine is not as it was (diff above)" >&2
    [ $rc -eq 0 ] && rc=1
  else
    echo "machine state restored (links, iptables, ip_forward, no dockerd)"
  fi
  echo "== compose_e2e: $( [ $rc -eq 0 ] && echo PASSED || echo FAILED ) in $(( $(date +%s) - T0 ))s"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_compose_v2 >"$W/compose-v2-build.log" 2>&1 &
V2BUILD_PID=$!

step "dockerd (data in $W/data)"
mkdir -p "$W/data" "$R/exec"
dockerd --data-root "$W/data" --exec-root "$R/exec" -p "$R/dockerd.pid" \
  --host "unix://$R/docker.sock" >"$R/dockerd.log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST="unix://$R/docker.sock" DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info >/dev/null 2>&1 || { tail -20 "$R/dockerd.log"; fail "dockerd did not start"; }

step "base image debian:bookworm (debootstrap, cached in $W/cache)"
if [ ! -s "$W/cache/bookworm.tar" ]; then
  mirror=$(grep -rhoE 'https?://deb\.debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase bookworm "$W/rootfs" "$mirror" >"$W/debootstrap.log" 2>&1 \
    || { tail -20 "$W/debootstrap.log"; fail "debootstrap"; }
  rm -rf "$W"/rootfs/var/cache/apt/archives/*.deb "$W"/rootfs/var/lib/apt/lists/*
  tar -C "$W/rootfs" -cf "$W/cache/bookworm.tar.tmp" . && mv "$W/cache/bookworm.tar.tmp" "$W/cache/bookworm.tar"
  rm -rf "$W/rootfs"
fi
# An import makes a new image (and misses every cache) each time: once.
docker image inspect debian:bookworm >/dev/null 2>&1 \
  || docker import -c 'CMD ["bash"]' "$W/cache/bookworm.tar" debian:bookworm >/dev/null

step "stand-in images: golang:1.26-bookworm (this machine's Go), postgres, redis, nginx"
S=$R/standins
mkdir -p "$S/golang" "$S/services"
tar -C "$(go env GOROOT)/.." -cf "$S/golang/go.tar" \
  --exclude=go/test --exclude=go/doc --exclude=go/api --exclude='*/testdata' go
cp /etc/ssl/certs/ca-certificates.crt "$S/golang/"
# This module's downloads from the host's module cache, so `go mod download`
# in the build finds them (it fetches whatever is missing).
modcache=$(go env GOMODCACHE)
mkdir -p "$S/golang/mod"
(cd "$ROOT" && go mod download -json) | python3 -c '
import json, sys
dec, s, i = json.JSONDecoder(), sys.stdin.read(), 0
while True:
    while i < len(s) and s[i].isspace(): i += 1
    if i >= len(s): break
    o, i = dec.raw_decode(s, i)
    for k in ("Zip", "Mod", "Info", "Ziphash"):
        if o.get(k): print(o[k])
' | while read -r f; do
  [ -f "$f" ] || continue
  rel=${f#"$modcache"/}
  mkdir -p "$S/golang/mod/$(dirname "$rel")"
  cp "$f" "$S/golang/mod/$rel"
done
cat > "$S/golang/Dockerfile" <<'EOF'
FROM debian:bookworm
ADD go.tar /usr/local/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY mod /go/pkg/mod
ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOPATH=/go GOTOOLCHAIN=local
EOF
echo "ENV GOPROXY=$(go env GOPROXY) GOFLAGS=$(go env GOFLAGS)" >> "$S/golang/Dockerfile"
docker build -q -t golang:1.26-bookworm "$S/golang" >/dev/null

cp /etc/ssl/certs/ca-certificates.crt "$S/services/"
cat > "$S/services/postgres-entrypoint" <<'EOF'
#!/bin/sh
# The official image's behaviour that the compose file relies on:
# POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD(_FILE), scram for TCP,
# trust on the local socket.
set -e
BIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
[ -n "${POSTGRES_PASSWORD_FILE:-}" ] && POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pw && chown postgres /tmp/pw
  as_pg $BIN/initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pw \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f /tmp/pw
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  as_pg $BIN/pg_ctl -D "$PGDATA" -o "-c listen_addresses=" -w start >/dev/null
  as_pg $BIN/psql -q -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" 2>/dev/null || true
  as_pg $BIN/pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups $BIN/postgres -D "$PGDATA" -c listen_addresses='*'
EOF
cat > "$S/services/Dockerfile" <<'EOF'
FROM debian:bookworm
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 redis-server redis-tools nginx-light >/dev/null \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
COPY postgres-entrypoint /usr/local/bin/docker-entrypoint.sh
EOF
chmod +x "$S/services/postgres-entrypoint"
# In the background: the app build (CPU) overlaps this one (downloads).
docker build -q -t permiso-standin-services "$S/services" >"$R/standins.log" 2>&1 &
SERVICES_PID=$!
mk() { # tag, then Dockerfile lines after FROM
  local tag=$1; shift
  { echo "FROM permiso-standin-services"; printf '%s\n' "$@"; } | docker build -q -t "$tag" - >/dev/null
}
standin_services() {
  wait "$SERVICES_PID" || { cat "$R/standins.log"; fail "stand-in services image"; }
mk postgres:15-alpine 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' 'STOPSIGNAL SIGINT'
mk redis:7-alpine 'WORKDIR /data' 'CMD ["redis-server"]'
mk nginx:alpine 'CMD ["nginx", "-g", "daemon off;"]' 'STOPSIGNAL SIGQUIT'
}

# The operator's checkout: the repository's files (tracked and new, not
# ignored) in a directory of their own, plus a .git and a root .env with
# a canary that must never enter the build context.
step "checkout in $R/src"
mkdir -p "$R/src"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -C "$R/src" -xf -
mkdir -p "$R/src/.git" && echo "canary-git" > "$R/src/.git/canary"
cd "$R/src"
DC="docker-compose -f deploy/docker-compose.prod.yml"
HOSTOPT=(--resolve yourdomain.com:443:127.0.0.1 --resolve yourdomain.com:80:127.0.0.1 --cacert "$R/ca.pem")
export CURL_ARGS="--resolve yourdomain.com:443:127.0.0.1 --cacert $R/ca.pem"
LOGDIR=$R/logs

# ---- docs/deployment.md, step 0: secrets, .env, log directory, certificate.
step "step 0: secrets, .env (the guide's, verbatim, plus PUBLIC_URL), certificates"
install -d -m 0750 deploy/secrets
for s in jwt_secret db_password redis_password; do openssl rand -hex 32 > "deploy/secrets/$s"; done
: > deploy/secrets/jwt_next_secret
: > deploy/secrets/jwt_previous_secret
chgrp 10001 deploy/secrets/*
chmod 0640 deploy/secrets/*
cp e2e/testdata/guide.env deploy/.env
echo "PUBLIC_URL=https://yourdomain.com" >> deploy/.env
echo "PERMISO_LOG_DIR=$LOGDIR" >> deploy/.env
echo "JWT_SECRET_KEY=canary-dotenv-secret" > .env
install -d -m 0755 -o 10001 -g 10001 "$LOGDIR"
# A private CA; an ECDSA certificate (certbot's default) and an RSA one.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ci-ca \
  -keyout "$R/ca.key" -out "$R/ca.pem" 2>/dev/null
for kind in ecdsa rsa; do
  if [ $kind = ecdsa ]; then opt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else opt=(-newkey rsa:2048); fi
  openssl req -new -nodes "${opt[@]}" -subj /CN=yourdomain.com -keyout "$R/$kind.key" -out "$R/$kind.csr" 2>/dev/null
  printf 'subjectAltName=DNS:yourdomain.com\n' > "$R/san.ext"
  openssl x509 -req -in "$R/$kind.csr" -CA "$R/ca.pem" -CAkey "$R/ca.key" -CAcreateserial -days 2 \
    -extfile "$R/san.ext" -out "$R/$kind.pem" 2>/dev/null
done
mkdir -p deploy/nginx/ssl
cp "$R/ecdsa.pem" deploy/nginx/ssl/cert.pem
cp "$R/ecdsa.key" deploy/nginx/ssl/key.pem

# ---- step 1: build.
step "step 1: $DC build"
$DC build >"$R/build.log" 2>&1 || { tail -40 "$R/build.log"; fail "build"; }
size=$(docker image inspect permiso:latest --format '{{.Size}}')
echo "image permiso:latest: $size bytes ($(( size / 1024 / 1024 )) MiB)"
gz=$(docker save permiso:latest | gzip -1 | wc -c)
echo "image permiso:latest compressed (docker save | gzip): $gz bytes"
# Binary, CA bundle, passwd: nothing else may creep in (docs/deployment.md,
# "The image": at most 25 MB).
[ "$size" -le 25000000 ] || fail "image larger than 25 MB ($size bytes)"
docker image inspect permiso:latest --format '{{.Config.User}} {{json .Config.Healthcheck.Test}}'
# What the build context held: the same .dockerignore, another Dockerfile.
printf 'FROM debian:bookworm\nCOPY . /ctx\n' > "$R/ctx.Dockerfile"
docker build -q -t ctxprobe -f "$R/ctx.Dockerfile" . >/dev/null
leaked=$(docker run --rm ctxprobe sh -c 'cd /ctx; for f in .git .env deploy/.env deploy/secrets deploy/nginx/ssl; do [ -e "$f" ] && echo "$f"; done; true')
[ -z "$leaked" ] || fail "in the build context: $leaked"
docker rmi -f ctxprobe >/dev/null
echo "build context: no .git, .env, deploy/.env, deploy/secrets, deploy/nginx/ssl"

standin_services

# ---- step 2: database.
step "step 2: database: up -d db redis, migrate up, check"
$DC up -d db redis
$DC run --rm app migrate up
$DC run --rm app check

# ---- step 3: start, administrator, verify.
step "step 3: up -d, create-admin, health, smoke tests through nginx over TLS"
$DC up -d
wait_ready() { # every app container answers /health/ready from inside
  local c
  for c in $($DC ps -q app); do
    for _ in $(seq 1 120); do
      docker exec "$c" permiso health --url http://127.0.0.1:8000/health/ready >/dev/null 2>&1 && continue 2
      sleep 0.5
    done
    docker logs --tail 30 "$c"; fail "app container $c not ready"
  done
}
wait_ready
[ "$($DC ps -q app | wc -l)" = 2 ] || fail "want two app instances"
ADMIN_PASSWORD="Ci-Operator-Passw0rd!$(openssl rand -hex 4)"
printf '%s\n' "$ADMIN_PASSWORD" | $DC exec -T app permiso create-admin \
  --username admin --email admin@example.com --password-stdin
scripts/health_check.sh https://yourdomain.com/health
BASE_URL=https://yourdomain.com ADMIN_USER=admin ADMIN_PASSWORD="$ADMIN_PASSWORD" scripts/smoke_tests.sh
ver=$(curl -sf "${HOSTOPT[@]}" https://yourdomain.com/health | python3 -c 'import json,sys; print(json.load(sys.stdin).get("version"))')
[ "$ver" = 1.0.0 ] || fail "/health says version $ver, want .env's VERSION=1.0.0"
echo "ok   /health version $ver"
code=$(curl -s "${HOSTOPT[@]}" -o /dev/null -w '%{http_code}' http://yourdomain.com/health)
[ "$code" = 301 ] || fail "http:// answered $code, want 301"
echo "ok   http -> https"

step "TLS 1.2 with an ECDSA and an RSA certificate"
curl -sf "${HOSTOPT[@]}" --tls-max 1.2 -o /dev/null https://yourdomain.com/health || fail "TLS 1.2, ECDSA"
cp "$R/rsa.pem" deploy/nginx/ssl/cert.pem
cp "$R/rsa.key" deploy/nginx/ssl/key.pem
$DC exec -T nginx nginx -s reload
sleep 1
curl -sf "${HOSTOPT[@]}" --tls-max 1.2 -o /dev/null https://yourdomain.com/health || fail "TLS 1.2, RSA"
curl -sv "${HOSTOPT[@]}" --tls-max 1.2 -o /dev/null https://yourdomain.com/health 2>&1 | grep -E 'SSL connection using|subject:' | head -2
echo "ok   TLS 1.2 with ECDSA and RSA certificates"

step "/metrics: refused through nginx, served on the monitoring network"
code=$(curl -s "${HOSTOPT[@]}" -o "$R/metrics.out" -w '%{http_code}' https://yourdomain.com/metrics)
[ "$code" = 404 ] || fail "/metrics through nginx answered $code"
grep -q '"error":"not_found"' "$R/metrics.out" || fail "/metrics refusal is not the JSON envelope"
mon=$(docker network ls --format '{{.Name}}' | grep '_monitoring$')
docker run --rm --network "$mon" --entrypoint permiso permiso:latest health --url http://app:8000/metrics >/dev/null \
  || fail "/metrics not reachable from the monitoring network"
echo "ok   /metrics only on the monitoring network"

step "nginx's own 429 in the JSON envelope, with Retry-After"
mkdir -p "$R/burst"
curl -s "${HOSTOPT[@]}" --parallel --parallel-max 60 -o "$R/burst/#1.body" \
  -w '%{http_code} %header{retry-after}\n' "https://yourdomain.com/health/live?[1-400]" > "$R/burst.codes" 2>/dev/null
n429=$(grep -c '^429 ' "$R/burst.codes" || true)
[ "$n429" -gt 0 ] || fail "no 429 from the per-address ceiling in a burst of 400"
grep '^429 ' "$R/burst.codes" | grep -vq '^429 1$' && fail "an nginx 429 without Retry-After: 1"
[ "$(grep -l '"error":"rate_limit_exceeded"' "$R"/burst/*.body | wc -l)" = "$n429" ] || fail "a 429 body is not the JSON envelope"
echo "ok   $n429 of 400 burst requests got nginx's JSON 429 with Retry-After: 1"
sleep 3

step "log rotation (deploy/logrotate/permiso, with this run's log directory)"
sed "s|/var/log/permiso|$LOGDIR|g" deploy/logrotate/permiso > "$R/logrotate.conf"
ls -la "$LOGDIR"
logrotate -f -s "$R/logrotate.state" "$R/logrotate.conf" || fail "logrotate"
[ -s "$LOGDIR/app.log.1" ] || fail "app.log was not rotated"
[ -e "$LOGDIR/access.log.1" ] || fail "access.log was not rotated"
sleep 1
curl -sf "${HOSTOPT[@]}" -o /dev/null "https://yourdomain.com/?after-rotation"
sleep 1
[ -s "$LOGDIR/app.log" ] || fail "permiso did not reopen app.log after rotation"
grep -q after-rotation "$LOGDIR/access.log" || fail "nginx did not reopen access.log after rotation"
echo "ok   rotated; permiso and nginx write to the new files"

# ---- A client through nginx for the rolling restarts: refresh grants and
# bearer calls, within the guide's rate limits (RATE_LIMIT_REFRESH=10/minute).
LOAD_OUT=$R/load
start_load() {
  rm -f "$LOAD_OUT".*
  python3 - "$LOAD_OUT" "$R/ca.pem" "$ADMIN_PASSWORD" <<'PY' &
import json, ssl, sys, time, http.client, urllib.parse, os
out, ca, pw = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
class Conn(http.client.HTTPSConnection):
    def connect(self):
        import socket
        sock = socket.create_connection(("127.0.0.1", 443), timeout=30)
        self.sock = ctx.wrap_socket(sock, server_hostname="yourdomain.com")
def call(method, path, body=None, token=None):
    c = Conn("yourdomain.com", 443, timeout=30)
    h = {"Host": "yourdomain.com"}
    if body is not None:
        h["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(body)
    if token:
        h["Authorization"] = "Bearer " + token
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    except Exception as e:
        return 0, repr(e)
    finally:
        c.close()
ok = fail = 0
log = open(out + ".failures", "w")
s, b = call("POST", "/api/v1/auth/token", {"grant_type": "password", "username": "admin", "password": pw})
if s != 200:
    log.write("login %d %s\n" % (s, b)); log.flush(); sys.exit(1)
t = json.loads(b); access, refresh = t["access_token"], t["refresh_token"]
last_refresh = time.time()
while not os.path.exists(out + ".stop"):
    if time.time() - last_refresh > 7:
        s, b = call("POST", "/api/v1/auth/token", {"grant_type": "refresh_token", "refresh_token": refresh})
        last_refresh = time.time()
        if s == 200:
            t = json.loads(b); access, refresh = t["access_token"], t["refresh_token"]; ok += 1
        else:
            fail += 1; log.write("refresh %d %s\n" % (s, b[:300])); log.flush()
    s, b = call("GET", "/api/v1/users/me", token=access)
    if s == 200: ok += 1
    else:
        fail += 1; log.write("users/me %d %s\n" % (s, b[:300])); log.flush()
    with open(out + ".counts", "w") as f: f.write("%d %d\n" % (ok, fail))
    time.sleep(0.15)
PY
  LOAD_PID=$!
  for _ in $(seq 1 100); do [ -s "$LOAD_OUT.counts" ] && break; kill -0 $LOAD_PID 2>/dev/null || break; sleep 0.2; done
  [ -s "$LOAD_OUT.counts" ] || { cat "$LOAD_OUT.failures" 2>/dev/null; fail "load client did not start"; }
}
load_counts() { cat "$LOAD_OUT.counts"; }
stop_load() {
  touch "$LOAD_OUT.stop"; wait "$LOAD_PID" || true; LOAD_PID=""
  read -r ok failed < "$LOAD_OUT.counts"
  echo "client through nginx: $ok requests succeeded, $failed failed"
  [ "$failed" = 0 ] || { head -20 "$LOAD_OUT.failures"; fail "$failed requests failed during the rolling restarts"; }
}

step "HS secret rotation by two rolling restarts, under load (docs/deployment.md)"
start_load
# docs/deployment.md, "Rotating the HS* secret", as written there.
openssl rand -hex 32 > deploy/secrets/new_secret
cp deploy/secrets/new_secret deploy/secrets/jwt_next_secret        # 1. announce
scripts/rolling_restart.sh
sleep 3
cp deploy/secrets/jwt_secret deploy/secrets/jwt_previous_secret    # 2. switch
cp deploy/secrets/new_secret deploy/secrets/jwt_secret
: > deploy/secrets/jwt_next_secret
scripts/rolling_restart.sh
rm deploy/secrets/new_secret
# 3. retire: once no token of the old secret is in use. In production that
# is the longest token lifetime after step 2; here the client's tokens are
# all newer once it has refreshed after step 2 (every 7 s).
sleep 9
: > deploy/secrets/jwt_previous_secret                             # 3. retire
scripts/rolling_restart.sh
sleep 2
echo "after the rotation: $(load_counts) (ok failed)"

step "upgrade (VERSION=1.0.1) and rollback to permiso:previous, rolling, under load"
sed -i 's/^VERSION=.*/VERSION=1.0.1/' deploy/.env
BACKUP_DIR=$R/backups-before-update scripts/backup_db.sh
docker tag permiso:latest permiso:previous
$DC build app >"$R/build2.log" 2>&1 || { tail -30 "$R/build2.log"; fail "second build"; }
$DC run --rm app migrate up
scripts/rolling_restart.sh --update
wait_ready
curl -f "${HOSTOPT[@]}" -s -o /dev/null https://yourdomain.com/health
ver=$(curl -sf "${HOSTOPT[@]}" https://yourdomain.com/health | python3 -c 'import json,sys; print(json.load(sys.stdin).get("version"))')
[ "$ver" = 1.0.1 ] || fail "after the upgrade /health says $ver"
echo "ok   upgraded to $ver"
docker tag permiso:previous permiso:latest
scripts/rolling_restart.sh --update
wait_ready
sleep 2
for _ in 1 2 3 4; do
  ver=$(curl -sf "${HOSTOPT[@]}" https://yourdomain.com/health | python3 -c 'import json,sys; print(json.load(sys.stdin).get("version"))')
  [ "$ver" = 1.0.0 ] || fail "after the rollback /health says $ver"
done
echo "ok   rolled back to $ver"
stop_load

# ---- Backups and a restore into a fresh database.
step "backup, then a restore into a fresh database"
BK=$R/backups
BACKUP_DIR=$BK scripts/backup_db.sh | tee "$R/backup.out"
backup=$(ls "$BK"/permiso_backup_*.sql.gz | tail -1)
[ -s "$backup" ] || fail "no backup file"
# A user registered after the backup (through nginx, as clients do).
s=$(curl -s "${HOSTOPT[@]}" -o "$R/register.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"username":"later","email":"later@example.com","password":"Second-Passw0rd!x9"}' \
  https://yourdomain.com/api/v1/users/register)
[ "$s" = 201 ] || fail "register after the backup: $s $(cat "$R/register.out")"
$DC down -v
$DC up -d db redis
for _ in $(seq 1 60); do
  $DC exec -T db pg_isready -U permiso -d permiso_prod >/dev/null 2>&1 && break
  sleep 1
done
if BACKUP_DIR=$R/empty-backups scripts/backup_db.sh >"$R/empty-backup.out" 2>&1; then
  cat "$R/empty-backup.out"; fail "backup_db.sh succeeded on an empty database"
fi
grep -q "no users table" "$R/empty-backup.out" || { cat "$R/empty-backup.out"; fail "backup_db.sh failed for another reason"; }
echo "ok   backup_db.sh refuses an empty database: $(tail -1 "$R/empty-backup.out")"
ls "$R/empty-backups"/permiso_backup_* 2>/dev/null && fail "a failed backup left a file"
scripts/restore_db.sh "$backup"
$DC up -d
wait_ready
s=$(curl -s "${HOSTOPT[@]}" -o /dev/null -w '%{http_code}' -X POST https://yourdomain.com/api/v1/auth/token \
  -d grant_type=password -d username=admin --data-urlencode "password=$ADMIN_PASSWORD")
[ "$s" = 200 ] || fail "login of a user created before the backup: $s"
s=$(curl -s "${HOSTOPT[@]}" -o /dev/null -w '%{http_code}' -X POST https://yourdomain.com/api/v1/auth/token \
  -d grant_type=password -d username=later --data-urlencode "password=Second-Passw0rd!x9")
[ "$s" = 400 ] || [ "$s" = 401 ] || fail "user created after the backup: $s, want refused"
echo "ok   restored: the user from before the backup logs in, the later one does not exist"

step "restore into the existing database (database rollback)"
scripts/restore_db.sh "$backup"
$DC up -d
wait_ready
scripts/health_check.sh https://yourdomain.com/health

step "nginx's own 502 in the JSON envelope while no instance runs"
$DC stop app
hdr=$R/502.hdr
code=$(curl -s "${HOSTOPT[@]}" -D "$hdr" -o "$R/502.out" -w '%{http_code}' https://yourdomain.com/health)
[ "$code" = 502 ] || [ "$code" = 503 ] || fail "no instance: $code"
grep -qi '^retry-after: 1' "$hdr" || fail "nginx $code without Retry-After"
grep -q '"error":"unavailable"' "$R/502.out" || fail "nginx $code body: $(cat "$R/502.out")"
echo "ok   $code $(cat "$R/502.out")"

step "down -v"
$DC down -v

# ---- The same file with Compose v2 (`docker compose`): the images built
# above, the database from scratch, the operator's steps and the scripts
# (which take `docker compose` from COMPOSE, as they do where
# docker-compose is not installed), a rolling restart under load.
step "Compose v2: docker compose $COMPOSE_V2 (built from its Go module)"
wait "$V2BUILD_PID" || { tail -30 "$W/compose-v2-build.log"; fail "building docker compose $COMPOSE_V2"; }
V2BUILD_PID=""
mkdir -p "$R/dockercfg/cli-plugins"
cp "$V2DIR/docker-compose" "$R/dockercfg/cli-plugins/docker-compose"
export DOCKER_CONFIG=$R/dockercfg COMPOSE="docker compose"
DC="docker compose -f deploy/docker-compose.prod.yml"
docker compose version
$DC config -q
$DC up -d --no-build db redis
$DC run --rm app migrate up
$DC up -d --no-build
wait_ready
[ "$($DC ps -q app | wc -l)" = 2 ] || fail "Compose v2: want two app instances"
printf '%s\n' "$ADMIN_PASSWORD" | $DC exec -T app permiso create-admin \
  --username admin --email admin@example.com --password-stdin
BASE_URL=https://yourdomain.com ADMIN_USER=admin ADMIN_PASSWORD="$ADMIN_PASSWORD" scripts/smoke_tests.sh
start_load
scripts/rolling_restart.sh
sleep 2
stop_load
BACKUP_DIR=$R/backups-v2 scripts/backup_db.sh
[ -s "$(ls "$R"/backups-v2/permiso_backup_*.sql.gz | tail -1)" ] || fail "Compose v2: no backup"
$DC down -v
echo "ok   Compose v2: migrate, create-admin, smoke tests, rolling restart (0 failed), backup, down -v"
size_mib=$(awk -v s="$size" 'BEGIN{printf "%.1f", s/1048576}')
echo "image permiso:latest: $size bytes ($size_mib MiB)"
