#!/usr/bin/env bash
# Acceptance benchmark: CONNS (64) concurrent clients POST 2 KiB emails to
# /v1/emails over loopback with wrk, for DURATION (20) seconds, on the
# embedded store and on PostgreSQL, twice each: emails scheduled for the
# next day (the API path alone, workers idle) and emails due at once while
# the workers deliver them to Postfix's smtp-sink on the same two cores.
# Baseline in the same run: pgbench, same client count, single-row inserts
# of a 2 KiB email row (same columns and indexes as mailqueue's, in one
# table). Writes bench/results/accept.md.
source "$(dirname "$0")/common.sh"
need wrk pgbench smtp-sink
build_release
DURATION=${DURATION:-20}
CONNS=${CONNS:-64}
work=$(mktemp -d /tmp/mailqueue-bench-accept.XXXX)
write_bodies "$work"
start_sink
sink_port=$SINK_PORT
trap 'kill $SINK_PID 2>/dev/null || true' EXIT

# run_mode sqlite|postgres now|later
run_mode() {
  local mode=$1 body="$work/$2.json" dir="$work/$1-$2" port
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
  log "$mode, emails due $2: warming up"
  MQ_KEY=$key MQ_BODY="$body" wrk -t2 -c"$CONNS" -d3s -s "$BENCH_DIR/post_email.lua" "http://127.0.0.1:$port/v1/emails" >/dev/null
  log "$mode, emails due $2: measuring ${DURATION}s with $CONNS connections"
  MQ_KEY=$key MQ_BODY="$body" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$BENCH_DIR/post_email.lua" \
    "http://127.0.0.1:$port/v1/emails" > "$dir/wrk.txt"
  local rss
  rss=$(peak_rss_mb "$SERVER_PID")
  stop_server
  echo "$(grep '^RESULT' "$dir/wrk.txt") rss_mb=$rss"
}

sqlite_later=$(run_mode sqlite later)
postgres_later=$(run_mode postgres later)
sqlite_now=$(run_mode sqlite now)
postgres_now=$(run_mode postgres now)
# The headline rates for bench/compare.sh: 2xx responses per second.
accepted() { python3 -c "print(f'{($(field requests "$1") - $(field non2xx "$1")) / $(field seconds "$1"):.0f}')"; }
record_rate sqlite "accepted/s, API only" "$(accepted "$sqlite_later")"
record_rate postgres "accepted/s, API only" "$(accepted "$postgres_later")"
record_rate sqlite "accepted/s, while delivering" "$(accepted "$sqlite_now")"
record_rate postgres "accepted/s, while delivering" "$(accepted "$postgres_now")"
pgbench_tps=$(pgbench_insert_rate "$work" "$CONNS" "$DURATION")
ratio=$(python3 -c "print(f'{$(field rate "$postgres_later") / $pgbench_tps:.2f}')")
row() { echo "| $1 | $(field rate "$2") | $(field p50_ms "$2") ms | $(field p99_ms "$2") ms | $(field non2xx "$2") | $(field rss_mb "$2") MB |"; }

cat > "$RESULTS/accept.md" <<MD
### Accepting emails (\`bench/accept.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). wrk, the server, PostgreSQL and smtp-sink share the machine.

Command: \`wrk -t2 -c$CONNS -d${DURATION}s --latency -s bench/post_email.lua http://127.0.0.1:PORT/v1/emails\`
with a 2 KiB JSON email. "API only": the email has \`scheduled_at: "in 1 day"\`, so the
workers stay idle. "While delivering": the email is due at once and the workers
send every accepted email to \`smtp-sink\` during the run. Baseline:
\`pgbench -n -M prepared -c $CONNS -j 2 -T $DURATION\`, one single-row insert of a 2 KiB
email row per transaction (same columns and indexes as \`emails\`, content inline).

| Mode | Accepted/s | p50 | p99 | Non-2xx | Peak RSS |
| --- | ---: | ---: | ---: | ---: | ---: |
$(row "Embedded (SQLite), API only" "$sqlite_later")
$(row "PostgreSQL, API only" "$postgres_later")
$(row "Embedded (SQLite), while delivering" "$sqlite_now")
$(row "PostgreSQL, while delivering" "$postgres_now")
| pgbench single-row insert (baseline) | $pgbench_tps | | | | |

PostgreSQL acceptance (API only) / pgbench insert rate: **$ratio×**.
MD
cat "$RESULTS/accept.md"
