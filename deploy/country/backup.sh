#!/usr/bin/env bash
# Nightly back-up (a systemd timer or cron, as a user that may read both databases and the
# data folder): both PostgreSQL databases and the uploaded photos, dated, kept 30 days.
# Restore: pg_restore --clean --if-exists -d tidtam tidtam-DATE.dump (same for prefect), and
# rsync the photos back; tidtam's database names the files, the folder holds them.
set -euo pipefail
DEST=${DEST:-/srv/backup/tidtam}
DB_HOST=${DB_HOST:-db.tidtam.internal}
DATA_DIR=${DATA_DIR:-/srv/tidtam/data}
day=$(date +%F)
mkdir -p "$DEST/$day"

# tidtam's database: the system of record (districts, items, reports, users, outbox, audit).
pg_dump -h "$DB_HOST" -U tidtam -Fc -f "$DEST/$day/tidtam-$day.dump" tidtam
# Prefect's database: run history, deployments, automations. Losing it loses no report or
# tracked item (bootstrap.sh recreates deployments and automations), but keeps the history.
pg_dump -h "$DB_HOST" -U prefect -Fc -f "$DEST/$day/prefect-$day.dump" prefect
# The uploaded photos (and compiled reports): hard links to yesterday's copy save space.
prev=$(ls -1d "$DEST"/????-??-?? 2>/dev/null | grep -v "/$day\$" | tail -1 || true)
rsync -a --delete ${prev:+--link-dest="$prev/data"} "$DATA_DIR/" "$DEST/$day/data/"

find "$DEST" -mindepth 1 -maxdepth 1 -type d -name '????-??-??' -mtime +30 -exec rm -rf {} +
