#!/usr/bin/env bash
# The weekly verification: reads the latest backup of every kind completely
# (checksum, decryption, decompression, pg_restore / redis-check-rdb /
# redis-check-aof / SQLite integrity check) and warns about age (> 24 h)
# and size (±50% of the recent median).
#
# Usage: verify-backups.sh [-s s3|gcs|file] [-a] [-R]
#   -s s3|gcs|file   Where the backups are stored (default: file)
#   -a               Verify every backup, not only the latest of each kind
#   -R               Also restore PostgreSQL backups into a scratch database
# Exit code: 0 sound, 3 sound with warnings, 1 a backup is damaged or missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"

args=()
which=latest
while getopts ":s:aRh" opt; do
  case $opt in
    s) args+=(-s "$OPTARG") ;;
    a) which=all ;;
    R) args+=(--restore) ;;
    h) usage; exit 0 ;;
    :|\?) bad_option "$opt" ;;
  esac
done
exec "$(mailqueue_bin)" verify "$which" "${args[@]}"
