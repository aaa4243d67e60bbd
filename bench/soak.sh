#!/usr/bin/env bash
# Soak: sustained accepts for SOAK_SECONDS (default 600) with wrk at CONNS
# (64) connections posting the 2 KiB email of post_email.lua, delivered at
# once into Postfix's smtp-sink by the same `mailqueue serve`, then the
# backlog drained. Three stores: PostgreSQL with autovacuum off on the
# mailqueue tables (`autovacuum_enabled = false`, so other databases of the
# server keep theirs), PostgreSQL with the defaults, and SQLite. Every 30 s:
# accept rate, delivery rate, backlog (accepted − sent) and RSS.
# Writes bench/results/soak.md.
source "$(dirname "$0")/common.sh"
need wrk smtp-sink
build_release
SOAK_SECONDS=${SOAK_SECONDS:-600}
CONNS=${CONNS:-64}
SAMPLE=${SAMPLE:-30}
DRAIN_LIMIT=${DRAIN_LIMIT:-600}
MODES=${MODES:-"postgres-autovacuum-off postgres-defaults sqlite"}
work=$(mktemp -d /tmp/mailqueue-bench-soak.XXXX)
python3 "$BENCH_DIR/make_email.py" 2048 > "$work/now.json"
start_sink

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

# run_mode MODE: prints the markdown section of one store.
run_mode() {
  local mode=$1 dir="$work/$1" port db=mq_bench_soak
  port=$(free_port)
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY=64)
  mkdir -p "$dir"
  if [ "$mode" != sqlite ]; then
    fresh_database "$db"
    env+=(DATABASE_URL="$(pg_url_for "$db")")
    env -i PATH="$PATH" "${env[@]}" "$BIN" migrate >/dev/null
    if [ "$mode" = postgres-autovacuum-off ]; then
      for t in emails email_contents email_attachments email_attempts email_events webhook_deliveries idempotency_keys; do
        psql "$(pg_url_for "$db")" -qc "ALTER TABLE $t SET (autovacuum_enabled = false)"
      done
    fi
  fi
  local key
  key=$(create_key "$dir" "${env[@]}")
  start_server "$dir" "$port" "${env[@]}"
  log "$mode: ${SOAK_SECONDS}s of wrk -c$CONNS"
  MQ_KEY=$key MQ_BODY="$work/now.json" wrk -t2 -c"$CONNS" -d"${SOAK_SECONDS}s" --timeout 10s \
    -s "$BENCH_DIR/post_email.lua" "http://127.0.0.1:$port/v1/emails" > "$dir/wrk.txt" &
  local wrk_pid=$! t=0 acc0=0 sent0=0 acc sent
  : > "$dir/samples.tsv"
  while [ "$t" -lt "$SOAK_SECONDS" ]; do
    sleep "$SAMPLE"
    t=$((t + SAMPLE))
    acc=$(metric "$port" mailqueue_emails_accepted_total)
    sent=$(metric "$port" mailqueue_emails_sent_total)
    printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$(( (acc - acc0) / SAMPLE ))" "$(( (sent - sent0) / SAMPLE ))" \
      "$((acc - sent))" "$(rss_mb "$SERVER_PID")" >> "$dir/samples.tsv"
    acc0=$acc sent0=$sent
  done
  wait "$wrk_pid" || true
  acc=$(metric "$port" mailqueue_emails_accepted_total)
  sent=$(metric "$port" mailqueue_emails_sent_total)
  local backlog=$((acc - sent)) start end
  log "$mode: draining $backlog"
  start=$(date +%s.%N)
  until [ "$(metric "$port" mailqueue_emails_sent_total)" -ge "$acc" ]; do
    sleep 0.5
    [ "$(python3 -c "print(int($(date +%s.%N) - $start))")" -lt "$DRAIN_LIMIT" ] || break
  done
  end=$(date +%s.%N)
  sent=$(metric "$port" mailqueue_emails_sent_total)
  local drain_rate peak
  drain_rate=$(python3 -c "print(f'{($sent - ($acc - $backlog)) / max($end - $start, 0.001):.0f}')")
  peak=$(peak_rss_mb "$SERVER_PID")
  local stats=""
  if [ "$mode" != sqlite ]; then
    stats=$(psql "$(pg_url_for "$db")" -qAtc "SELECT n_live_tup || ' live, ' || n_dead_tup || ' dead; last vacuum ' || coalesce(greatest(last_vacuum, last_autovacuum)::text, 'never') || ', last analyze ' || coalesce(greatest(last_analyze, last_autoanalyze)::text, 'never') FROM pg_stat_user_tables WHERE relname = 'emails'")
  fi
  stop_server
  python3 - "$dir/samples.tsv" "$mode" "$acc" "$backlog" "$drain_rate" "$peak" "$(grep '^RESULT' "$dir/wrk.txt")" "$stats" <<'PY'
import sys
path, mode, accepted, backlog, drain, peak, wrk, stats = sys.argv[1:]
rows = [list(map(int, l.split("\t"))) for l in open(path) if l.strip()]
per_min = max(1, 60 // (rows[1][0] - rows[0][0]) if len(rows) > 1 else 1)
first = sum(r[2] for r in rows[:per_min]) / len(rows[:per_min])
last = sum(r[2] for r in rows[-per_min:]) / len(rows[-per_min:])
print(f"#### {mode}\n")
print(f"wrk: `{wrk}`; accepted {accepted}; backlog at the end {backlog}; peak RSS {peak} MB.")
if stats:
    print(f"`emails` at the end: {stats}.")
print()
print("| t (s) | accepted/s | delivered/s | backlog | RSS (MB) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for t, a, d, b, r in rows:
    print(f"| {t} | {a} | {d} | {b} | {r} |")
print()
drained = (f"drain after the load {drain}/s (**{int(drain) / first:.2f}×** the first minute)"
           if int(backlog) > 0 else "no backlog was left to drain: delivery kept up with the accepts throughout")
print(f"First minute delivered {first:.0f}/s, last minute {last:.0f}/s "
      f"(**{last / first:.2f}×**); {drained}.\n")
PY
}

sections=""
for mode in $MODES; do
  sections+=$(run_mode "$mode")$'\n\n'
done
cat > "$RESULTS/soak.md" <<MD
### Soak: sustained accepts with delivery (\`bench/soak.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). wrk, the server, PostgreSQL and smtp-sink share the
machine$( [ -n "${SOAK_NOTE:-}" ] && echo "; $SOAK_NOTE").

\`SOAK_SECONDS=$SOAK_SECONDS wrk -t2 -c$CONNS -s bench/post_email.lua\` posting one 2 KiB email per
request into \`mailqueue serve\` (\`MAILQUEUE_WORKER_CONCURRENCY=64\`), which delivers
into \`smtp-sink -u nobody 127.0.0.1:PORT 1024\` as it accepts. Sampled every
${SAMPLE} s from \`/metrics\` (accepted and sent counters) and \`/proc\` (RSS).
Target: last-minute delivery and post-load drain ≥ 0.8× the first minute's.

$sections
MD
cat "$RESULTS/soak.md"
