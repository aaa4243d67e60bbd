#!/usr/bin/env bash
# Delivery rate against history, on PostgreSQL: a backlog of BACKLOG
# (20,000) 2 KiB emails scheduled for one instant, delivered into
# smtp-sink by `mailqueue serve`, on stores that already hold 0 and each of
# HISTORY_SIZES (1,000,000) delivered emails (finished a day ago, with
# contents, one attempt and two events each, inserted in bulk and never
# analysed by hand), and on one holding EXPIRED (1,000,000) emails past
# retention, which the maintenance leader purges while the backlog is
# delivered (time, WAL written, delivery rate meanwhile).
# Writes bench/results/history.md.
source "$(dirname "$0")/common.sh"
need smtp-sink
build_release
BACKLOG=${BACKLOG:-20000}
HISTORY_SIZES=${HISTORY_SIZES:-1000000}
EXPIRED=${EXPIRED:-1000000}
LOAD_WINDOW=${LOAD_WINDOW:-40}
PURGE_LIMIT=${PURGE_LIMIT:-1800}
work=$(mktemp -d /tmp/mailqueue-bench-history.XXXX)
start_sink
db=mq_bench_history
url() { pg_url_for "$db"; }
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
wal_bytes() { psql "$PG_ADMIN_URL" -qAtc "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }

# insert_history N AGE: N finished emails that finished AGE ago.
insert_history() {
  [ "$1" -gt 0 ] || return 0
  log "inserting $1 finished emails, $2 old"
  psql "$(url)" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO emails (id, status, message_id, created_at, updated_at, attempts, sent_at, first_attempt_at, last_attempt_at)
  SELECT gen_random_uuid(), 'sent', '<h' || g || '@acme.test>', now() - interval '$2' - interval '1 minute',
         now() - interval '$2' + g * interval '1 ms', 1, now() - interval '$2', now() - interval '$2', now() - interval '$2'
  FROM generate_series(1, $1) AS g;
INSERT INTO email_contents (email_id, content)
  SELECT id, jsonb_build_object('from', 'Acme Billing <billing@acme.test>', 'to', jsonb_build_array('customer@example.com'),
         'subject', 'Your invoice for November', 'text', repeat('Thank you for your order. ', 70))
  FROM emails WHERE status = 'sent';
INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, smtp_code, detail)
  SELECT id, 1, updated_at, updated_at, 'sent', 250, '250 2.0.0 Ok' FROM emails WHERE status = 'sent';
INSERT INTO email_events (id, email_id, type, created_at)
  SELECT gen_random_uuid(), id, t, updated_at FROM emails, (VALUES ('email.sent'), ('email.delivered')) AS v(t)
  WHERE status = 'sent';
SQL
}

# run HISTORY AGE: prints "rate=… seconds=… [purged=… purge_s=… wal_mb=…]".
run() {
  local history=$1 age=$2 dir="$work/$1-$2" port
  port=$(free_port)
  fresh_database "$db"
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY=64 DATABASE_URL="$(url)")
  env -i PATH="$PATH" "${env[@]}" "$BIN" migrate >/dev/null
  insert_history "$history" "$age"
  mkdir -p "$dir"
  local key at at_epoch wal0 started
  key=$(create_key "$dir" "${env[@]}")
  wal0=$(wal_bytes)
  started=$(date +%s.%N)
  start_server "$dir" "$port" "${env[@]}"
  at_epoch=$(( $(date +%s) + LOAD_WINDOW ))
  at=$(date -u -d "@$at_epoch" +%Y-%m-%dT%H:%M:%SZ)
  log "history $history ($age old): loading $BACKLOG emails scheduled for $at"
  python3 "$BENCH_DIR/load_backlog.py" "http://127.0.0.1:$port" "$key" "$BACKLOG" "$at"
  [ "$(date +%s)" -lt "$at_epoch" ] || { echo "loading took longer than LOAD_WINDOW; raise it" >&2; exit 1; }
  until [ "$(metric "$port" mailqueue_emails_sent_total)" = "$BACKLOG" ]; do sleep 1; done
  local extra=""
  if [ "$age" = "40 days" ]; then
    local purged=0 done_at
    while :; do
      purged=$(metric "$port" 'mailqueue_retention_purged_total{what="emails"}')
      [ "${purged:-0}" -lt "$history" ] || break
      [ "$(python3 -c "print(int($(date +%s.%N) - $started))")" -lt "$PURGE_LIMIT" ] || break
      sleep 1
    done
    done_at=$(date +%s.%N)
    extra=$(python3 -c "print(f'purged=${purged:-0} purge_s={$done_at - $started:.0f} wal_mb={($(wal_bytes) - $wal0) / 1048576:.0f}')")
  fi
  stop_server
  local last
  last=$(psql "$(url)" -qAtc "SELECT extract(epoch FROM max(sent_at)) FROM emails WHERE created_at > now() - interval '1 hour'")
  python3 -c "d = $last - $at_epoch; print(f'rate={$BACKLOG / d:.0f} seconds={d:.2f} $extra')"
}

field() { grep -oP "$1=\K[0-9.]+" <<<"$2"; }
empty=$(run 0 "1 day")
rows="| 0 | $(field rate "$empty") | $(field seconds "$empty") s | 1.00× |"$'\n'
for n in $HISTORY_SIZES; do
  r=$(run "$n" "1 day")
  rows+="| $n | $(field rate "$r") | $(field seconds "$r") s | $(python3 -c "print(f'{$(field rate "$r") / $(field rate "$empty"):.2f}')")× |"$'\n'
done
expired=$(run "$EXPIRED" "40 days")
exp_ratio=$(python3 -c "print(f'{$(field rate "$expired") / $(field rate "$empty"):.2f}')")

cat > "$RESULTS/history.md" <<MD
### Delivery against history, and a retention pass (\`bench/history.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). The sink, the server, PostgreSQL and the loader share
the machine$( [ -n "${HISTORY_NOTE:-}" ] && echo "; $HISTORY_NOTE").

$BACKLOG emails of 2 KiB accepted through \`POST /v1/emails/batch\` with one
\`scheduled_at\`, delivered by \`mailqueue serve\` (PostgreSQL,
\`MAILQUEUE_WORKER_CONCURRENCY=64\`) into \`smtp-sink\`; time from the
scheduled instant to the last \`sent_at\`. The history is inserted with
\`generate_series\` after \`mailqueue migrate\` (finished a day ago: not past
retention), never analysed by hand; autovacuum as the server has it.
Target: ≥ 0.8× the empty store's rate.

| Delivered emails already stored | Delivered/s | Time | vs empty store |
| ---: | ---: | ---: | ---: |
$rows
**Retention pass.** $EXPIRED delivered emails finished 40 days ago
(\`MAILQUEUE_RETENTION_DAYS=30\`, the default), purged by the maintenance
leader from its start while the same backlog is delivered: $(field purged "$expired")
purged in $(field purge_s "$expired") s (batches of 500, at most 1 s of work per
maintenance tick, so the wall time is mostly the pacing), $(field wal_mb "$expired") MiB of
WAL written meanwhile (the whole server, deliveries included). Delivery
meanwhile: $(field rate "$expired")/s, **${exp_ratio}×** the empty store's rate (target ≥ 0.9×).
MD
cat "$RESULTS/history.md"
