#!/usr/bin/env bash
# Restores a Redis backup for a stopped Redis, as the operations guide
# describes, then checks the key count with a private redis-server.
#
# Usage: redis-restore.sh -s s3|gcs|file latest|<backup id>
#   -s s3|gcs|file   Where the backup is stored
# The stopped Redis is described by REDIS_CONF (default /etc/redis/redis.conf);
# an RDB backup is installed so that Redis loads it with appendonly yes too.
set -euo pipefail
source "$(dirname "$0")/common.sh"

source_place=""
while getopts ":s:h" opt; do
  case $opt in
    s) source_place=$OPTARG ;;
    h) usage; exit 0 ;;
    :|\?) bad_option "$opt" ;;
  esac
done
shift $((OPTIND - 1))
if [ -z "$source_place" ] || [ $# -ne 1 ]; then
  bad_usage "give -s s3|gcs|file and latest or a backup id"
fi
exec "$(mailqueue_bin)" restore redis "$1" -s "$source_place" --redis-conf "${REDIS_CONF:-/etc/redis/redis.conf}"
