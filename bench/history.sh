#!/usr/bin/env bash
# Delivery rate against history, on PostgreSQL: a backlog of BACKLOG
# (20,000) 2 KiB emails scheduled for one instant, delivered into
# smtp-sink by `mailqueue serve`, ROUNDS (3) times per store (median) after
# WARMUP (1) uncounted backlog(s) that warm the server and cache up, on
# stores that already hold 0 and each of HISTORY_SIZES (1,000,000 and
# 5,000,000) delivered emails (finished a day ago, with contents, one
# attempt and two events each, ids time-ordered as mailqueue makes them,
# inserted in bulk, then vacuumed and analysed once as the store's upkeep
# would have while it accumulated), and on one holding EXPIRED (1,000,000) emails past retention,
# which the maintenance leader purges while the backlogs are delivered
# (time, WAL written, delivery rate meanwhile against the same history
# not yet past retention).
# Writes bench/results/history.md.
source "$(dirname "$0")/common.sh"
need smtp-sink
build_release
BACKLOG=${BACKLOG:-20000}
HISTORY_SIZES=${HISTORY_SIZES-1000000 5000000}  # empty: the empty store only
ROUNDS=${ROUNDS:-3}
# Backlogs delivered first on each store and not counted: the first one
# after the server starts reads the history's hot pages into the cache.
WARMUP=${WARMUP:-1}
EXPIRED=${EXPIRED:-1000000}
LOAD_WINDOW=${LOAD_WINDOW:-40}
PURGE_LIMIT=${PURGE_LIMIT:-1800}
work=$(mktemp -d /tmp/mailqueue-bench-history.XXXX)
start_sink
db=mq_bench_history
url() { pg_url_for "$db"; }
wal_bytes() { psql "$PG_ADMIN_URL" -qAtc "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"; }

# insert_history N AGE: N finished emails that finished AGE ago.
insert_history() {
  [ "$1" -gt 0 ] || return 0
  log "inserting $1 finished emails, $2 old"
  psql "$(url)" -q -v ON_ERROR_STOP=1 <<SQL
-- Time-ordered ids (UUID version 7), as mailqueue generates them.
CREATE FUNCTION uuid_v7(at timestamptz) RETURNS uuid LANGUAGE sql AS \$\$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send((extract(epoch FROM at) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
\$\$;
INSERT INTO emails (id, status, message_id, created_at, updated_at, attempts, sent_at, first_attempt_at, last_attempt_at)
  SELECT uuid_v7(now() - interval '$2' - interval '1 minute' + g * interval '1 ms'), 'sent', '<h' || g || '@acme.test>', now() - interval '$2' - interval '1 minute',
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
DROP FUNCTION uuid_v7;
SQL
}

# settle: what the store's upkeep would have done while such a history
# accumulated over days (autovacuum, or mailqueue's maintenance leader
# where autovacuum is off): one VACUUM (ANALYZE) of the tables the bulk
# insert filled. HISTORY_SETTLE=none skips it (the worst case: a history
# never visited). Prints the seconds it took.
settle() {
  local started=$SECONDS
  if [ "${HISTORY_SETTLE:-vacuum}" != none ]; then
    psql "$(url)" -qc "VACUUM (ANALYZE) emails, email_contents, email_attempts, email_events" >/dev/null
  fi
  echo $((SECONDS - started))
}

median() { python3 -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.0f}")' "$@"; }

# run HISTORY AGE: ROUNDS backlogs on one store; prints "rate=MEDIAN
# rounds=R1,R2,… settle_s=… [purged=… purge_s=… wal_mb=… during=N]".
# With history past retention, only rounds that ended before the purge
# did count (during=N of them).
run() {
  local history=$1 age=$2 dir="$work/$1-$2" port
  port=$(free_port)
  fresh_database "$db"
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY=64 DATABASE_URL="$(url)")
  env -i PATH="$PATH" "${env[@]}" "$BIN" migrate >/dev/null
  insert_history "$history" "$age"
  local settled=0
  [ "$history" -gt 0 ] && settled=$(settle)
  mkdir -p "$dir"
  local key wal0 started rates=() counted=() warm=() purged=0 purge_s=""
  key=$(create_key "$dir" "${env[@]}")
  psql "$PG_ADMIN_URL" -qAtc "CHECKPOINT" >/dev/null
  wal0=$(wal_bytes)
  started=$(date +%s.%N)
  start_server "$dir" "$port" "${env[@]}"
  for round in $(seq 1 $((WARMUP + ROUNDS))); do
    local at_epoch at last rate
    at_epoch=$(( $(date +%s) + LOAD_WINDOW ))
    at=$(date -u -d "@$at_epoch" +%Y-%m-%dT%H:%M:%SZ)
    log "history $history ($age old), round $round: loading $BACKLOG emails scheduled for $at"
    python3 "$BENCH_DIR/load_backlog.py" "http://127.0.0.1:$port" "$key" "$BACKLOG" "$at"
    [ "$(date +%s)" -lt "$at_epoch" ] || { echo "loading took longer than LOAD_WINDOW; raise it" >&2; exit 1; }
    until [ "$(metric "$port" mailqueue_emails_sent_total)" = "$((BACKLOG * round))" ]; do sleep 0.5; done
    last=$(psql "$(url)" -qAtc "SELECT extract(epoch FROM max(sent_at)) FROM emails WHERE scheduled_at = to_timestamp($at_epoch)")
    rate=$(python3 -c "print(f'{$BACKLOG / ($last - $at_epoch):.0f}')")
    if [ "$round" -le "$WARMUP" ]; then
      log "round $round warms the server and the cache up ($rate/s); not counted"
      warm+=("$rate")
      continue
    fi
    rates+=("$rate")
    if [ "$age" = "40 days" ]; then
      purged=$(metric "$port" 'mailqueue_retention_purged_total{what="emails"}')
      if [ "${purged:-0}" -lt "$history" ]; then counted+=("$rate"); else log "the purge ended before round $round did; not counted"; fi
    else
      counted+=("$rate")
    fi
  done
  if [ "$age" = "40 days" ]; then
    while :; do
      purged=$(metric "$port" 'mailqueue_retention_purged_total{what="emails"}')
      [ "${purged:-0}" -lt "$history" ] || break
      [ "$(python3 -c "print(int($(date +%s.%N) - $started))")" -lt "$PURGE_LIMIT" ] || break
      sleep 1
    done
    purge_s=$(python3 -c "print(f'purged=${purged:-0} purge_s={$(date +%s.%N) - $started:.0f} wal_mb={($(wal_bytes) - $wal0) / 1048576:.0f} during=${#counted[@]}')")
  fi
  stop_server
  [ ${#counted[@]} -gt 0 ] || { echo "no round ran while the purge did; raise EXPIRED" >&2; exit 1; }
  echo "rate=$(median "${counted[@]}") rounds=$(IFS=,; echo "${rates[*]}") warm=$(IFS=,; echo "${warm[*]:-}") settle_s=$settled $purge_s"
}

field() { grep -oP "$1=\K[0-9.]+" <<<"$2"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
rounds() { grep -oP 'rounds=\K[0-9,]+' <<<"$1" | sed 's/,/, /g'; }
warm() { grep -oP 'warm=\K[0-9,]*' <<<"$1" | sed 's/,/, /g'; }
empty=$(run 0 "1 day")
rows="| 0 | $(field rate "$empty") | $(rounds "$empty") | $(warm "$empty") | | 1.00× |"$'\n'
same_size=""
for n in $HISTORY_SIZES; do
  r=$(run "$n" "1 day")
  [ "$n" = "$EXPIRED" ] && same_size=$r
  record_rate postgres "delivered/s, $n emails of history" "$(field rate "$r")"
  rows+="| $n | $(field rate "$r") | $(rounds "$r") | $(warm "$r") | $(field settle_s "$r") s | $(ratio "$(field rate "$r")" "$(field rate "$empty")")× |"$'\n'
done
expired=$(run "$EXPIRED" "40 days")
if [ -n "$same_size" ]; then
  base_rate=$(field rate "$same_size") base_name="the same history not past retention"
else
  base_rate=$(field rate "$empty") base_name="the empty store"
fi
exp_ratio=$(ratio "$(field rate "$expired")" "$base_rate")
record_rate postgres "delivered/s, empty store" "$(field rate "$empty")"
record_rate postgres "delivered/s while $EXPIRED expired emails are purged" "$(field rate "$expired")"
record_rate postgres "expired emails purged/s by the retention pass" \
  "$(python3 -c "print(f'{$(field purged "$expired") / $(field purge_s "$expired"):.0f}')")"

cat > "$RESULTS/history.md" <<MD
### Delivery against history, and a retention pass (\`bench/history.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). The sink, the server, PostgreSQL and the loader share
the machine$( [ -n "${HISTORY_NOTE:-}" ] && echo "; $HISTORY_NOTE").

$BACKLOG emails of 2 KiB accepted through \`POST /v1/emails/batch\` with one
\`scheduled_at\`, delivered by \`mailqueue serve\` (PostgreSQL,
\`MAILQUEUE_WORKER_CONCURRENCY=64\`) into \`smtp-sink\`; time from the
scheduled instant to the last \`sent_at\`; on each store $WARMUP backlog(s) first
that warm the server and its cache up and are not counted (shown as
"warm-up"), then $ROUNDS backlogs one after the other on the same server, median. The history is inserted with \`generate_series\`
after \`mailqueue migrate\` (finished a day ago, so not past retention; ids
time-ordered as mailqueue makes them), then vacuumed and analysed once
(\`VACUUM (ANALYZE)\`, "settled in"), as autovacuum or, where it is off,
mailqueue's maintenance leader would have done while such a history
accumulated over days. (Statements planned without statistics are
checked by the plan tests instead.)
Target: ≥ 0.8× the empty store's rate at 5M.

| Delivered emails already stored | Delivered/s (median) | Rounds | Warm-up | Settled in | vs empty store |
| ---: | ---: | --- | --- | ---: | ---: |
$rows
**Retention pass.** $EXPIRED delivered emails finished 40 days ago
(\`MAILQUEUE_RETENTION_DAYS=30\`, the default), purged by the maintenance
leader from its start while the backlogs are loaded and delivered:
$(field purged "$expired") purged in $(field purge_s "$expired") s (batches of 500, each followed by a pause
of 19× its duration while the leader delivers and 1× while it is idle),
$(field wal_mb "$expired") MiB of WAL written meanwhile (the whole server, deliveries included).
Delivery while the purge ran ($(field during "$expired") of $ROUNDS rounds: $(rounds "$expired")/s; warm-up $(warm "$expired")/s):
$(field rate "$expired")/s, **${exp_ratio}×** $base_name (target ≥ 0.9×).
MD
cat "$RESULTS/history.md"
