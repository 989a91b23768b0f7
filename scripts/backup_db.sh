#!/usr/bin/env bash
# Daily database backup (deployment guide, "Database Backup Strategy"):
#   crontab: 0 2 * * * /srv/permiso/scripts/backup_db.sh
#
# By default it runs pg_dump where pg_dump lives, in the db container of
# deploy/docker-compose.prod.yml (COMPOSE_FILE), as the guide does. Without
# Docker, set PERMISO_BIN and name the database explicitly, with
# DATABASE_URL or PERMISO_ENV_FILE (an .env file): `permiso backup` then
# writes pg_dump's output (PostgreSQL) or an online copy (SQLite). There is
# no default database: cron runs without the operator's .env, and a
# default would back up a new, empty SQLite file.
#
# The dump is checked before it counts: it must hold permiso's users table,
# or the script fails (exit 1) and leaves no file behind. PostgreSQL dumps
# are written with --clean --if-exists, so scripts/restore_db.sh can
# restore one into the existing database as well as into a new one.
# Keeps RETENTION_DAYS (30) days of backups in BACKUP_DIR (/backups).
set -euo pipefail
BACKUP_DIR="${BACKUP_DIR:-/backups}"
COMPOSE_FILE="${COMPOSE_FILE:-$(cd "$(dirname "$0")/.." && pwd)/deploy/docker-compose.prod.yml}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
TIMESTAMP=$(date -u +%Y%m%d_%H%M%S)
BACKUP_FILE="permiso_backup_${TIMESTAMP}.sql"
die() { echo "backup_db.sh: $*" >&2; exit "${2:-1}"; }

mkdir -p "$BACKUP_DIR"
partial="${BACKUP_DIR}/.${BACKUP_FILE}.partial"
trap 'rm -f "$partial"' EXIT
if [ -n "${PERMISO_BIN:-}" ]; then
  if [ -n "${PERMISO_ENV_FILE:-}" ]; then
    "$PERMISO_BIN" --env-file "$PERMISO_ENV_FILE" backup --out "$partial"
  elif [ -n "${DATABASE_URL:-}" ]; then
    "$PERMISO_BIN" backup --out "$partial"
  else
    die "refusing to guess the database: set DATABASE_URL or PERMISO_ENV_FILE (PERMISO_BIN is set)" 2
  fi
else
  if [ -n "${COMPOSE:-}" ]; then read -r -a DC <<<"$COMPOSE"
  elif command -v docker-compose >/dev/null 2>&1; then DC=(docker-compose)
  else DC=(docker compose); fi
  [ -f "$COMPOSE_FILE" ] || die "no compose file at $COMPOSE_FILE (set COMPOSE_FILE)" 2
  "${DC[@]}" -f "$COMPOSE_FILE" exec -T db \
    pg_dump -U permiso --clean --if-exists --no-owner permiso_prod > "$partial"
fi
# An empty or foreign database is a failed backup, not a good one.
if ! grep -aqE 'CREATE TABLE (IF NOT EXISTS )?("?public"?\.)?"?users"? ?\(' "$partial"; then
  die "the dump holds no users table (empty or wrong database?); no backup written"
fi
gzip -c "$partial" > "${partial}.gz"
mv "${partial}.gz" "${BACKUP_DIR}/${BACKUP_FILE}.gz"
find "$BACKUP_DIR" -name 'permiso_backup_*.sql.gz' -mtime +"$RETENTION_DAYS" -delete
echo "Backup completed: ${BACKUP_DIR}/${BACKUP_FILE}.gz"
