#!/usr/bin/env bash
# The fleet end to end: PostgreSQL as the store, a private Redis (no
# persistence) as the dispatch queue, one `mailqueue serve --role api`
# process and WORKERS (2) `--role worker` processes, delivering into
# Postfix's smtp-sink. In one run:
#   - accepted/s: wrk, CONNS (64) connections for DURATION (20) seconds of
#     2 KiB emails through the API process, scheduled for the next day (the
#     API path alone) and due at once (while the workers deliver them);
#     baseline pgbench's single-row insert (as bench/accept.sh);
#   - delivered/s: a backlog of COUNT (20,000) emails scheduled for one
#     instant, from that instant to the last `sent_at`; baseline
#     `smtp-source -d` into the same sink (as bench/deliver.sh);
#   - peak RSS (VmHWM) of each process after all of the above;
#   - the idle fleet's cost: Redis commands per second (and PostgreSQL
#     transactions per second) over IDLE_SECONDS (30) with no work, the
#     next day's emails still queued.
# Writes bench/results/fleet.md.
source "$(dirname "$0")/common.sh"
need wrk pgbench smtp-sink smtp-source redis-server redis-cli
build_release
DURATION=${DURATION:-20}
CONNS=${CONNS:-64}
COUNT=${COUNT:-20000}
WORKERS=${WORKERS:-2}
CONCURRENCY=${CONCURRENCY:-64}
IDLE_SECONDS=${IDLE_SECONDS:-30}
work=$(mktemp -d /tmp/mailqueue-bench-fleet.XXXX)
write_bodies "$work"
start_sink
sink_port=$SINK_PORT
start_redis
pids=()
cleanup() {
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  kill "$SINK_PID" "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT

fresh_database mq_bench_fleet
db_url=$(pg_url_for mq_bench_fleet)
sql() { psql "$db_url" -qAtc "$1"; }
env=(DATABASE_URL="$db_url" REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY="$CONCURRENCY")
key=$(create_key "$work" "${env[@]}")
api_port=$(free_port)
start_role "$work" api "$api_port" "${env[@]}"
api_pid=$SERVER_PID
pids+=("$api_pid")
worker_pids=()
for _ in $(seq 1 "$WORKERS"); do
  start_role "$work" worker "$(free_port)" "${env[@]}"
  worker_pids+=("$SERVER_PID")
  pids+=("$SERVER_PID")
done

# wait_sql EXPECTED SQL: polls until the query answers EXPECTED (10 minutes at most).
wait_sql() {
  for _ in $(seq 1 1200); do
    [ "$(sql "$2")" = "$1" ] && return 0
    sleep 0.5
  done
  echo "gave up waiting for: $2 = $1" >&2
  exit 1
}

# accept now|later: wrk through the API process; prints wrk's RESULT line.
accept() {
  local body="$work/$1.json"
  log "fleet, emails due $1: warming up"
  MQ_KEY=$key MQ_BODY="$body" wrk -t2 -c"$CONNS" -d3s -s "$BENCH_DIR/post_email.lua" "http://127.0.0.1:$api_port/v1/emails" >/dev/null
  log "fleet, emails due $1: measuring ${DURATION}s with $CONNS connections"
  MQ_KEY=$key MQ_BODY="$body" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$BENCH_DIR/post_email.lua" \
    "http://127.0.0.1:$api_port/v1/emails" > "$work/wrk-$1.txt"
  grep '^RESULT' "$work/wrk-$1.txt"
}

later=$(accept later)
now=$(accept now)
log "waiting for the workers to deliver what was accepted"
drain_start=$(now_s)
wait_sql 0 "SELECT count(*) FROM emails WHERE status IN ('queued', 'sending')"
drain_seconds=$(python3 -c "print(f'{$(now_s) - $drain_start:.1f}')")

# The backlog: COUNT emails due at one instant, loaded through the API.
load_backlog fleet "$api_port" "$key" "$COUNT"
log "fleet: waiting for the backlog to be delivered"
wait_sql "$COUNT" "SELECT count(*) FROM emails WHERE scheduled_at = '$AT' AND status = 'sent'"
last=$(sql "SELECT extract(epoch FROM max(sent_at)) FROM emails WHERE scheduled_at = '$AT'")
backlog=$(python3 -c "d = $last - $AT_EPOCH; print(f'rate={$COUNT / d:.0f} seconds={d:.2f}')")
# The headline rates for bench/compare.sh: 2xx responses and emails sent per second.
accepted() { python3 -c "print(f'{($(field requests "$1") - $(field non2xx "$1")) / $(field seconds "$1"):.0f}')"; }
record_rate postgres+redis "accepted/s, API only" "$(accepted "$later")"
record_rate postgres+redis "accepted/s, while $WORKERS workers deliver" "$(accepted "$now")"
record_rate postgres+redis "delivered/s, $WORKERS workers" "$(field rate "$backlog")"

api_rss=$(peak_rss_mb "$api_pid")
worker_rss=()
for pid in "${worker_pids[@]}"; do worker_rss+=("$(peak_rss_mb "$pid")"); done
redis_rss=$(peak_rss_mb "$REDIS_PID")
later_queued=$(sql "SELECT count(*) FROM emails WHERE status = 'scheduled'")

log "idle fleet: counting Redis commands for ${IDLE_SECONDS}s"
sleep 5
xact() { sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'mq_bench_fleet'"; }
redis_info "$work/idle-before"
xact0=$(xact)
sleep "$IDLE_SECONDS"
xact1=$(xact)
redis_info "$work/idle-after"
# Per second, without the measurement's own first INFO and first query.
idle_redis=$(python3 -c "print(f'{($(info_field "$work/idle-after" total_commands_processed) - $(info_field "$work/idle-before" total_commands_processed) - 1) / $IDLE_SECONDS:.2f}')")
idle_pg=$(python3 -c "print(f'{($xact1 - $xact0 - 1) / $IDLE_SECONDS:.2f}')")
# The commands behind that rate, by name, per second.
idle_breakdown=$(python3 - "$work/idle-before" "$work/idle-after" "$IDLE_SECONDS" <<'PY'
import re, sys
def calls(path):
    out = {}
    for line in open(path):
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out
before, after, secs = calls(sys.argv[1]), calls(sys.argv[2]), float(sys.argv[3])
after["info"] = after.get("info", 0) - 1
rates = {k: (v - before.get(k, 0)) / secs for k, v in after.items() if v > before.get(k, 0)}
print(", ".join(f"{k} {v:.2f}/s" for k, v in sorted(rates.items(), key=lambda kv: -kv[1])) or "none")
PY
)

# The baselines run alone: the fleet's connections would count against
# PostgreSQL's max_connections.
for pid in "${pids[@]}"; do stop_pid "$pid"; done
pids=()
smtp_source_d=$(smtp_source_rate "$sink_port" "$COUNT" "$CONCURRENCY" -d)
pgbench_tps=$(pgbench_insert_rate "$work" "$CONNS" "$DURATION")
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
accept_row() {
  echo "| $1 | $(field rate "$2") | $(field p50_ms "$2") ms | $(field p99_ms "$2") ms | $(field non2xx "$2") | $(ratio "$(field rate "$2")" "$pgbench_tps")× |"
}
rss_rows=$(
  echo "| api | $api_rss MB |"
  for i in "${!worker_rss[@]}"; do echo "| worker $((i + 1)) | ${worker_rss[$i]} MB |"; done
  echo "| redis-server (context) | $redis_rss MB |"
)

cat > "$RESULTS/fleet.md" <<MD
### The fleet end to end: PostgreSQL + Redis (\`bench/fleet.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). wrk, one \`mailqueue serve --role api\`, $WORKERS \`--role worker\`
processes (\`MAILQUEUE_WORKER_CONCURRENCY=$CONCURRENCY\` each), PostgreSQL, a private Redis
(no persistence) and smtp-sink share the machine, and other builds ran on
the machine during the run: compare the ratios, not the absolute rates.

Accepting: \`wrk -t2 -c$CONNS -d${DURATION}s --latency -s bench/post_email.lua\` against the API
process, a 2 KiB email scheduled for the next day (the API path alone) or
due at once (the workers deliver meanwhile). Baseline in the same run:
\`pgbench -n -M prepared -c $CONNS -j 2 -T $DURATION\`, one single-row insert of a 2 KiB
email row per transaction (as \`bench/accept.sh\`).

| Fleet accepting | Accepted/s | p50 | p99 | Non-2xx | vs pgbench insert |
| --- | ---: | ---: | ---: | ---: | ---: |
$(accept_row "API only (due the next day)" "$later")
$(accept_row "While $WORKERS workers deliver (due at once)" "$now")
| pgbench single-row insert (baseline) | $pgbench_tps | | | | 1.00× |

After the second run the workers needed $drain_seconds s more to deliver what was accepted.

Delivering: $COUNT emails of 2 KiB accepted through \`POST /v1/emails/batch\` with one
\`scheduled_at\`, then delivered by the workers into
\`smtp-sink -u nobody 127.0.0.1:PORT 1024\`; time runs from the scheduled instant
to the last \`sent_at\`. Baseline in the same run: \`smtp-source -d -s $CONCURRENCY -m $COUNT -l 2048\`
into the same sink.

| Sender | Delivered/s | Time | vs smtp-source -d |
| --- | ---: | ---: | ---: |
| smtp-source -d (baseline) | $smtp_source_d | | 1.00× |
| mailqueue fleet, $WORKERS workers | $(field rate "$backlog") | $(field seconds "$backlog") s | $(ratio "$(field rate "$backlog")" "$smtp_source_d")× |

Peak RSS (VmHWM) of each process after both acceptance runs and the backlog:

| Process | Peak RSS |
| --- | ---: |
$rss_rows

Idle fleet (1 api, $WORKERS workers, nothing due; $later_queued emails scheduled for the
next day in the queue), over ${IDLE_SECONDS} s: **$idle_redis Redis commands/s**
($idle_breakdown) and $idle_pg PostgreSQL transactions/s.
MD
cat "$RESULTS/fleet.md"
