#!/usr/bin/env bash
# Delivery benchmark: a backlog of COUNT (50,000) 2 KiB emails, scheduled
# for one instant, delivered into Postfix's smtp-sink, on the embedded store
# and on PostgreSQL. Baselines in the same run: Postfix's own smtp-source
# sending the same number of 2 KiB messages into the same sink over 64
# parallel sessions, reusing each connection (-d, as mailqueue does) and in
# its default mode (a new connection per message). Writes
# bench/results/deliver.md.
source "$(dirname "$0")/common.sh"
need smtp-sink smtp-source
build_release
COUNT=${COUNT:-50000}
CONCURRENCY=${CONCURRENCY:-64}
work=$(mktemp -d /tmp/mailqueue-bench-deliver.XXXX)
start_sink
sink_port=$SINK_PORT
trap 'kill $SINK_PID 2>/dev/null || true' EXIT
sent_total() { curl -fs "http://127.0.0.1:$1/metrics" | awk '/^mailqueue_emails_sent_total/ {print $2}'; }

run_mode() {
  local mode=$1 dir="$work/$1" port
  port=$(free_port)
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY="$CONCURRENCY")
  if [ "$mode" = postgres ]; then
    fresh_database mq_bench_deliver
    env+=(DATABASE_URL="$(pg_url_for mq_bench_deliver)")
  fi
  mkdir -p "$dir"
  local key
  key=$(create_key "$dir" "${env[@]}")
  start_server "$dir" "$port" "${env[@]}"
  load_backlog "$mode" "$port" "$key" "$COUNT"
  log "$mode: waiting for the backlog to be delivered"
  until [ "$(sent_total "$port")" = "$COUNT" ]; do sleep 1; done
  local rss last
  rss=$(peak_rss_mb "$SERVER_PID")
  stop_server
  if [ "$mode" = postgres ]; then
    last=$(psql "$(pg_url_for mq_bench_deliver)" -qAtc "SELECT extract(epoch FROM max(sent_at)) FROM emails")
  else
    last=$(python3 -c "import sqlite3; print(sqlite3.connect('$dir/data/mailqueue.db').execute('SELECT max(sent_at) FROM emails').fetchone()[0] / 1000)")
  fi
  python3 -c "d = $last - $AT_EPOCH; print(f'rate={$COUNT / d:.0f} seconds={d:.2f} rss_mb=$rss')"
}

reuse_rate=$(smtp_source_rate "$sink_port" "$COUNT" "$CONCURRENCY" -d)
fresh_rate=$(smtp_source_rate "$sink_port" "$COUNT" "$CONCURRENCY")
sqlite=$(run_mode sqlite)
postgres=$(run_mode postgres)
record_rate sqlite "delivered/s" "$(field rate "$sqlite")"
record_rate postgres "delivered/s" "$(field rate "$postgres")"
ratio() { python3 -c "print(f'{$(field rate "$1") / $2:.2f}')"; }
row() { echo "| $1 | $(field rate "$2") | $(field seconds "$2") s | $(ratio "$2" "$reuse_rate")× | $(ratio "$2" "$fresh_rate")× | $(field rss_mb "$2") MB |"; }

cat > "$RESULTS/deliver.md" <<MD
### Delivering a backlog (\`bench/deliver.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). The sink, the server and the loader share the machine.

$COUNT emails of 2 KiB, accepted through \`POST /v1/emails/batch\` with one
\`scheduled_at\`, then delivered by \`mailqueue serve\`
(\`MAILQUEUE_WORKER_CONCURRENCY=$CONCURRENCY\`) into
\`smtp-sink -u nobody 127.0.0.1:PORT 1024\`. Time runs from the scheduled
instant to the last \`sent_at\`. Baselines, same sink, same run:
\`smtp-source -d -s $CONCURRENCY -m $COUNT -l 2048\` (connections reused, as mailqueue
does) and the same without \`-d\` (smtp-source's default: a connection per message).

| Sender | Delivered/s | Time | vs smtp-source -d | vs smtp-source default | Peak RSS |
| --- | ---: | ---: | ---: | ---: | ---: |
| smtp-source -d (baseline) | $reuse_rate | | 1.00× | | |
| smtp-source, default mode (baseline) | $fresh_rate | | | 1.00× | |
$(row "mailqueue, embedded (SQLite)" "$sqlite")
$(row "mailqueue, PostgreSQL" "$postgres")
MD
cat "$RESULTS/deliver.md"
