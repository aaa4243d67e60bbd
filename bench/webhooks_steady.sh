#!/usr/bin/env bash
# Webhooks under a steady load below saturation: RATE (1000) emails of
# 2 KiB per second offered for SECONDS (60) by bench/paced_load.py (open
# loop), delivered into Postfix's smtp-sink, on the embedded store and on
# PostgreSQL, without webhooks and with one webhook subscribed to every
# event (bench/webhook_receiver.py). Measures, for both runs, the rate
# delivered while the load lasts, the time from acceptance to the relay's
# answer (p50, p99, from the store), the deepest webhook outbox seen
# (sampled every second from /metrics), how long after the load the last
# event reached the receiver, and the machine's CPU per email. Writes
# bench/results/webhooks_steady.md.
source "$(dirname "$0")/common.sh"
need smtp-sink
build_release
RATE=${RATE:-1000}
SECONDS_LOAD=${SECONDS_LOAD:-60}
MODES=${MODES:-sqlite postgres}
work=$(mktemp -d /tmp/mailqueue-bench-steady.XXXX)
start_sink
start_webhook_receiver


# latencies MODE: p50 and p99 of sent_at - created_at, in ms.
latencies() {
  if [ "$1" = postgres ]; then
    psql "$(pg_url_for mq_bench_steady)" -qAtc "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)) || ' ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)) FROM (SELECT extract(epoch FROM sent_at - created_at) * 1000 AS d FROM emails) AS t"
  else
    python3 - "$2/data/mailqueue.db" <<'PY'
import sqlite3, sys
d = sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT sent_at - created_at FROM emails"))
print(round(d[len(d) // 2]), round(d[int(len(d) * 0.99)]))
PY
  fi
}

# run_mode sqlite|postgres none|hook: one markdown row.
run_mode() {
  local mode=$1 hooks=$2 dir="$work/$1-$2" port
  port=$(free_port)
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY=64
    MAILQUEUE_WEBHOOK_ALLOW_PRIVATE=true MAILQUEUE_WEBHOOK_POLL_SECONDS=0.2)
  if [ "$mode" = postgres ]; then
    fresh_database mq_bench_steady
    env+=(DATABASE_URL="$(pg_url_for mq_bench_steady)")
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  local key
  key=$(create_key "$dir" "${env[@]}")
  start_server "$dir" "$port" "${env[@]}"
  if [ "$hooks" = hook ]; then
    curl -fs -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d "{\"endpoint\": \"http://127.0.0.1:$receiver_port/hook\", \"events\": $WEBHOOK_EVENTS}" \
      "http://127.0.0.1:$port/v1/webhooks"
  fi
  log "$mode, webhooks: $hooks: $RATE emails/s for $SECONDS_LOAD s"
  local before cpu0 start
  before=$(received) cpu0=$(cpu_busy) start=$(date +%s.%N)
  python3 "$BENCH_DIR/paced_load.py" "http://127.0.0.1:$port" "$key" "$RATE" "$SECONDS_LOAD" >"$dir/load.out" &
  local loader=$! deepest=0 depth
  while kill -0 "$loader" 2>/dev/null; do
    depth=$(metric "$port" mailqueue_webhook_outbox_depth)
    depth=${depth%.*}
    [ "${depth:-0}" -le "$deepest" ] || deepest=$depth
    sleep 1
  done
  wait "$loader"
  local load_end sent_at_end accepted
  load_end=$(date +%s.%N)
  sent_at_end=$(metric "$port" mailqueue_emails_sent_total)
  accepted=$(grep -oP 'accepted=\K[0-9]+' "$dir/load.out")
  until [ "$(metric "$port" mailqueue_emails_sent_total)" = "$accepted" ]; do sleep 0.2; done
  local events_after=0
  if [ "$hooks" = hook ]; then
    # email.sent and email.delivered of every email.
    until [ "$(received)" -ge "$((before + 2 * accepted))" ]; do sleep 0.1; done
    events_after=$(python3 -c "print(f'{$(date +%s.%N) - $load_end:.1f}')")
  fi
  local cpu_ms lat cpu1
  cpu1=$(cpu_busy)
  cpu_ms=$(python3 -c "print(f'{($cpu1 - $cpu0) * 1000 / $(getconf CLK_TCK) / $accepted:.2f}')")
  # The headline rates for bench/compare.sh (the delivered rate follows the
  # offered one while the server keeps up): emails sent per second of the
  # load, and emails per second of the machine's busy CPU time.
  local label="no webhook"
  [ "$hooks" = none ] || label="one webhook"
  record_rate "$mode" "delivered/s during the load ($RATE/s offered), $label" \
    "$(python3 -c "print(f'{$sent_at_end / ($load_end - $start):.0f}')")"
  record_rate "$mode" "emails per busy CPU-second of the machine, $label" \
    "$(python3 -c "print(f'{$accepted * $(getconf CLK_TCK) / ($cpu1 - $cpu0):.0f}')")"
  stop_server
  lat=$(latencies "$mode" "$dir")
  python3 -c "
d = $load_end - $start
print(f'| $mode | $hooks | {$accepted / d:.0f} | {$sent_at_end / d:.0f} | ${lat% *} / ${lat#* } ms | $deepest | ' + ('$events_after s' if '$hooks' == 'hook' else '') + ' | $cpu_ms ms | $(grep -oP 'late=\K[0-9]+' "$dir/load.out") |')"
}

rows=""
for mode in $MODES; do
  rows+="$(run_mode "$mode" none)"$'\n'
  rows+="$(run_mode "$mode" hook)"$'\n'
done

cat > "$RESULTS/webhooks_steady.md" <<MD
### Webhooks under a steady load (\`bench/webhooks_steady.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). The sink, the receiver, the loader and the server share the machine.

$RATE emails of 2 KiB per second offered for $SECONDS_LOAD s (\`bench/paced_load.py\`:
batches of 20 at fixed instants, open loop), delivered at once by \`mailqueue serve\`
into smtp-sink, without webhooks and with one webhook subscribed to every event
(\`bench/webhook_receiver.py\`). Delivered/s: emails the relay accepted while the
load lasted. Acceptance to relay: \`sent_at - created_at\` of every email. Deepest
outbox: \`mailqueue_webhook_outbox_depth\`, sampled every second. Events done: how
long after the load's end the receiver had both events of every email
(\`email.sent\`, \`email.delivered\`). Late batches: batches the loader started
more than 100 ms after their instant.

| Store | Webhook | Accepted/s | Delivered/s during the load | Acceptance to relay, p50 / p99 | Deepest outbox | Events done after the load | Machine CPU per email | Late batches |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows}
MD
cat "$RESULTS/webhooks_steady.md"
