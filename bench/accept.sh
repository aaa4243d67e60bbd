#!/usr/bin/env bash
# Acceptance benchmark: CONNS (64) concurrent clients POST 2 KiB emails to
# /v1/emails over loopback with wrk, for DURATION (20) seconds, on the
# embedded store and on PostgreSQL, with the workers delivering to
# Postfix's smtp-sink at the same time (as in production). Baseline in the
# same run: pgbench, same client count, inserting a 2 KiB row into the same
# `emails` table (same indexes). Writes bench/results/accept.md.
source "$(dirname "$0")/common.sh"
need wrk pgbench smtp-sink
build_release
DURATION=${DURATION:-20}
CONNS=${CONNS:-64}
work=$(mktemp -d /tmp/mailqueue-bench-accept.XXXX)
python3 "$BENCH_DIR/make_email.py" 2048 > "$work/email.json"
sink_port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$sink_port" 1024 &
sink_pid=$!
trap 'kill $sink_pid 2>/dev/null || true' EXIT

run_mode() {
  local mode=$1 dir="$work/$1" port
  port=$(free_port)
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port")
  if [ "$mode" = postgres ]; then
    fresh_database mq_bench_accept
    env+=(DATABASE_URL="$(pg_url_for mq_bench_accept)")
  fi
  mkdir -p "$dir"
  local key
  key=$(create_key "$dir" "${env[@]}")
  start_server "$dir" "$port" "${env[@]}"
  log "$mode: warming up"
  MQ_KEY=$key MQ_BODY="$work/email.json" wrk -t2 -c"$CONNS" -d3s -s "$BENCH_DIR/post_email.lua" "http://127.0.0.1:$port/v1/emails" >/dev/null
  log "$mode: measuring ${DURATION}s with $CONNS connections"
  MQ_KEY=$key MQ_BODY="$work/email.json" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$BENCH_DIR/post_email.lua" \
    "http://127.0.0.1:$port/v1/emails" > "$dir/wrk.txt"
  local rss
  rss=$(peak_rss_mb "$SERVER_PID")
  stop_server
  echo "$(grep '^RESULT' "$dir/wrk.txt") rss_mb=$rss"
}

pgbench_baseline() {
  fresh_database mq_bench_pgbench
  env -i PATH="$PATH" DATABASE_URL="$(pg_url_for mq_bench_pgbench)" MAILQUEUE_LOG=warn "$BIN" migrate >/dev/null
  cat > "$work/insert.sql" <<'SQL'
INSERT INTO emails (id, status, priority, message_id, content, created_at, updated_at, next_attempt_at)
VALUES (gen_random_uuid(), 'queued', 1, '<bench@acme.test>',
        jsonb_build_object('from', 'billing@acme.test', 'to', jsonb_build_array('customer@example.com'),
                           'subject', 'Your invoice', 'text', repeat('x', 1900)),
        now(), now(), now());
SQL
  log "pgbench: ${DURATION}s with $CONNS clients"
  pgbench -n -M prepared -c "$CONNS" -j 2 -T "$DURATION" -f "$work/insert.sql" "$(pg_url_for mq_bench_pgbench)" > "$work/pgbench.txt" 2>&1
  grep -oP 'tps = \K[0-9.]+(?= \(without initial)' "$work/pgbench.txt"
}

field() { grep -oP "$1=\K[0-9.]+" <<<"$2"; }
sqlite=$(run_mode sqlite)
postgres=$(run_mode postgres)
pgbench_tps=$(pgbench_baseline)
ratio=$(python3 -c "print(f'{$(field rate "$postgres") / $pgbench_tps:.2f}')")

cat > "$RESULTS/accept.md" <<MD
### Accepting emails (\`bench/accept.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). wrk and the server share the machine.

Command: \`wrk -t2 -c$CONNS -d${DURATION}s --latency -s bench/post_email.lua http://127.0.0.1:PORT/v1/emails\`
(2 KiB JSON emails, workers delivering to \`smtp-sink\` meanwhile). Baseline:
\`pgbench -n -M prepared -c $CONNS -j 2 -T $DURATION\` inserting a 2 KiB row into the same \`emails\` table.

| Mode | Accepted/s | p50 | p99 | Non-2xx | Peak RSS |
| --- | ---: | ---: | ---: | ---: | ---: |
| Embedded (SQLite) | $(field rate "$sqlite") | $(field p50_ms "$sqlite") ms | $(field p99_ms "$sqlite") ms | $(field non2xx "$sqlite") | $(field rss_mb "$sqlite") MB |
| PostgreSQL | $(field rate "$postgres") | $(field p50_ms "$postgres") ms | $(field p99_ms "$postgres") ms | $(field non2xx "$postgres") | $(field rss_mb "$postgres") MB |
| pgbench single-row insert (baseline) | $pgbench_tps | | | | |

PostgreSQL acceptance / pgbench insert rate: **$ratio×**.
MD
cat "$RESULTS/accept.md"
