# Shared helpers for the benchmark scripts (sourced, not run).
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
# Cargo's target directory: CARGO_TARGET_DIR when set, else where cargo
# says it builds (it may be configured outside the checkout).
TARGET_DIR=${CARGO_TARGET_DIR:-$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null || echo "$ROOT/target")}
# MAILQUEUE_BIN: a release binary built elsewhere.
BIN=${MAILQUEUE_BIN:-$TARGET_DIR/release/mailqueue}
PREBUILT=${MAILQUEUE_BIN:-}
# MAILQUEUE_BENCH_RESULTS: where the results files go instead of
# bench/results (bench/compare.sh points its runs elsewhere).
RESULTS=${MAILQUEUE_BENCH_RESULTS:-$BENCH_DIR/results}
mkdir -p "$RESULTS"
# MAILQUEUE_BENCH_RATES: a file to which the benchmarks also append their
# headline rates, one "STORE<TAB>RATE<TAB>VALUE" line each (see record_rate).
RATES_FILE=${MAILQUEUE_BENCH_RATES:-}
# MAILQUEUE_BENCH_DISPATCH: a dispatch_bench example built elsewhere
# (bench/compare.sh runs each side's own); see build_dispatch_bench.
PREBUILT_DISPATCH=${MAILQUEUE_BENCH_DISPATCH:-}
# MAILQUEUE_BENCH_SUBMISSION_LOAD, MAILQUEUE_BENCH_REPORT_LOAD: the SMTP
# load generators built elsewhere; see build_example.
PREBUILT_SUBMISSION_LOAD=${MAILQUEUE_BENCH_SUBMISSION_LOAD:-}
PREBUILT_REPORT_LOAD=${MAILQUEUE_BENCH_REPORT_LOAD:-}

log() { printf '==> %s\n' "$*" >&2; }

# need COMMAND...: installs the Debian packages of the commands missing.
need() {
  local missing=() packages=()
  for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing tools for: ${missing[*]}"
  for cmd in "${missing[@]}"; do
    case $cmd in
      smtp-sink | smtp-source) packages+=(postfix) ;;
      pgbench) packages+=(postgresql-contrib) ;;
      redis-server) packages+=(redis-server) ;;
      redis-cli) packages+=(redis-tools) ;;
      node | npm) packages+=(nodejs npm) ;;
      *) packages+=("$cmd") ;;
    esac
  done
  # postfix provides smtp-sink and smtp-source; keep its daemon (and any
  # other installed service) from starting.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

build_release() {
  [ -z "$PREBUILT" ] || return 0
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --locked --bin mailqueue >&2)
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

machine() {
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  printf '%s, %s cores, %s GiB RAM, %s' "$cpu" "$(nproc)" \
    "$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)" "$(uname -r)"
}

PG_ADMIN_URL=${MAILQUEUE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# Once read, the benchmarks' and the test suite's own variables leave the
# environment: mailqueue refuses MAILQUEUE_* variables that are not its
# settings, and the processes started here (PostgreSQL's archive_command
# among them) inherit the environment.
for name in $(compgen -e | grep -E '^MAILQUEUE_(BIN|BENCH_|TEST_)' || true); do
  unset "$name"
done
pg_url_for() { echo "${PG_ADMIN_URL%/*}/$1"; }
fresh_database() {
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1"
}

# start_server DATA_DIR PORT [ENV=VALUE ...]: starts `mailqueue serve`, sets SERVER_PID.
start_server() { start_role "$1" all "$2" "${@:3}"; }

# start_role DATA_DIR api|worker|all PORT [ENV=VALUE ...]: starts
# `mailqueue serve` in that role (its log in DATA_DIR/ROLE-PORT.log), waits
# until /healthz answers, sets SERVER_PID.
start_role() {
  local dir=$1 role=$2 port=$3 log
  shift 3
  mkdir -p "$dir"
  log="$dir/$role-$port.log"
  env -i PATH="$PATH" HOME="$HOME" MAILQUEUE_DATA_DIR="$dir/data" MAILQUEUE_LISTEN="127.0.0.1:$port" \
    MAILQUEUE_ROLE="$role" MAILQUEUE_LOG=warn "$@" "$BIN" serve >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not start; see $log" >&2
  exit 1
}

# peak_rss_mb PID: the process's peak resident set (VmHWM), in MB.
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

stop_server() { stop_pid "$SERVER_PID"; }

stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# start_redis: a private redis-server without persistence on a free port,
# so that nothing else sends it commands; sets REDIS_PORT and REDIS_PID.
start_redis() {
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --loglevel warning >/dev/null &
  REDIS_PID=$!
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server did not start" >&2
  exit 1
}

# redis_info FILE: saves the private Redis's `INFO all` (one command).
redis_info() { redis-cli -p "$REDIS_PORT" info all | tr -d '\r' > "$1"; }
# info_field FILE NAME: one field of a saved INFO.
info_field() { awk -F: -v f="$2" '$1 == f {print $2}' "$1"; }
# redis_stat NAME: one field of the private Redis's INFO now.
redis_stat() { redis-cli -p "$REDIS_PORT" info all | tr -d '\r' | awk -F: -v f="$1" '$1 == f {print $2}'; }

create_key() {
  env -i PATH="$PATH" MAILQUEUE_DATA_DIR="$1/data" "${@:2}" "$BIN" api-keys create --name bench | tail -n 1
}

# build_dispatch_bench: the dispatch-layer driver (an example of
# mailqueue-queue), MAILQUEUE_BENCH_DISPATCH's if set (nothing is built
# then); sets DISPATCH_BENCH to its path.
build_dispatch_bench() {
  if [ -n "$PREBUILT_DISPATCH" ]; then
    DISPATCH_BENCH=$PREBUILT_DISPATCH
    return 0
  fi
  log "building the dispatch bench driver"
  (cd "$ROOT" && cargo build --release --locked -p mailqueue-queue --example dispatch_bench >&2)
  DISPATCH_BENCH="$TARGET_DIR/release/examples/dispatch_bench"
}

# pgbench_insert_rate WORK_DIR CLIENTS SECONDS: the baseline of acceptance,
# pgbench's single-row inserts of a 2 KiB email row per transaction (same
# columns and indexes as `emails`, content inline), in transactions/s.
pgbench_insert_rate() {
  local work=$1 clients=$2 seconds=$3
  fresh_database mq_bench_pgbench
  psql "$(pg_url_for mq_bench_pgbench)" -q <<'SQL'
CREATE TABLE email_rows (
    id uuid PRIMARY KEY, status text NOT NULL, priority smallint NOT NULL, message_id text NOT NULL,
    content jsonb NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    scheduled_at timestamptz, next_attempt_at timestamptz);
CREATE INDEX email_rows_status_id_idx ON email_rows (status, id);
SQL
  cat > "$work/insert.sql" <<'SQL'
INSERT INTO email_rows (id, status, priority, message_id, content, created_at, updated_at, next_attempt_at)
VALUES (gen_random_uuid(), 'queued', 1, '<bench@acme.test>',
        jsonb_build_object('from', 'billing@acme.test', 'to', jsonb_build_array('customer@example.com'),
                           'subject', 'Your invoice', 'text', repeat('x', 1900)),
        now(), now(), now());
SQL
  log "pgbench: ${seconds}s with $clients clients"
  pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -f "$work/insert.sql" "$(pg_url_for mq_bench_pgbench)" > "$work/pgbench.txt" 2>&1
  grep -oP 'tps = \K[0-9]+' "$work/pgbench.txt"
}

now_s() { date +%s.%N; }

# record_rate STORE NAME VALUE: when MAILQUEUE_BENCH_RATES names a file,
# appends one headline rate to it (bench/compare.sh reads them).
record_rate() {
  [ -z "$RATES_FILE" ] || printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RATES_FILE"
}

# smtp_source_rate SINK_PORT COUNT SESSIONS [-d]: the baseline of delivery,
# Postfix's smtp-source sending COUNT 2 KiB messages into the sink, in
# messages per second.
smtp_source_rate() {
  local port=$1 count=$2 sessions=$3 start end
  shift 3
  log "smtp-source $*: $count messages over $sessions sessions"
  start=$(now_s)
  smtp-source "$@" -s "$sessions" -m "$count" -l 2048 -f billing@acme.test -t customer@example.com \
    "127.0.0.1:$port"
  end=$(now_s)
  python3 -c "print(f'{$count / ($end - $start):.0f}')"
}

# field NAME "k=v ...": the value of NAME in a result line.
field() { grep -oP "$1=\K[0-9.]+" <<<"$2"; }

# start_sink: Postfix's smtp-sink on a free port; sets SINK_PORT (also
# sink_port) and SINK_PID, and stops it at exit unless the caller sets its
# own EXIT trap.
start_sink() {
  SINK_PORT=$(free_port)
  sink_port=$SINK_PORT
  smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 1024 &
  SINK_PID=$!
  trap 'kill $SINK_PID 2>/dev/null || true' EXIT
}

# start_webhook_receiver: starts bench/webhook_receiver.py on a free port
# (receiver_port, receiver_pid); after start_sink, stopped with the sink.
start_webhook_receiver() {
  receiver_port=$(free_port)
  python3 "$BENCH_DIR/webhook_receiver.py" "$receiver_port" &
  receiver_pid=$!
  trap 'kill $SINK_PID $receiver_pid 2>/dev/null || true' EXIT
  sleep 0.5
}
# metric PORT NAME: one metric's value from the server's /metrics.
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# received: the POSTs the receiver has counted.
received() { curl -fs "http://127.0.0.1:$receiver_port/count"; }
# Every event a webhook can subscribe to, as the API takes them.
WEBHOOK_EVENTS='["email.sent","email.scheduled","email.delivered","email.delivery_delayed","email.bounced","email.failed","email.suppressed"]'
# cpu_busy: the machine's busy CPU time so far, in clock ticks (all cores,
# every process).
cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# cpu_of PID: the process's CPU time so far (user and system), in clock ticks.
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# write_bodies DIR: the 2 KiB emails the benchmarks post, due at once
# (DIR/now.json) and the next day (DIR/later.json).
write_bodies() {
  python3 "$BENCH_DIR/make_email.py" 2048 > "$1/now.json"
  python3 "$BENCH_DIR/make_email.py" 2048 "in 1 day" > "$1/later.json"
}

# load_backlog NAME PORT KEY COUNT: COUNT emails through the API on PORT,
# all scheduled for one instant LOAD_WINDOW (40) seconds ahead, so that
# delivery starts once they are all stored; sets AT (RFC 3339) and AT_EPOCH.
load_backlog() {
  AT_EPOCH=$(($(date +%s) + ${LOAD_WINDOW:-40}))
  AT=$(date -u -d "@$AT_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  log "$1: loading $4 emails scheduled for $AT"
  python3 "$BENCH_DIR/load_backlog.py" "http://127.0.0.1:$2" "$3" "$4" "$AT"
  [ "$(date +%s)" -lt "$AT_EPOCH" ] || { echo "loading took longer than LOAD_WINDOW; raise it" >&2; exit 1; }
}

# start_holding_postfix DIR PORT LOG_PREFIX_DIR: a private Postfix instance
# (Debian's package) under DIR whose smtpd on 127.0.0.1:PORT takes every
# message from mynetworks into its queue (fsynced before its 250) and holds
# it there (access action HOLD: nothing is delivered); its log in
# DIR/maillog (LOG_PREFIX_DIR must hold DIR).
start_holding_postfix() {
  local dir=$1 port=$2 prefix=$3
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
  chown postfix "$dir/data"
  [ -f /etc/postfix/main.cf ] || echo "compatibility_level = 3.6" > /etc/postfix/main.cf
  local alternates
  alternates=$(postconf -h alternate_config_directories 2>/dev/null || true)
  case " $alternates," in
    *" $dir/etc,"*) ;;
    *) postconf -e "alternate_config_directories = ${alternates:+$alternates, }$dir/etc" ;;
  esac
  cp /etc/postfix/dynamicmaps.cf "$dir/etc/" 2>/dev/null || true
  # Debian's master.cf: its smtpd on our port, nothing chrooted, no other
  # listener, and postlogd for a log file.
  awk -v port="$port" '
    /^[#[:space:]]/ || NF < 8 { print; next }
    $2 == "inet" && $1 != "smtp" { next }
    $1 == "smtp" && $2 == "inet" { $1 = "127.0.0.1:" port }
    $NF == "postlogd" { postlog = 1 }
    { $5 = "n"; print }
    END { if (!postlog) print "postlog unix-dgram n - n - 1 postlogd" }
  ' /etc/postfix/master.cf > "$dir/etc/master.cf"
  cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/maillog
maillog_file_prefixes = /var, /dev/stdout, $prefix
myhostname = postfix.bench
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access static:HOLD
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
disable_dns_lookups = yes
smtp_host_lookup = native
biff = no
CF
  postfix -c "$dir/etc" set-permissions create-missing >/dev/null 2>&1
  postfix -c "$dir/etc" start >/dev/null 2>&1
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "postfix did not start; see $dir/maillog" >&2
  exit 1
}
stop_holding_postfix() { postfix -c "$1/etc" stop >/dev/null 2>&1 || true; }
# held_by_postfix DIR: the messages on hold in the instance's queue.
held_by_postfix() { find "$1/queue/hold" -type f | wc -l; }

# build_example NAME [PACKAGE]: an example of PACKAGE (default
# mailqueue-smtp-server, whose examples are the SMTP load generators), the
# one PREBUILT_<NAME> names if set; prints its path.
build_example() {
  local var
  var="PREBUILT_$(tr '[:lower:]' '[:upper:]' <<<"$1")"
  if [ -n "${!var:-}" ]; then
    echo "${!var}"
    return 0
  fi
  log "building the $1 example"
  (cd "$ROOT" && cargo build --release --locked -p "${2:-mailqueue-smtp-server}" --example "$1" >&2)
  echo "$TARGET_DIR/release/examples/$1"
}

# two_sides MAX_SPREAD "POSTFIX RATES" "MAILQUEUE RATES": medians, their
# ratio (mailqueue / postfix) and spreads ((max - min) / median, with five
# runs or more of all but the fastest and slowest), and which
# side's runs disagree (spread above MAX_SPREAD), as one line of k=v:
# postfix= mailqueue= ratio= postfix_spread= mailqueue_spread= refused=.
two_sides() {
  python3 - "$1" "$2" "$3" <<'PY'
import statistics, sys
max_spread = float(sys.argv[1])
sides = {"postfix": [float(x) for x in sys.argv[2].split()], "mailqueue": [float(x) for x in sys.argv[3].split()]}
def kept(v):
    # With five runs or more, one passing spell of the machine does not
    # void a side: its fastest and slowest runs are set aside.
    v = sorted(v)
    return v[1:-1] if len(v) >= 5 else v
spread = {k: (max(kept(v)) - min(kept(v))) / statistics.median(v) for k, v in sides.items()}
median = {k: statistics.median(v) for k, v in sides.items()}
refused = [k for k, s in spread.items() if s > max_spread]
print(f"postfix={median['postfix']:.0f} mailqueue={median['mailqueue']:.0f} "
      f"ratio={median['mailqueue'] / median['postfix']:.2f} postfix_spread={spread['postfix']:.3f} "
      f"mailqueue_spread={spread['mailqueue']:.3f} refused={','.join(refused) or 'none'}")
PY
}
# pct FRACTION: as a percentage with one decimal.
pct() { python3 -c "print(f'{$1:.1%}')"; }
