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
    :|\?) bad_option "$opt" ;;
  esac
done
shift $((OPTIND - 1))
if [ -z "$mode" ] || [ $# -gt 0 ]; then
  bad_usage "-m rdb|aof|both is required"
fi
exec "$(mailqueue_bin)" backup redis -m "$mode" "${args[@]}"
