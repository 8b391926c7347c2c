#!/usr/bin/env bash
# Back up CelLabel: the PostgreSQL database (pg_dump, custom format) and the media folder (tar).
#
#   DATABASE_URL=postgresql://... MEDIA_ROOT=/data/media scripts/backup.sh BACKUP_DIR
#
# Writes BACKUP_DIR/db.dump, BACKUP_DIR/media.tar.gz and BACKUP_DIR/SHA256SUMS. The database is
# dumped first, in one consistent snapshot; media files are only ever added under new clip
# folders, so a media archive taken after the dump holds every file the dump refers to.
# Partial uploads (MEDIA_ROOT/uploads) are left out. See docs/backup.md.
set -euo pipefail

out="${1:?usage: backup.sh BACKUP_DIR}"
: "${DATABASE_URL:?set DATABASE_URL (PostgreSQL)}"
media="${MEDIA_ROOT:-./cellabel-data/media}"
# libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://).
url="${DATABASE_URL/+psycopg/}"
url="${url/#postgres:\/\//postgresql://}"
case "$url" in
  postgresql://*) ;;
  *) echo "backup.sh: DATABASE_URL must be PostgreSQL (embedded SQLite: copy the data folder while stopped)" >&2; exit 2 ;;
esac
[ -d "$media" ] || { echo "backup.sh: no media folder at $media" >&2; exit 2; }

mkdir -p "$out"
pg_dump --format=custom --no-owner --no-privileges --file="$out/db.dump" "$url"
tar -C "$media" --exclude=./uploads -czf "$out/media.tar.gz" .
(cd "$out" && sha256sum db.dump media.tar.gz > SHA256SUMS)
echo "backup written to $out"
