#!/usr/bin/env bash
# The guide's hourly WAL check, under its name. WAL is not synced by this
# script: PostgreSQL archives each segment as it is completed through
# archive_command = 'mailqueue wal-push %p'. This checks that it works:
# archive lag and failures from pg_stat_archiver (DATABASE_URL), and gaps
# in the archived sequence since the newest base backup. It also refreshes
# the mailqueue_wal_* metrics.
#
# Usage: sync-wal.sh [-s s3|gcs|file] [-l SECONDS]
#   -s s3|gcs|file   Where the WAL is archived (default: file)
#   -l SECONDS       Archive lag allowed before it is a problem (default: 900)
# Exit code: 0 healthy, 1 lagging, failing or a segment missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"

args=()
while getopts ":s:l:h" opt; do
  case $opt in
    s) args+=(-s "$OPTARG") ;;
    l) args+=(--max-lag "$OPTARG") ;;
    h) usage; exit 0 ;;
    :|\?) bad_option "$opt" ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  bad_usage "unexpected argument: $1"
fi
exec "$(mailqueue_bin)" wal check "${args[@]}"
