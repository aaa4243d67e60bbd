# Shared by the backup scripts (sourced). They are thin wrappers: the work
# is done by the `mailqueue` binary, so the flags here are only translated.

# Cron runs with an empty environment: read DATABASE_URL, GPG_RECIPIENT,
# MAILQUEUE_BACKUP_S3_URL, SLACK_WEBHOOK_URL ... from this file if it exists.
env_file=${MAILQUEUE_ENV_FILE:-/etc/mailqueue/backup.env}
if [ -f "$env_file" ]; then
  set -a
  # shellcheck disable=SC1090
  . "$env_file"
  set +a
fi

# The binary: $MAILQUEUE_BIN, else `mailqueue` on PATH, else this checkout's
# release build. The scripts' own variables are not passed on: the binary
# refuses MAILQUEUE_* variables it does not know.
bin_override=${MAILQUEUE_BIN:-}
unset MAILQUEUE_BIN MAILQUEUE_ENV_FILE
mailqueue_bin() {
  if [ -n "$bin_override" ]; then
    echo "$bin_override"
  elif command -v mailqueue >/dev/null 2>&1; then
    echo mailqueue
  else
    echo "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/mailqueue"
  fi
}

# The script's own header, from "# Usage" to the first line that is not a
# comment, and the way out on a bad command line (exit code 2).
usage() { awk '/^# Usage/ {p = 1} p && !/^#/ {exit} p {sub(/^# ?/, ""); print}' "$0"; }
bad_usage() {
  echo "$(basename "$0"): $1" >&2
  usage >&2
  exit 2
}
# getopts' verdict on an option it could not take (":" or "?").
bad_option() {
  if [ "$1" = ":" ]; then bad_usage "-$OPTARG needs a value"; fi
  bad_usage "unknown option -$OPTARG"
}
