#!/usr/bin/env bash
# Dispatch layer alone, on one private Redis (no persistence): JOBS
# (200,000) jobs enqueued → taken → acknowledged, with CONCURRENCY (64)
# jobs in process at once and the producer adding ENQUEUE_BATCH (100) per
# call while the consumers run. No HTTP, no store, a job does nothing.
#   - mailqueue: the real `RedisQueue` through its `DispatchQueue` trait
#     (crates/mailqueue-queue/examples/dispatch_bench.rs), consuming as the
#     delivery dispatcher does (one taker, batches of up to 512) and one job
#     per call (CONCURRENCY consumers);
#   - baseline in the same run: BullMQ (bench/bullmq/, Node), Queue.addBulk
#     and one Worker at the same concurrency, completed jobs removed.
# Each side runs ROUNDS (3) times, interleaved; the median is reported, with
# Redis's own CPU time and command count per job. BULLMQ=0 leaves the
# baseline out (bench/compare.sh, which compares two builds of mailqueue).
# Writes bench/results/dispatch.md.
source "$(dirname "$0")/common.sh"
BULLMQ=${BULLMQ:-1}
need redis-server redis-cli
[ "$BULLMQ" = 0 ] || need node npm
build_dispatch_bench
JOBS=${JOBS:-200000}
CONCURRENCY=${CONCURRENCY:-64}
ENQUEUE_BATCH=${ENQUEUE_BATCH:-100}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d /tmp/mailqueue-bench-dispatch.XXXX)
if [ "$BULLMQ" != 0 ] && [ ! -d "$BENCH_DIR/bullmq/node_modules" ]; then
  log "installing BullMQ (bench/bullmq/package-lock.json)"
  (cd "$BENCH_DIR/bullmq" && npm ci --silent --no-audit --no-fund >&2)
fi
start_redis
trap 'kill $REDIS_PID 2>/dev/null || true' EXIT
redis_url="redis://127.0.0.1:$REDIS_PORT"
redis_cpu() { python3 -c "print($(info_field "$1" used_cpu_user) + $(info_field "$1" used_cpu_sys))"; }

# run_side NAME COMMAND...: one round on an empty Redis; prints the
# driver's RESULT line plus Redis's CPU milliseconds per 1000 jobs and
# commands per job (the first INFO, counted by the second, excluded).
run_side() {
  local name=$1 result
  shift
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  redis_info "$work/before"
  log "$name: $JOBS jobs at concurrency $CONCURRENCY"
  result=$("$@" | grep '^RESULT')
  redis_info "$work/after"
  echo "$result $(python3 -c "print(f'redis_cpu_ms_per_1k={($(redis_cpu "$work/after") - $(redis_cpu "$work/before")) * 1e6 / $JOBS:.1f} commands_per_job={($(info_field "$work/after" total_commands_processed) - $(info_field "$work/before" total_commands_processed) - 1) / $JOBS:.2f}')")"
}

common=(--jobs "$JOBS" --concurrency "$CONCURRENCY" --enqueue-batch "$ENQUEUE_BATCH" --redis-url "$redis_url")
: > "$work/batched" && : > "$work/single" && : > "$work/bullmq"
for round in $(seq 1 "$ROUNDS"); do
  log "round $round of $ROUNDS"
  run_side "mailqueue, batched" "$DISPATCH_BENCH" "${common[@]}" --mode batched >> "$work/batched"
  run_side "mailqueue, one per call" "$DISPATCH_BENCH" "${common[@]}" --mode single >> "$work/single"
  [ "$BULLMQ" = 0 ] || run_side "BullMQ" node "$BENCH_DIR/bullmq/dispatch.mjs" "${common[@]}" >> "$work/bullmq"
done

# median FILE FIELD: the median of FIELD over the rounds in FILE.
median() { grep -oP "$2=\K[0-9.]+" "$1" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
runs() { grep -oP 'rate=\K[0-9]+' "$1" | paste -sd' ' | sed 's/ /, /g'; }
# The headline rates for bench/compare.sh.
record_rate redis "jobs/s, batched (as the dispatcher)" "$(median "$work/batched" rate)"
record_rate redis "jobs/s, one job per call" "$(median "$work/single" rate)"
bullmq_rate=$([ "$BULLMQ" = 0 ] || median "$work/bullmq" rate)
ratio() { [ "$BULLMQ" = 0 ] || python3 -c "print(f'{$(median "$1" rate) / $bullmq_rate:.2f}×')"; }
row() {
  echo "| $1 | $(median "$2" rate) | $(runs "$2") | $(median "$2" enqueue_seconds) s | $(median "$2" redis_cpu_ms_per_1k) ms | $(median "$2" commands_per_job) | $(ratio "$2") |"
}
if [ "$BULLMQ" = 0 ]; then
  baseline="BullMQ not run (BULLMQ=0)"
  bullmq_row="| BullMQ (baseline) | not run (BULLMQ=0) | | | | | |"
else
  baseline="Node $(node --version), BullMQ $(node -p "require('$BENCH_DIR/bullmq/node_modules/bullmq/package.json').version")"
  bullmq_row=$(row "BullMQ (baseline)" "$work/bullmq")
fi

cat > "$RESULTS/dispatch.md" <<MD
### Dispatch layer on Redis (\`bench/dispatch.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine); Redis $(redis_stat redis_version), $baseline.
The drivers and Redis share the machine, and other builds ran on the machine
during the run: compare the ratios, not the absolute rates.

$JOBS jobs on one private Redis (no persistence), enqueued $ENQUEUE_BATCH per call by one
producer while the consumers run, $CONCURRENCY jobs in process at once; a job does
nothing, so only the queue is measured. Time runs from the first enqueue to
the last job done; median of $ROUNDS interleaved rounds.
mailqueue: \`dispatch_bench --jobs $JOBS --concurrency $CONCURRENCY --enqueue-batch $ENQUEUE_BATCH --mode batched|single\`
(crates/mailqueue-queue/examples/dispatch_bench.rs, the real \`RedisQueue\`:
enqueue → take → ack). Batched consumes as the delivery dispatcher does (one
taker, up to 512 per call, one acknowledgement per batch); one per call has
$CONCURRENCY consumers each taking and acknowledging a single job. Baseline:
\`node bench/bullmq/dispatch.mjs\`, \`Queue.addBulk\` → \`Worker\` (concurrency $CONCURRENCY) → completed,
job ids set (as mailqueue keys entries by email id), completed jobs removed.

| Queue | Jobs/s (median) | Rounds (jobs/s) | Enqueue time | Redis CPU per 1000 jobs | Redis commands per job | vs BullMQ |
| --- | ---: | --- | ---: | ---: | ---: | ---: |
$(row "mailqueue \`RedisQueue\`, batched (as the dispatcher)" "$work/batched")
$(row "mailqueue \`RedisQueue\`, one job per call" "$work/single")
$bullmq_row
MD
cat "$RESULTS/dispatch.md"
