#!/usr/bin/env bash
# Webhook benchmark: a backlog of COUNT (10,000) 2 KiB emails, scheduled
# for one instant, delivered into Postfix's smtp-sink, on the embedded
# store and on PostgreSQL, once without webhooks and once with one webhook
# subscribed to every event, whose endpoint is a local receiver
# (bench/webhook_receiver.py), in ROUNDS (3) interleaved rounds. Measures
# the email delivery rate of both runs (the target: within 10%) and the
# events delivered per second to the receiver while the backlog is sent;
# the medians of the rounds are reported. Baseline in the same run: wrk
# posting the same payload with the same headers to the same receiver,
# over as many connections as the webhook may use. Writes
# bench/results/webhooks.md.
source "$(dirname "$0")/common.sh"
need smtp-sink wrk
build_release
COUNT=${COUNT:-10000}
CONCURRENCY=${CONCURRENCY:-64}
HOOK_CONCURRENCY=${HOOK_CONCURRENCY:-16}
MODES=${MODES:-sqlite postgres}
work=$(mktemp -d /tmp/mailqueue-bench-webhooks.XXXX)
start_sink
start_webhook_receiver

# One process's CPU time so far (user + system), in clock ticks.
# ms_per_email TICKS: clock ticks as milliseconds per email.
ms_per_email() { python3 -c "print(f'{$1 * 1000 / $(getconf CLK_TCK) / $COUNT:.3f}')"; }
sent_total() { curl -fs "http://127.0.0.1:$1/metrics" | awk '/^mailqueue_emails_sent_total/ {print $2}'; }

# sql MODE DIR QUERY: one value from the store.
sql() {
  if [ "$1" = postgres ]; then
    psql "$(pg_url_for mq_bench_webhooks)" -qAtc "$3"
  else
    python3 -c "import sqlite3,sys; print(sqlite3.connect('$2/data/mailqueue.db').execute(sys.argv[1]).fetchone()[0])" "$3"
  fi
}

# run_mode sqlite|postgres none|hook
run_mode() {
  local mode=$1 hooks=$2 dir="$work/$1-$2" port
  port=$(free_port)
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY="$CONCURRENCY"
    MAILQUEUE_WEBHOOK_ALLOW_PRIVATE=true MAILQUEUE_WEBHOOK_CONCURRENCY="$HOOK_CONCURRENCY"
    MAILQUEUE_WEBHOOK_ENDPOINT_CONCURRENCY="$HOOK_CONCURRENCY" MAILQUEUE_WEBHOOK_POLL_SECONDS=0.2)
  if [ "$mode" = postgres ]; then
    fresh_database mq_bench_webhooks
    env+=(DATABASE_URL="$(pg_url_for mq_bench_webhooks)")
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  local key at at_epoch before
  key=$(create_key "$dir" "${env[@]}")
  start_server "$dir" "$port" "${env[@]}"
  if [ "$hooks" = hook ]; then
    curl -fs -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d "{\"endpoint\": \"http://127.0.0.1:$receiver_port/hook\", \"events\": $WEBHOOK_EVENTS}" \
      "http://127.0.0.1:$port/v1/webhooks"
  fi
  at_epoch=$(( $(date +%s) + ${LOAD_WINDOW:-25} ))
  at=$(date -u -d "@$at_epoch" +%Y-%m-%dT%H:%M:%SZ)
  log "$mode, webhooks: $hooks: loading $COUNT emails scheduled for $at"
  python3 "$BENCH_DIR/load_backlog.py" "http://127.0.0.1:$port" "$key" "$COUNT" "$at"
  [ "$(date +%s)" -lt "$at_epoch" ] || { echo "loading took longer than LOAD_WINDOW; raise it" >&2; exit 1; }
  # Events counted from the instant on (`email.scheduled` events of the
  # loading still on their way included).
  while [ "$(date +%s)" -lt "$at_epoch" ]; do sleep 0.05; done
  before=$(received)
  local cpu0 server0 receiver0
  cpu0=$(cpu_busy) server0=$(cpu_of "$SERVER_PID") receiver0=$(cpu_of "$receiver_pid")
  log "$mode, webhooks: $hooks: waiting for the backlog to be delivered"
  until [ "$(sent_total "$port")" = "$COUNT" ]; do sleep 1; done
  local hook_end=$at_epoch after=$before
  if [ "$hooks" = hook ]; then
    log "$mode: waiting for every event to reach the receiver"
    until [ "$(received)" -ge "$((before_total + 3 * COUNT))" ]; do sleep 0.2; done
    hook_end=$(date +%s.%N)
    after=$(received)
  fi
  local rss last cpu_ms server_ms receiver_ms
  cpu_ms=$(ms_per_email "$(($(cpu_busy) - cpu0))")
  server_ms=$(ms_per_email "$(($(cpu_of "$SERVER_PID") - server0))")
  receiver_ms=$(ms_per_email "$(($(cpu_of "$receiver_pid") - receiver0))")
  rss=$(peak_rss_mb "$SERVER_PID")
  stop_server
  if [ "$mode" = postgres ]; then
    last=$(sql "$mode" "$dir" "SELECT extract(epoch FROM max(sent_at)) FROM emails")
  else
    last=$(python3 -c "print($(sql "$mode" "$dir" 'SELECT max(sent_at) FROM emails') / 1000)")
  fi
  python3 -c "d = $last - $at_epoch; h = $hook_end - $at_epoch; print(f'rate={$COUNT / d:.0f} seconds={d:.2f} hook_rate={(($after - $before) / h) if h > 0 else 0:.0f} hook_seconds={h:.2f} rss_mb=$rss cpu_ms=$cpu_ms server_ms=$server_ms receiver_ms=$receiver_ms')"
}

# The wrk baseline: a realistic, signed payload, posted over HOOK_CONCURRENCY connections.
baseline() {
  python3 - "$work/hook.json" <<'PY' > "$work/hook.env"
import base64, hashlib, hmac, json, sys, time
payload = {"type": "email.delivered", "created_at": "2026-06-01T12:00:03.120Z", "data": {
    "email_id": "0190a6f1-0000-7000-8000-000000000001", "created_at": "2026-06-01T12:00:00.000Z",
    "from": "Acme <billing@acme.test>", "to": ["customer@example.com"], "subject": "Your invoice",
    "message_id": "<0190a6f1-0000-7000-8000-000000000001@acme.test>", "tags": {}}}
body = json.dumps(payload, separators=(",", ":"))
open(sys.argv[1], "w").write(body)
ts = str(int(time.time()))
sig = base64.b64encode(hmac.new(b"k" * 24, f"0190a6f1-0000-7000-8000-000000000000.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
print(f"MQ_TIMESTAMP={ts} MQ_SIGNATURE=v1,{sig}")
PY
  log "wrk: the same payload to the same receiver over $HOOK_CONCURRENCY connections"
  env $(cat "$work/hook.env") MQ_BODY="$work/hook.json" wrk -t2 -c"$HOOK_CONCURRENCY" -d10s \
    -s "$BENCH_DIR/post_hook.lua" "http://127.0.0.1:$receiver_port/hook" | grep -oP 'rate=\K[0-9]+'
}

field() { grep -oP "(?<![a-z_])$1=\K[0-9.]+" <<<"$2"; }
# median FIELD LINES...: the median of one field over rounds.
median() {
  local f=$1
  shift
  printf '%s\n' "$@" | while read -r line; do field "$f" "$line"; done | sort -g |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# Rounds interleave the two runs of each store, so a slow spell of the
# machine weighs on both; each row is the median of ROUNDS.
ROUNDS=${ROUNDS:-3}
wrk_rate=$(baseline)
rows="" costs=""
for mode in $MODES; do
  plains=() hookeds=()
  for round in $(seq 1 "$ROUNDS"); do
    log "$mode: round $round of $ROUNDS"
    plains+=("$(run_mode "$mode" none)")
    before_total=$(received)
    hookeds+=("$(run_mode "$mode" hook)")
  done
  name=$([ "$mode" = postgres ] && echo "PostgreSQL" || echo "embedded (SQLite)")
  plain_rate=$(median rate "${plains[@]}")
  hooked_rate=$(median rate "${hookeds[@]}")
  hook_rate=$(median hook_rate "${hookeds[@]}")
  record_rate "$mode" "delivered/s, one webhook" "$hooked_rate"
  record_rate "$mode" "webhook events/s" "$hook_rate"
  change=$(python3 -c "print(f'{($hooked_rate / $plain_rate - 1) * 100:+.1f}%')")
  share=$(python3 -c "print(f'{$hook_rate / $wrk_rate:.2f}')")
  each=$(for i in "${!plains[@]}"; do printf '%s/%s ' "$(field rate "${plains[$i]}")" "$(field rate "${hookeds[$i]}")"; done)
  cpu_plain=$(median cpu_ms "${plains[@]}")
  cpu_hooked=$(median cpu_ms "${hookeds[@]}")
  server_plain=$(median server_ms "${plains[@]}")
  server_hooked=$(median server_ms "${hookeds[@]}")
  receiver_hooked=$(median receiver_ms "${hookeds[@]}")
  costs+=$(python3 -c "
p, h, sp, sh, r = $cpu_plain, $cpu_hooked, $server_plain, $server_hooked, $receiver_hooked
added = h - p
print(f'| {\"$name\"} | {p:.2f} ms | {h:.2f} ms | {added:.2f} ms | {sh - sp:.2f} ms | {r:.3f} ms | {added - (sh - sp) - r:.2f} ms | {p / 9:.3f} ms |')")$'\n'
  rows+="| mailqueue, $name | $plain_rate | $hooked_rate | $change | ${each% } | $cpu_plain / $cpu_hooked ms | $hook_rate | $(median hook_seconds "${hookeds[@]}") s | ${share}× | $(median rss_mb "${hookeds[@]}") MB |"$'\n'
done

cat > "$RESULTS/webhooks.md" <<MD
### Webhooks (\`bench/webhooks.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). The sink, the receiver, the server and the loader share the machine.

$COUNT emails of 2 KiB, accepted through \`POST /v1/emails/batch\` with one
\`scheduled_at\`, delivered by \`mailqueue serve\`
(\`MAILQUEUE_WORKER_CONCURRENCY=$CONCURRENCY\`) into smtp-sink, first without
webhooks, then with one webhook subscribed to every event, its endpoint a
local receiver (\`bench/webhook_receiver.py\`, Python asyncio, 204 to every
POST) reached over $HOOK_CONCURRENCY connections
(\`MAILQUEUE_WEBHOOK_CONCURRENCY\` and \`…_ENDPOINT_CONCURRENCY\`). Delivery
rate: from the scheduled instant to the last \`sent_at\`. Events/s: the
events that reached the receiver from the scheduled instant until it had
all three of every email (\`email.scheduled\`, \`email.sent\`,
\`email.delivered\`; each signed, sent, and recorded with its attempt),
while the emails were being sent. Machine CPU per email: the busy time of
both cores (every process on the machine) from the scheduled instant until
the last email was sent (without) or the last event received (with),
divided by the emails. Each figure is the median of $ROUNDS
rounds; each round runs the store without and then with the webhook.
Baseline, same run: \`wrk -t2 -c$HOOK_CONCURRENCY -d10s\` posting one
such payload with its Svix headers to the same receiver.

| Store | Delivered/s, no webhook | Delivered/s, one webhook | Change | Rounds (without/with) | Machine CPU per email, without / with | Events/s to the receiver | Events done after | vs wrk | Peak RSS |
| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |
${rows}| wrk, same payload and receiver (baseline) | | | | | | $wrk_rate | | 1.00× | |

Where the webhook's CPU goes, per email (medians of the same rounds;
process CPU from \`/proc/PID/stat\`). While both cores are busy the
delivery rate follows the machine's CPU per email, so a rate within 10% of
the rate without webhooks leaves the webhook at most a ninth of that CPU
per email (the last column). The receiver is the benchmark's own endpoint,
not mailqueue; the rest is PostgreSQL (outbox rows, claims, reports), the
sink and the kernel.

| Store | Machine, without | Machine, with | Added by the webhook | mailqueue process, added | Receiver | Rest | Budget for a 10% cost |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${costs}
MD
cat "$RESULTS/webhooks.md"
