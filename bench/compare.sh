#!/usr/bin/env bash
# Before and after a change: runs the benchmarks bench/accept.sh,
# bench/deliver.sh and bench/webhooks.sh (and, when BENCHES names them,
# bench/requeue.sh, bench/dispatch.sh, bench/fleet.sh and
# bench/webhooks_steady.sh and bench/history.sh) with two release binaries,
# BEFORE_BIN and AFTER_BIN, in turn, ROUNDS (3) times each: before and
# after in odd rounds, after and before in even ones (before, after, after,
# before, ...), so that a slow spell or a drift of the machine weighs on
# both sides alike. Each run also writes its headline rates
# (MAILQUEUE_BENCH_RATES) and its results file into a scratch directory,
# never into bench/results.
# Per benchmark, store and rate: the median of each side's runs, their
# spread ((max - min) / median; with five runs or more, of all but the
# fastest and the slowest), after / before, and whether the change is
# within the noise (the larger spread) or the two sides' runs overlap. A
# rate whose runs disagree (a
# spread above MAX_SPREAD, 0.15) is not reported, and the script exits
# non-zero once the table is written. Writes bench/results/compare.md, or
# bench/results/compare_$COMPARE_NAME.md when COMPARE_NAME is set (a
# second comparison beside the first).
#
# Settings (environment):
#   BEFORE_BIN, AFTER_BIN  the two mailqueue release binaries (required)
#   ROUNDS                 runs per binary and benchmark (3, at least 2)
#   BENCHES                which benchmarks ("accept deliver webhooks"; also
#                          requeue, dispatch, fleet, webhooks_steady, history)
#   MAX_SPREAD             the largest spread reported (0.15)
#   BEFORE_LABEL, AFTER_LABEL  how the binaries are named in the table
#                          (default: `git describe` of a checkout holding
#                          the binary, if any)
# Sizes, passed to the benchmarks (defaults keep a full comparison within
# about 25 minutes on two cores):
#   ACCEPT_DURATION (DURATION, 10 s), CONNS (64)               bench/accept.sh
#   DELIVER_COUNT (COUNT, 20000), DELIVER_LOAD_WINDOW (15 s)    bench/deliver.sh
#   WEBHOOKS_COUNT (COUNT, 10000), WEBHOOKS_LOAD_WINDOW (15 s)  bench/webhooks.sh
#   CONCURRENCY (64), HOOK_CONCURRENCY (16)                     both delivery runs
#                          (CONCURRENCY also for bench/fleet.sh's workers and
#                          bench/dispatch.sh's jobs at once, CONNS for
#                          bench/fleet.sh's wrk)
# A LOAD_WINDOW is the wait between loading the backlog and its scheduled
# instant: loading 20,000 emails takes about 2 s on two cores, so the
# benchmarks' own windows (40 s and 25 s, sized for larger backlogs) would
# be mostly idle time here.
# The other benchmarks (defaults keep each run to about a minute on two
# cores, 4 to 7 minutes per benchmark with 3 rounds; the benchmarks' own
# sizes are larger):
#   REQUEUE_COUNT (500000)                                      bench/requeue.sh
#   DISPATCH_JOBS (500000), CONCURRENCY                         bench/dispatch.sh
#   BEFORE_DISPATCH_BENCH, AFTER_DISPATCH_BENCH  its drivers, one per side
#                          (default: examples/dispatch_bench next to each
#                          binary, as `cargo build --release --locked -p
#                          mailqueue-queue --example dispatch_bench` leaves it)
#   FLEET_DURATION (10 s), FLEET_COUNT (15000), FLEET_LOAD_WINDOW (10 s),
#   FLEET_WORKERS (2), FLEET_IDLE_SECONDS (5 s), CONNS, CONCURRENCY  bench/fleet.sh
#   STEADY_RATE (1000 emails/s), STEADY_SECONDS (15 s)  bench/webhooks_steady.sh
#   HISTORY_BACKLOG (20000), HISTORY_EXPIRED (1500000), HISTORY_ROUNDS (2),
#   HISTORY_LOAD_WINDOW (15 s)                         bench/history.sh
#                          (no history not past retention: the empty store,
#                          and a retention pass of HISTORY_EXPIRED emails)
# bench/dispatch.sh runs one round per run and without its BullMQ baseline
# (BULLMQ=0). Their rates: bench/requeue.sh, emails requeued per second by
# one requeue-all (the benchmark times it), into an empty Redis and again
# with every entry queued; bench/fleet.sh, accepted/s and delivered/s (the
# idle fleet's cost is no rate and not compared); bench/webhooks_steady.sh,
# delivered/s during the load (the offered rate while the server keeps up)
# and emails per busy CPU-second of the whole machine. bench/requeue.sh,
# bench/dispatch.sh and bench/fleet.sh start a private Redis (redis-server,
# redis-cli); bench/requeue.sh and bench/fleet.sh, like the first three,
# use PostgreSQL (MAILQUEUE_BENCH_POSTGRES_URL).
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"
REPORT="$RESULTS/compare${COMPARE_NAME:+_$COMPARE_NAME}.md"

fail() {
  echo "bench/compare.sh: $*" >&2
  exit 2
}

# --- Settings -------------------------------------------------------------

BEFORE_BIN=${BEFORE_BIN:-}
AFTER_BIN=${AFTER_BIN:-}
ROUNDS=${ROUNDS:-3}
BENCHES=${BENCHES:-accept deliver webhooks}
MAX_SPREAD=${MAX_SPREAD:-0.15}
ACCEPT_DURATION=${ACCEPT_DURATION:-${DURATION:-10}}
CONNS=${CONNS:-64}
DELIVER_COUNT=${DELIVER_COUNT:-${COUNT:-20000}}
DELIVER_LOAD_WINDOW=${DELIVER_LOAD_WINDOW:-15}
WEBHOOKS_COUNT=${WEBHOOKS_COUNT:-${COUNT:-10000}}
WEBHOOKS_LOAD_WINDOW=${WEBHOOKS_LOAD_WINDOW:-15}
CONCURRENCY=${CONCURRENCY:-64}
HOOK_CONCURRENCY=${HOOK_CONCURRENCY:-16}
REQUEUE_COUNT=${REQUEUE_COUNT:-500000}
DISPATCH_JOBS=${DISPATCH_JOBS:-500000}
BEFORE_DISPATCH_BENCH=${BEFORE_DISPATCH_BENCH:-}
AFTER_DISPATCH_BENCH=${AFTER_DISPATCH_BENCH:-}
FLEET_DURATION=${FLEET_DURATION:-10}
FLEET_COUNT=${FLEET_COUNT:-15000}
FLEET_LOAD_WINDOW=${FLEET_LOAD_WINDOW:-10}
FLEET_WORKERS=${FLEET_WORKERS:-2}
FLEET_IDLE_SECONDS=${FLEET_IDLE_SECONDS:-5}
STEADY_RATE=${STEADY_RATE:-1000}
STEADY_SECONDS=${STEADY_SECONDS:-15}
HISTORY_BACKLOG=${HISTORY_BACKLOG:-20000}
HISTORY_EXPIRED=${HISTORY_EXPIRED:-1500000}
HISTORY_ROUNDS=${HISTORY_ROUNDS:-2}
HISTORY_LOAD_WINDOW=${HISTORY_LOAD_WINDOW:-15}

# check_binary NAME PATH: PATH is an executable file, else one error line.
check_binary() {
  [ -n "$2" ] || fail "$1 is not set: BEFORE_BIN=PATH AFTER_BIN=PATH bench/compare.sh (two mailqueue release binaries)"
  if [ ! -f "$2" ] || [ ! -x "$2" ]; then fail "$1=$2 is not an executable file"; fi
}

# has_bench NAME: BENCHES names the benchmark.
has_bench() { [[ " $BENCHES " == *" $1 "* ]]; }

# check_settings: every setting is one the benchmarks can run with.
check_settings() {
  check_binary BEFORE_BIN "$BEFORE_BIN"
  check_binary AFTER_BIN "$AFTER_BIN"
  if [[ ! $ROUNDS =~ ^[0-9]+$ ]] || [ "$ROUNDS" -lt 2 ]; then
    fail "ROUNDS=$ROUNDS: at least 2 runs per binary are needed to see whether they agree"
  fi
  [[ $MAX_SPREAD =~ ^[0-9]*\.?[0-9]+$ ]] || fail "MAX_SPREAD=$MAX_SPREAD is not a number"
  [ -n "${BENCHES// /}" ] || fail "BENCHES is empty"
  local bench
  for bench in $BENCHES; do
    case $bench in
      accept | deliver | webhooks | requeue | dispatch | fleet | webhooks_steady | history) ;;
      *) fail "BENCHES: unknown benchmark '$bench' (accept, deliver, webhooks, requeue, dispatch, fleet, webhooks_steady, history)" ;;
    esac
  done
}

# check_dispatch_bench NAME PATH BIN: the dispatch_bench example PATH, by
# default built next to BIN, is an executable file, else one error line.
check_dispatch_bench() {
  if [ ! -f "$2" ] || [ ! -x "$2" ]; then
    fail "$1=$2 is not an executable file: the dispatch benchmark runs each side's own dispatch_bench example; build it in the checkout $3 was built from, with the same target directory (cargo build --release --locked -p mailqueue-queue --example dispatch_bench), or set $1"
  fi
}

check_settings
BEFORE_BIN=$(realpath "$BEFORE_BIN")
AFTER_BIN=$(realpath "$AFTER_BIN")
if has_bench dispatch; then
  BEFORE_DISPATCH_BENCH=${BEFORE_DISPATCH_BENCH:-$(dirname "$BEFORE_BIN")/examples/dispatch_bench}
  AFTER_DISPATCH_BENCH=${AFTER_DISPATCH_BENCH:-$(dirname "$AFTER_BIN")/examples/dispatch_bench}
  check_dispatch_bench BEFORE_DISPATCH_BENCH "$BEFORE_DISPATCH_BENCH" "$BEFORE_BIN"
  check_dispatch_bench AFTER_DISPATCH_BENCH "$AFTER_DISPATCH_BENCH" "$AFTER_BIN"
  BEFORE_DISPATCH_BENCH=$(realpath "$BEFORE_DISPATCH_BENCH")
  AFTER_DISPATCH_BENCH=$(realpath "$AFTER_DISPATCH_BENCH")
fi

# --- One run of one benchmark ---------------------------------------------

# settings_of BENCH SIDE: sets SETTINGS to the VAR=VALUE sizes the
# benchmark runs with (for bench/dispatch.sh, also SIDE's driver).
# bench/webhooks.sh and bench/dispatch.sh run one round of their own per
# run here.
settings_of() {
  case $1 in
    accept) SETTINGS=(DURATION="$ACCEPT_DURATION" CONNS="$CONNS") ;;
    deliver) SETTINGS=(COUNT="$DELIVER_COUNT" LOAD_WINDOW="$DELIVER_LOAD_WINDOW" CONCURRENCY="$CONCURRENCY") ;;
    webhooks)
      SETTINGS=(COUNT="$WEBHOOKS_COUNT" LOAD_WINDOW="$WEBHOOKS_LOAD_WINDOW" CONCURRENCY="$CONCURRENCY"
        HOOK_CONCURRENCY="$HOOK_CONCURRENCY" ROUNDS=1 MODES="sqlite postgres")
      ;;
    requeue) SETTINGS=(COUNT="$REQUEUE_COUNT") ;;
    dispatch)
      local driver=$BEFORE_DISPATCH_BENCH
      [ "$2" = before ] || driver=$AFTER_DISPATCH_BENCH
      SETTINGS=(JOBS="$DISPATCH_JOBS" CONCURRENCY="$CONCURRENCY" ROUNDS=1 BULLMQ=0
        MAILQUEUE_BENCH_DISPATCH="$driver")
      ;;
    fleet)
      SETTINGS=(DURATION="$FLEET_DURATION" CONNS="$CONNS" COUNT="$FLEET_COUNT" LOAD_WINDOW="$FLEET_LOAD_WINDOW"
        WORKERS="$FLEET_WORKERS" CONCURRENCY="$CONCURRENCY" IDLE_SECONDS="$FLEET_IDLE_SECONDS")
      ;;
    webhooks_steady) SETTINGS=(RATE="$STEADY_RATE" SECONDS_LOAD="$STEADY_SECONDS" MODES="sqlite postgres") ;;
    history)
      SETTINGS=(BACKLOG="$HISTORY_BACKLOG" HISTORY_SIZES="" EXPIRED="$HISTORY_EXPIRED" ROUNDS="$HISTORY_ROUNDS"
        WARMUP=1 LOAD_WINDOW="$HISTORY_LOAD_WINDOW")
      ;;
  esac
}

# work_dirs BENCH: the benchmark's working directories in /tmp, one a line
# (bench/webhooks_steady.sh names its own "steady").
work_dirs() {
  local name=$1
  [ "$name" != webhooks_steady ] || name=steady
  compgen -G "/tmp/mailqueue-bench-$name.*" | sort || true
}

# run_once BENCH SIDE ROUND: runs the benchmark once with SIDE's binary, its
# results file and log in the scratch directory; appends its rates to
# $SCRATCH/rates.tsv as "BENCH STORE RATE SIDE ROUND VALUE". Removes the
# working directory the run left in /tmp unless the run failed (its
# server logs are there). Returns non-zero if the benchmark failed.
run_once() {
  local bench=$1 side=$2 round=$3 bin=$BEFORE_BIN dir="$SCRATCH/$1-$3-$2" old start status=0
  [ "$side" = before ] || bin=$AFTER_BIN
  mkdir -p "$dir/results"
  : > "$dir/rates.tsv"
  settings_of "$bench" "$side"
  old=$(work_dirs "$bench")
  log "$bench: round $round of $ROUNDS, $side"
  start=$(date +%s)
  env "${SETTINGS[@]}" MAILQUEUE_BIN="$bin" MAILQUEUE_BENCH_POSTGRES_URL="$PG_ADMIN_URL" \
    MAILQUEUE_BENCH_RESULTS="$dir/results" MAILQUEUE_BENCH_RATES="$dir/rates.tsv" \
    "$BENCH_DIR/$bench.sh" >"$dir/log" 2>&1 || status=$?
  printf '%s\t%s\t%s\t%s\n' "$bench" "$side" "$round" "$(($(date +%s) - start))" >> "$SCRATCH/times.tsv"
  if [ "$status" -ne 0 ] || [ ! -s "$dir/rates.tsv" ]; then
    log "$bench, $side, round $round: failed (exit $status); its log: $dir/log"
    tail -n 5 "$dir/log" >&2
    return 1
  fi
  comm -13 <(echo "$old") <(work_dirs "$bench") | xargs -r rm -rf
  awk -F'\t' -v b="$bench" -v s="$side" -v r="$round" 'BEGIN {OFS = FS} {print b, $1, $2, s, r, $3}' \
    "$dir/rates.tsv" >> "$SCRATCH/rates.tsv"
  log "$bench, $side, round $round: $(awk -F'\t' '{printf "%s%s %s %s", sep, $1, $2, $3; sep = "; "}' "$dir/rates.tsv") ($(($(date +%s) - start)) s)"
}

# run_bench BENCH: ROUNDS interleaved runs of each binary, the first of a
# round alternating; on a failed run, notes it in $SCRATCH/failed.tsv and
# leaves the benchmark's other runs.
run_bench() {
  local round side order
  for round in $(seq 1 "$ROUNDS"); do
    order="before after"
    [ $((round % 2)) -eq 1 ] || order="after before"
    for side in $order; do
      if ! run_once "$1" "$side" "$round"; then
        printf '%s\t%s\t%s\n' "$1" "$side" "$round" >> "$SCRATCH/failed.tsv"
        return 0
      fi
    done
  done
}

# --- The table --------------------------------------------------------------

# table: the table's rows from $SCRATCH/rates.tsv and $SCRATCH/failed.tsv;
# exits 3 if a row is not reported.
table() {
  python3 - "$SCRATCH/rates.tsv" "$SCRATCH/failed.tsv" "$ROUNDS" "$MAX_SPREAD" "$BENCHES" <<'PY'
import statistics, sys

rates_path, failed_path, rounds, max_spread, benches = sys.argv[1:]
rounds, max_spread, benches = int(rounds), float(max_spread), benches.split()
stores = {"sqlite": "embedded (SQLite)", "postgres": "PostgreSQL",
          "postgres+redis": "PostgreSQL + Redis", "redis": "Redis alone (no store)"}
runs = {}  # (bench, store, rate) -> {"before": [...], "after": [...]}
for line in open(rates_path):
    bench, store, rate, side, _round, value = line.rstrip("\n").split("\t")
    runs.setdefault((bench, store, rate), {"before": [], "after": []})[side].append(float(value))
failed = {}
for line in open(failed_path):
    bench, side, rnd = line.split()
    failed[bench] = f"a run failed ({side}, round {rnd})"

def kept(values):
    """The runs a side is judged on: all of them, or with five runs and
    more, all but the fastest and the slowest (one run hit by a passing
    spell of the machine does not void a row; a side whose runs keep
    disagreeing still does)."""
    ordered = sorted(values)
    return ordered[1:-1] if len(ordered) >= 5 else ordered

def spread(values):
    values = kept(values)
    m = statistics.median(values)
    return (max(values) - min(values)) / m if m > 0 else float("inf")

def listed(values):
    return ", ".join(f"{v:.0f}" for v in values)

refused = 0
for bench in benches:
    keys = [k for k in runs if k[0] == bench]
    if bench in failed:
        refused += 1
        print(f"| {bench} | | | | | not reported: {failed[bench]} | | | | |")
        continue
    for key in keys:
        _, store, rate = key
        before, after = runs[key]["before"], runs[key]["after"]
        head = f"| {bench} | {stores.get(store, store)} | {rate} |"
        if len(before) != rounds or len(after) != rounds:
            refused += 1
            print(f"{head} | | not reported: in {len(before)} + {len(after)} of {2 * rounds} runs | | | | |")
            continue
        sb, sa = spread(before), spread(after)
        noise = max(sb, sa)
        tail = f"{listed(before)} ({sb:.1%}) | {listed(after)} ({sa:.1%}) |"
        if noise > max_spread:
            refused += 1
            print(f"{head} | | not reported: runs disagree (spread {noise:.1%}) | | | {tail}")
            continue
        mb, ma = statistics.median(before), statistics.median(after)
        ratio = ma / mb
        # A change counts only when it exceeds the noise and no run of one
        # side falls among the other's: a few runs can agree by chance.
        kb, ka = kept(before), kept(after)
        apart = min(ka) > max(kb) or max(ka) < min(kb)
        if abs(ratio - 1) <= noise or not apart:
            verdict = "within noise"
        else:
            verdict = "faster" if ratio > 1 else "slower"
        print(f"{head} {mb:.0f} | {ma:.0f} | {ratio:.2f}× | {noise:.1%} | {verdict} | {tail}")
sys.exit(3 if refused else 0)
PY
}

# describe_bin PATH LABEL: the binary's path, `--version`, the start of its
# SHA-256 and its label (or the `git describe` of a checkout holding it).
describe_bin() {
  local version sha label=$2
  version=$(env -i PATH="$PATH" "$1" --version 2>/dev/null | head -n 1)
  sha=$(sha256sum "$1" | cut -c1-12)
  [ -n "$label" ] || label=$(git -C "$(dirname "$1")" describe --always --dirty 2>/dev/null || true)
  echo "\`$1\` (${version:-no --version}, sha256 $sha${label:+, $label})"
}

# command_line: the command that repeats this comparison, every setting spelled out.
command_line() {
  local line="BEFORE_BIN=$BEFORE_BIN AFTER_BIN=$AFTER_BIN ROUNDS=$ROUNDS BENCHES=\"$BENCHES\" MAX_SPREAD=$MAX_SPREAD"
  line+=" ACCEPT_DURATION=$ACCEPT_DURATION CONNS=$CONNS DELIVER_COUNT=$DELIVER_COUNT DELIVER_LOAD_WINDOW=$DELIVER_LOAD_WINDOW"
  line+=" WEBHOOKS_COUNT=$WEBHOOKS_COUNT WEBHOOKS_LOAD_WINDOW=$WEBHOOKS_LOAD_WINDOW"
  line+=" CONCURRENCY=$CONCURRENCY HOOK_CONCURRENCY=$HOOK_CONCURRENCY"
  ! has_bench requeue || line+=" REQUEUE_COUNT=$REQUEUE_COUNT"
  ! has_bench dispatch || line+=" DISPATCH_JOBS=$DISPATCH_JOBS BEFORE_DISPATCH_BENCH=$BEFORE_DISPATCH_BENCH AFTER_DISPATCH_BENCH=$AFTER_DISPATCH_BENCH"
  ! has_bench fleet || line+=" FLEET_DURATION=$FLEET_DURATION FLEET_COUNT=$FLEET_COUNT FLEET_LOAD_WINDOW=$FLEET_LOAD_WINDOW FLEET_WORKERS=$FLEET_WORKERS FLEET_IDLE_SECONDS=$FLEET_IDLE_SECONDS"
  ! has_bench webhooks_steady || line+=" STEADY_RATE=$STEADY_RATE STEADY_SECONDS=$STEADY_SECONDS"
  ! has_bench history || line+=" HISTORY_BACKLOG=$HISTORY_BACKLOG HISTORY_EXPIRED=$HISTORY_EXPIRED HISTORY_ROUNDS=$HISTORY_ROUNDS HISTORY_LOAD_WINDOW=$HISTORY_LOAD_WINDOW"
  [ "$PG_ADMIN_URL" = "postgres://postgres@127.0.0.1:5432/postgres" ] || line+=" MAILQUEUE_BENCH_POSTGRES_URL=$PG_ADMIN_URL"
  echo "$line bench/compare.sh"
}

# what_ran: how each benchmark of BENCHES ran, one clause each.
what_ran() {
  local bench clauses=()
  for bench in $BENCHES; do
    case $bench in
      accept) clauses+=("\`bench/accept.sh\` on the embedded store and on PostgreSQL for $ACCEPT_DURATION s per mode over $CONNS connections (rate: 2xx responses per second)") ;;
      deliver) clauses+=("\`bench/deliver.sh\` on both stores with a backlog of $DELIVER_COUNT emails") ;;
      webhooks) clauses+=("\`bench/webhooks.sh\` on both stores with one round of $WEBHOOKS_COUNT emails per run") ;;
      requeue) clauses+=("\`bench/requeue.sh\` with $REQUEUE_COUNT emails scheduled in PostgreSQL, requeued into a private Redis (rates: emails requeued per second by one \`POST /v1/scheduled-jobs/requeue-all\`, timed by curl, into an empty Redis and again with every entry queued)") ;;
      dispatch) clauses+=("\`bench/dispatch.sh\` with $DISPATCH_JOBS jobs, $CONCURRENCY at once, on a private Redis, one round per run, each side with its own \`dispatch_bench\` and without the BullMQ baseline") ;;
      fleet) clauses+=("\`bench/fleet.sh\` on PostgreSQL and a private Redis with one API and $FLEET_WORKERS worker processes, accepting for $FLEET_DURATION s per mode over $CONNS connections (rate: 2xx responses per second) and delivering a backlog of $FLEET_COUNT emails") ;;
      webhooks_steady) clauses+=("\`bench/webhooks_steady.sh\` on both stores with $STEADY_RATE emails/s offered for $STEADY_SECONDS s, without and with one webhook (rates: emails delivered per second of the load, which follows the offered rate while the server keeps up, and emails per busy CPU-second of the whole machine, its busy CPU time from the load's start until every email was sent and every event received)") ;;
      history) clauses+=("\`bench/history.sh\` on PostgreSQL, each run one warm-up and $HISTORY_ROUNDS counted backlogs of $HISTORY_BACKLOG emails (median) on an empty store, then the same on a store holding $HISTORY_EXPIRED delivered emails past retention, which the maintenance leader purges meanwhile (rates: delivered per second on each store, and expired emails purged per second from the server's start until the last was purged)") ;;
    esac
  done
  local joined
  printf -v joined '%s, ' "${clauses[@]}"
  echo "${joined%, }"
}

# write_report ROWS MINUTES: the comparison's results file (REPORT).
write_report() {
  local same=""
  cmp -s "$BEFORE_BIN" "$AFTER_BIN" && same=" Both sides ran the same binary: the table shows the noise alone."
  local drivers=""
  if has_bench dispatch; then
    drivers=$'\n'"Dispatch drivers: before \`$BEFORE_DISPATCH_BENCH\` (sha256 $(sha256sum "$BEFORE_DISPATCH_BENCH" | cut -c1-12)),"
    drivers+=" after \`$AFTER_DISPATCH_BENCH\` (sha256 $(sha256sum "$AFTER_DISPATCH_BENCH" | cut -c1-12))."
  fi
  cat > "$REPORT" <<MD
### Before and after a change: $BENCHES (\`bench/compare.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). Every benchmark's processes share the machine.

Command: \`$(command_line)\`

Before: $(describe_bin "$BEFORE_BIN" "${BEFORE_LABEL:-}").
After: $(describe_bin "$AFTER_BIN" "${AFTER_LABEL:-}").$same$drivers

Each benchmark ran $ROUNDS times with each binary, in turn, the first of
each round alternating (before, after, after, before, …): $(what_ran).

Before and After are the medians of each side's runs; the spread of a side
is (max − min) / median of its runs (with five runs or more, of all but
its fastest and slowest), and the noise of a row the larger
spread of the two. A row whose noise exceeds $(python3 -c "print(f'{$MAX_SPREAD:.0%}')") is not reported. "Within
noise": |after / before − 1| ≤ noise, or a run of one side lies among the
other's. The comparison took $2 minutes.

| Benchmark | Store | Rate | Before | After | After / before | Noise | Verdict | Runs before (spread) | Runs after (spread) |
| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |
$1
MD
}

# --- Main -------------------------------------------------------------------

SCRATCH=$(mktemp -d /tmp/mailqueue-bench-compare.XXXX)
: > "$SCRATCH/rates.tsv"
: > "$SCRATCH/failed.tsv"
log "comparing $BEFORE_BIN (before) with $AFTER_BIN (after), $ROUNDS rounds; runs in $SCRATCH"
started=$(date +%s)
for bench in $BENCHES; do
  run_bench "$bench"
done
minutes=$(python3 -c "print(f'{($(date +%s) - $started) / 60:.1f}')")
status=0
rows=$(table) || status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || fail "the table could not be computed from $SCRATCH/rates.tsv"
write_report "$rows" "$minutes"
cat "$REPORT"
if [ "$status" -ne 0 ]; then
  log "some rates are not reported (runs disagree or failed); see $REPORT and $SCRATCH"
fi
exit "$status"
