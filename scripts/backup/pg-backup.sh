#!/usr/bin/env bash
# Backs up the PostgreSQL database (DATABASE_URL), as the operations guide
# describes: pg_dump -Fc, compressed, optionally encrypted, uploaded, with a
# manifest, retention, metrics and an optional Slack message.
#
# Usage: pg-backup.sh [-P] [-c gzip|zstd] [-e] [-u s3|gcs] [-n] [-r DAYS]
#   -P             A physical base backup (for point-in-time recovery) instead of pg_dump
#   -c gzip|zstd   Compression type (default: zstd)
#   -e             Encrypt with GPG (to GPG_RECIPIENT)
#   -u s3|gcs      Upload destination (default: MAILQUEUE_BACKUP_DIR)
#   -n             Send Slack notification (SLACK_WEBHOOK_URL)
#   -r DAYS        Retention days (default: 30)
set -euo pipefail
source "$(dirname "$0")/common.sh"

args=()
kind=()
while getopts ":Pc:eu:nr:h" opt; do
  case $opt in
    P) kind=(--physical) ;;
    c) args+=(-c "$OPTARG") ;;
    e) args+=(-e) ;;
    u) args+=(-u "$OPTARG") ;;
    n) args+=(-n) ;;
    r) args+=(-r "$OPTARG") ;;
    h) usage; exit 0 ;;
    :|\?) bad_option "$opt" ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  bad_usage "unexpected argument: $1"
fi
exec "$(mailqueue_bin)" backup postgres "${kind[@]}" "${args[@]}"
