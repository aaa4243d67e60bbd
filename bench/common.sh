# Shared helpers for the benchmark scripts (sourced, not run).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# MAILQUEUE_BIN: a release binary built elsewhere (another target directory).
BIN=${MAILQUEUE_BIN:-$ROOT/target/release/mailqueue}
RESULTS="$BENCH_DIR/results"
mkdir -p "$RESULTS"

log() { printf '==> %s\n' "$*" >&2; }

need() {
  local missing=()
  for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing tools for: ${missing[*]}"
    # postfix provides smtp-sink and smtp-source; keep its daemon from starting.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk postfix postgresql-contrib time >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
}

build_release() {
  [ -z "${MAILQUEUE_BIN:-}" ] || return 0
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --locked --bin mailqueue >&2)
}

# start_sink: Postfix's smtp-sink on a free port (sink_port), stopped at exit.
start_sink() {
  sink_port=$(free_port)
  smtp-sink -u nobody "127.0.0.1:$sink_port" 1024 &
  sink_pid=$!
  trap 'kill $sink_pid 2>/dev/null || true' EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

machine() {
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  printf '%s, %s cores, %s GiB RAM, %s' "$cpu" "$(nproc)" \
    "$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)" "$(uname -r)"
}

PG_ADMIN_URL=${MAILQUEUE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_url_for() { echo "${PG_ADMIN_URL%/*}/$1"; }
fresh_database() {
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1"
}

# start_server DATA_DIR PORT [ENV=VALUE ...]: starts `mailqueue serve`, sets SERVER_PID.
start_server() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  env -i PATH="$PATH" HOME="$HOME" MAILQUEUE_DATA_DIR="$dir/data" MAILQUEUE_LISTEN="127.0.0.1:$port" \
    MAILQUEUE_LOG=warn "$@" "$BIN" serve >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not start; see $dir/server.log" >&2
  exit 1
}

# peak_rss_mb PID: the process's peak resident set (VmHWM), in MB.
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

create_key() {
  env -i PATH="$PATH" MAILQUEUE_DATA_DIR="$1/data" "${@:2}" "$BIN" api-keys create --name bench | tail -n 1
}
