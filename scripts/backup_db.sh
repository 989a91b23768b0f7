#!/usr/bin/env bash
# Daily database backup (deployment guide, "Database Backup Strategy").
#   crontab: 0 2 * * * /path/to/scripts/backup_db.sh
# Runs pg_dump in the db container of deploy/docker-compose.prod.yml (or,
# with PERMISO_BIN set, `permiso backup` without Docker: pg_dump for
# PostgreSQL, an online copy for SQLite), compresses the dump and keeps 30
# days.
set -euo pipefail
BACKUP_DIR="${BACKUP_DIR:-/backups}"
COMPOSE_FILE="${COMPOSE_FILE:-$(dirname "$0")/../deploy/docker-compose.prod.yml}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
TIMESTAMP=$(date -u +%Y%m%d_%H%M%S)
BACKUP_FILE="permiso_backup_${TIMESTAMP}.sql"

mkdir -p "$BACKUP_DIR"
if [ -n "${PERMISO_BIN:-}" ]; then
  # Without Docker: the permiso binary with the production environment.
  "$PERMISO_BIN" backup --out "${BACKUP_DIR}/${BACKUP_FILE}"
else
  docker compose -f "$COMPOSE_FILE" exec -T db \
    pg_dump -U permiso --no-owner permiso_prod > "${BACKUP_DIR}/${BACKUP_FILE}"
fi
gzip -f "${BACKUP_DIR}/${BACKUP_FILE}"
find "$BACKUP_DIR" -name 'permiso_backup_*.sql.gz' -mtime +"$RETENTION_DAYS" -delete
echo "Backup completed: ${BACKUP_DIR}/${BACKUP_FILE}.gz"
