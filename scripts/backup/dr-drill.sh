#!/usr/bin/env bash
# The guide's monthly DR test: restores the latest PostgreSQL backup (a
# base backup with PITR to the newest archived WAL, or the latest dump) and
# the latest Redis backup into scratch servers on this machine, checks
# them, and reports the RTO and RPO achieved against the guide's targets.
#
# Usage: dr-drill.sh [-s s3|gcs|file] [-p auto|physical|logical|none] [-R]
#   -s s3|gcs|file   Where the backups are stored (default: file)
#   -p SOURCE        Which PostgreSQL backup to restore (default: auto)
#   -R               No Redis
# Exit code: 0 passed, 1 a check failed or a target was missed.
set -euo pipefail
source "$(dirname "$0")/common.sh"

args=()
while getopts ":s:p:Rh" opt; do
  case $opt in
    s) args+=(-s "$OPTARG") ;;
    p) args+=(--postgres "$OPTARG") ;;
    R) args+=(--no-redis) ;;
    h) usage; exit 0 ;;
    :|\?) bad_option "$opt" ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  bad_usage "unexpected argument: $1"
fi
exec "$(mailqueue_bin)" dr drill "${args[@]}"
