#!/usr/bin/env bash
# The guide's hourly WAL check, under its name. WAL is not synced by this
# script: PostgreSQL archives each segment as it is completed through
# archive_command = 'mailqueue wal-push %p'. This checks that it works:
# from pg_stat_archiver (DATABASE_URL), the WAL written but not yet
# archived (commits a restore would lose) and failures; in the archive,
# gaps since the newest base backup and a tail missing against what
# PostgreSQL archived; and archive_timeout against the RPO target. It also
# refreshes the mailqueue_wal_* metrics.
#
# Usage: sync-wal.sh [-s s3|gcs|file] [-l SECONDS]
#   -s s3|gcs|file   Where the WAL is archived (default: file)
#   -l SECONDS       The RPO target: seconds written WAL may wait unarchived
#                    before it is a problem (default: 900)
# Exit code: 0 healthy, 1 exposed past the target, failing or a segment
# missing, 3 a warning only (archive_timeout off or over the target).
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
