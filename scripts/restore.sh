#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into DATABASE_URL and MEDIA_ROOT.
#
#   DATABASE_URL=postgresql://... MEDIA_ROOT=/data/media scripts/restore.sh BACKUP_DIR
#
# Checks the archive checksums first (nothing is touched if they do not match), then replaces
# the database's objects with the dump's (pg_restore --clean, in one transaction) and unpacks
# the media over MEDIA_ROOT. Stop the web and the workers first. See docs/backup.md.
set -euo pipefail

src="${1:?usage: restore.sh BACKUP_DIR}"
: "${DATABASE_URL:?set DATABASE_URL (PostgreSQL)}"
media="${MEDIA_ROOT:-./cellabel-data/media}"
url="${DATABASE_URL/+psycopg/}"
url="${url/#postgres:\/\//postgresql://}"

(cd "$src" && sha256sum --check --quiet SHA256SUMS) || {
  echo "restore.sh: $src does not match its SHA256SUMS; nothing was restored" >&2
  exit 3
}
pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
  --exit-on-error --dbname="$url" "$src/db.dump"
mkdir -p "$media"
tar -C "$media" -xzf "$src/media.tar.gz"
echo "restored $src"
