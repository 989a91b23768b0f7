#!/usr/bin/env bash
# Restore a backup of scripts/backup_db.sh into the db container of
# deploy/docker-compose.prod.yml (docs/deployment.md, "Restore and
# rollback"):
#   scripts/restore_db.sh /backups/permiso_backup_YYYYMMDD_HHMMSS.sql.gz
#
# Works on the existing database (a rollback: the dump drops and recreates
# permiso's tables) and on a new, empty one (after losing the volume). The
# app instances are stopped first, so nothing writes meanwhile; the restore
# is one transaction that stops at the first error, so a failed restore
# changes nothing. Start the instances again afterwards with
#   docker-compose -f deploy/docker-compose.prod.yml up -d
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BACKUP.sql.gz" >&2; exit 2; }
backup=$1
COMPOSE_FILE="${COMPOSE_FILE:-$(cd "$(dirname "$0")/.." && pwd)/deploy/docker-compose.prod.yml}"
if [ -n "${COMPOSE:-}" ]; then read -r -a DC <<<"$COMPOSE"
elif command -v docker-compose >/dev/null 2>&1; then DC=(docker-compose)
else DC=(docker compose); fi
DC+=(-f "$COMPOSE_FILE")

gzip -t "$backup"
# grep reads it all (no -q): an early exit would fail zcat, and the pipe.
zcat "$backup" | grep -aE 'CREATE TABLE ("?public"?\.)?"?users"? ?\(' >/dev/null \
  || { echo "restore_db.sh: $backup holds no users table; not restoring it" >&2; exit 1; }
"${DC[@]}" stop app
"${DC[@]}" up -d db
for _ in $(seq 1 60); do
  "${DC[@]}" exec -T db pg_isready -U permiso -d permiso_prod >/dev/null 2>&1 && break
  sleep 1
done
zcat "$backup" | "${DC[@]}" exec -T db \
  psql -q -U permiso -d permiso_prod -v ON_ERROR_STOP=1 --single-transaction >/dev/null
echo "Restore completed from $backup; start the app: ${DC[*]} up -d"
