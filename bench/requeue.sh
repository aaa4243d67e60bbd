#!/usr/bin/env bash
# Rebuilding the dispatch queue: COUNT (1,000,000) scheduled emails loaded
# straight into PostgreSQL with generate_series, in the shape mailqueue
# writes them (an `emails` row, its `email_contents` row and its
# `email.scheduled` event, copied from one email accepted through the API),
# then `POST /v1/scheduled-jobs/requeue-all` timed against one
# `mailqueue serve --role api` process with a private Redis (no
# persistence) as the queue: once into an empty Redis (the recovery after
# losing it) and once more with every entry already there. Reports the
# time, the Redis memory the entries take and the API's peak RSS. Writes
# bench/results/requeue.md.
source "$(dirname "$0")/common.sh"
need redis-server redis-cli
build_release
COUNT=${COUNT:-1000000}
work=$(mktemp -d /tmp/mailqueue-bench-requeue.XXXX)
start_redis
api_pid=
trap '[ -z "$api_pid" ] || stop_pid "$api_pid"; kill $REDIS_PID 2>/dev/null || true' EXIT

fresh_database mq_bench_requeue
db_url=$(pg_url_for mq_bench_requeue)
env=(DATABASE_URL="$db_url" REDIS_URL="redis://127.0.0.1:$REDIS_PORT")
key=$(create_key "$work" "${env[@]}")
port=$(free_port)
start_role "$work" api "$port" "${env[@]}"
api_pid=$SERVER_PID

python3 "$BENCH_DIR/make_email.py" 2048 "in 1 day" > "$work/later.json"
template=$(curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  --data-binary @"$work/later.json" "http://127.0.0.1:$port/v1/emails" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
log "loading $COUNT scheduled emails like $template into PostgreSQL"
load_start=$(now_s)
psql "$db_url" -q -v ON_ERROR_STOP=1 -v template="$template" -v count="$((COUNT - 1))" <<'SQL'
SET synchronous_commit = off;
BEGIN;
-- UUIDv7-shaped ids (a millisecond timestamp, then random bits), as the
-- application makes them.
CREATE TEMP TABLE new_ids ON COMMIT DROP AS
SELECT g, (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
           || '7' || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid AS id
FROM generate_series(1, :count) AS g;
INSERT INTO emails (id, api_key_id, status, priority, message_id, created_at, updated_at,
                    scheduled_at, next_attempt_at, attempts)
SELECT n.id, t.api_key_id, t.status, t.priority, '<' || n.id || '@acme.test>', t.created_at, t.updated_at,
       t.scheduled_at + n.g * interval '1 millisecond', t.next_attempt_at + n.g * interval '1 millisecond', 0
FROM new_ids n, emails t WHERE t.id = :'template';
INSERT INTO email_contents (email_id, content)
SELECT n.id, c.content FROM new_ids n, email_contents c WHERE c.email_id = :'template';
INSERT INTO email_events (id, email_id, type, created_at, data)
SELECT gen_random_uuid(), n.id, e.type, e.created_at, e.data
FROM new_ids n, email_events e WHERE e.email_id = :'template';
COMMIT;
VACUUM ANALYZE emails;
SQL
load_seconds=$(python3 -c "print(f'{$(now_s) - $load_start:.0f}')")
pending=$(psql "$db_url" -qAtc "SELECT count(*) FROM emails WHERE status = 'scheduled'")
db_size=$(psql "$db_url" -qAtc "SELECT pg_size_pretty(pg_database_size('mq_bench_requeue'))")

# requeue: one timed POST; prints "seconds=… requeued=…".
requeue() {
  local out
  out=$(curl -fsS -o "$work/requeue.json" -w '%{time_total}' -X POST -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' --data '{}' "http://127.0.0.1:$port/v1/scheduled-jobs/requeue-all")
  echo "seconds=$(printf '%.2f' "$out") requeued=$(python3 -c "import json; print(json.load(open('$work/requeue.json'))['requeued'])")"
}
redis-cli -p "$REDIS_PORT" flushall >/dev/null
memory_empty=$(redis_stat used_memory)
log "requeue-all of $pending emails into an empty Redis"
first=$(requeue)
memory_full=$(redis_stat used_memory)
log "requeue-all again, every entry already queued"
second=$(requeue)
[ "$(field requeued "$first")" = "$pending" ] && [ "$(field requeued "$second")" = "$pending" ] || {
  echo "requeue-all answered $first then $second for $pending pending emails" >&2
  exit 1
}
entries=$(redis-cli -p "$REDIS_PORT" --scan --pattern '*:due:*' | while read -r k; do redis-cli -p "$REDIS_PORT" zcard "$k"; done |
  awk '{s += $1} END {print s}')
api_rss=$(peak_rss_mb "$api_pid")
mib() { python3 -c "print(f'{$1 / 1048576:.1f}')"; }
per_entry=$(python3 -c "print(f'{($memory_full - $memory_empty) / $entries:.0f}')")
rate() { python3 -c "print(f'{$pending / $(field seconds "$1"):.0f}')"; }
# The headline rates for bench/compare.sh: emails requeued per second.
record_rate postgres+redis "emails requeued/s, into an empty Redis" "$(rate "$first")"
record_rate postgres+redis "emails requeued/s, every entry already queued" "$(rate "$second")"

cat > "$RESULTS/requeue.md" <<MD
### Requeueing a million scheduled emails (\`bench/requeue.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine); Redis $(redis_stat redis_version). The API process,
PostgreSQL and a private Redis (no persistence) share the machine, and
other builds ran on the machine during the run.

$pending scheduled emails in PostgreSQL ($db_size database), loaded with one
\`generate_series\` statement in the shape mailqueue writes (an \`emails\` row, its
\`email_contents\` row and its \`email.scheduled\` event, copied from one 2 KiB email
accepted through the API; ${load_seconds} s to load), then
\`POST /v1/scheduled-jobs/requeue-all\` against one \`mailqueue serve --role api\`
process with Redis as the queue, timed by curl. Target: under 60 s.

| Requeue-all | Time | Emails/s | Requeued |
| --- | ---: | ---: | ---: |
| Into an empty Redis (the queue lost) | $(field seconds "$first") s | $(rate "$first") | $(field requeued "$first") |
| Again, every entry already queued | $(field seconds "$second") s | $(rate "$second") | $(field requeued "$second") |

Redis memory of the $entries entries: $(mib $((memory_full - memory_empty))) MiB
(\`used_memory\` $(mib "$memory_empty") MiB empty, $(mib "$memory_full") MiB after; about $per_entry bytes per entry).
Peak RSS of the API process: $api_rss MB.
MD
cat "$RESULTS/requeue.md"
