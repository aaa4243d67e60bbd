#!/usr/bin/env bash
# Backs up Redis (REDIS_URL), as the operations guide describes.
#
# Usage: redis-backup.sh -m rdb|aof|both [-u s3|gcs] [-c gzip|zstd] [-e] [-n] [-r DAYS]
#   -m rdb|aof|both  RDB snapshot (BGSAVE), AOF files, or both
#   -u s3|gcs        Upload destination (default: MAILQUEUE_BACKUP_DIR)
#   -c gzip|zstd     Compression (default: gzip)
#   -e               Encrypt with GPG (to GPG_RECIPIENT)
#   -n               Send Slack notification (SLACK_WEBHOOK_URL)
#   -r DAYS          Retention days (default: 30)
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage() { awk '/^# Usage/ {p = 1} p && !/^#/ {exit} p {sub(/^# ?/, ""); print}' "$0"; }

args=()
mode=""
while getopts ":m:u:c:enr:h" opt; do
  case $opt in
    m) mode=$OPTARG ;;
    u) args+=(-u "$OPTARG") ;;
    c) args+=(-c "$OPTARG") ;;
    e) args+=(-e) ;;
    n) args+=(-n) ;;
    r) args+=(-r "$OPTARG") ;;
    h) usage; exit 0 ;;
    :) echo "redis-backup.sh: -$OPTARG needs a value" >&2; usage >&2; exit 2 ;;
    *) echo "redis-backup.sh: unknown option -$OPTARG" >&2; usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ -z "$mode" ] || [ $# -gt 0 ]; then
  echo "redis-backup.sh: -m rdb|aof|both is required" >&2
  usage >&2
  exit 2
fi
exec "$(mailqueue_bin)" backup redis -m "$mode" "${args[@]}"
