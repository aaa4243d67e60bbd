#!/usr/bin/env bash
# Submission's accept rate against Postfix's smtpd, both durable on this
# machine, same client concurrency: MESSAGES (20000) messages of SIZE (2048)
# bytes over SESSIONS (16) connections at once, each connection sending its
# messages one after the other, every command waiting for its reply.
#   - Postfix: a private instance whose smtpd takes every message into its
#     own queue (fsynced before its 250) and holds it there (access action
#     HOLD: nothing is delivered), fed by `smtp-source -d` (no AUTH; the
#     client is in mynetworks).
#   - mailqueue: `mailqueue serve --role api` on PostgreSQL and a private
#     Redis (every 250 a committed row), its submission port in the clear
#     with plaintext AUTH allowed, fed by the submission_load example
#     (AUTH PLAIN once per connection, then the same messages).
# ROUNDS (5) runs each, in turn (postfix, mailqueue, mailqueue, postfix,
# ...); the median of each; a side whose runs spread more than MAX_SPREAD
# (0.15; with five runs or more, all but its fastest and slowest) is refused and the script exits non-zero once the table is
# written. Writes bench/results/submission.md.
source "$(dirname "$0")/common.sh"
need smtp-source postfix redis-server redis-cli
build_release
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-16}
SIZE=${SIZE:-2048}
ROUNDS=${ROUNDS:-5}
MAX_SPREAD=${MAX_SPREAD:-0.15}
work=$(mktemp -d /tmp/mailqueue-bench-submission.XXXX)
chmod 755 "$work"

LOAD=$(build_example submission_load)

# --- Postfix: a private instance that holds what it takes ------------------

postfix_dir="$work/postfix"
postfix_port=$(free_port)
start_postfix() { start_holding_postfix "$postfix_dir" "$postfix_port" "$work"; }
stop_postfix() { stop_holding_postfix "$postfix_dir"; }
held() { held_by_postfix "$postfix_dir"; }

# run_postfix: one run; prints "rate=R held=N".
run_postfix() {
  local before start end
  before=$(held)
  start=$(now_s)
  smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f billing@acme.test -t customer@example.com \
    "127.0.0.1:$postfix_port"
  end=$(now_s)
  local taken=$(($(held) - before))
  [ "$taken" -eq "$MESSAGES" ] || { echo "postfix held $taken of $MESSAGES messages" >&2; exit 1; }
  python3 -c "print(f'rate={$MESSAGES / ($end - $start):.0f} held=$taken')"
}

# --- mailqueue: the api role on PostgreSQL and Redis -------------------------

mq_dir="$work/mailqueue"
mq_port=$(free_port)
submission_port=$(free_port)
start_mailqueue() {
  fresh_database mq_bench_submission
  start_redis
  mq_env=(DATABASE_URL="$(pg_url_for mq_bench_submission)" REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
    MAILQUEUE_SUBMISSION_LISTEN="127.0.0.1:$submission_port" MAILQUEUE_SUBMISSION_ALLOW_PLAINTEXT_AUTH=true
    MAILQUEUE_SUBMISSION_MAX_CONNECTIONS_PER_CLIENT=$((SESSIONS + 8)))
  mkdir -p "$mq_dir"
  env -i PATH="$PATH" "${mq_env[@]}" "$BIN" migrate >/dev/null
  mq_key=$(create_key "$mq_dir" "${mq_env[@]}")
  start_role "$mq_dir" api "$mq_port" "${mq_env[@]}"
  MQ_PID=$SERVER_PID
}
stored() { psql "$(pg_url_for mq_bench_submission)" -qAtc "SELECT count(*) FROM emails"; }

# run_mailqueue: one run; prints "rate=R stored=N".
run_mailqueue() {
  local before out
  before=$(stored)
  out=$("$LOAD" "127.0.0.1:$submission_port" "$mq_key" "$SESSIONS" "$MESSAGES" "$SIZE")
  local taken=$(($(stored) - before))
  [ "$taken" -eq "$MESSAGES" ] || { echo "mailqueue stored $taken of $MESSAGES messages" >&2; exit 1; }
  echo "rate=$(field rate "$out") stored=$taken"
}

start_postfix
start_mailqueue
trap 'stop_postfix; kill $MQ_PID $REDIS_PID 2>/dev/null || true' EXIT
log "warming up both (1000 messages each)"
# A variable set before a function's call holds for that call only.
MESSAGES=1000 run_postfix >/dev/null
MESSAGES=1000 run_mailqueue >/dev/null
postfix_rates=() mailqueue_rates=()
for round in $(seq 1 "$ROUNDS"); do
  order="postfix mailqueue"
  [ $((round % 2)) -eq 1 ] || order="mailqueue postfix"
  for side in $order; do
    log "round $round of $ROUNDS: $side, $MESSAGES messages over $SESSIONS sessions"
    result=$("run_$side")
    log "$side: $result"
    if [ "$side" = postfix ]; then postfix_rates+=("$(field rate "$result")"); else mailqueue_rates+=("$(field rate "$result")"); fi
  done
done

verdict=$(two_sides "$MAX_SPREAD" "${postfix_rates[*]}" "${mailqueue_rates[*]}")
record_rate postgres+redis "submitted/s over SMTP" "$(field mailqueue "$verdict")"
refused=$(grep -oP 'refused=\K\S+' <<<"$verdict")
if [ "$refused" = none ]; then
  result_line="**mailqueue / Postfix: $(field ratio "$verdict")×** (target ≥ 1.0×)."
else
  result_line="**Not reported: the runs of $refused disagree** (spread above $(pct "$MAX_SPREAD")); run again on a quieter machine."
fi
cat > "$RESULTS/submission.md" <<MD
### SMTP submission against Postfix's smtpd (\`bench/submission.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). Both servers, PostgreSQL, Redis and the clients share
the machine.

Command: \`MESSAGES=$MESSAGES SESSIONS=$SESSIONS SIZE=$SIZE ROUNDS=$ROUNDS bench/submission.sh\`

$MESSAGES messages of $SIZE bytes over $SESSIONS connections at once, each
connection sending its messages one after the other (every command waits
for its reply). Postfix 3.7's smtpd (a private instance) takes each message
into its queue, fsynced before its 250, and holds it (nothing is
delivered); it is fed by \`smtp-source -d\` from its \`mynetworks\`, without
AUTH. mailqueue (\`serve --role api\`, PostgreSQL and a private Redis)
answers 250 once the email is committed; it is fed by
\`crates/mailqueue-smtp-server/examples/submission_load.rs\`, which
authenticates once per connection (AUTH PLAIN) and sends the same
messages. One uncounted warm-up run of 1,000 messages each, then $ROUNDS
runs each in turn; messages per second, median; spread = (max − min) /
median (with five runs or more, of all but the fastest and slowest).

| Server | Runs (messages/s) | Median | Spread |
| --- | --- | ---: | ---: |
| Postfix smtpd, held in its queue | ${postfix_rates[*]} | $(field postfix "$verdict") | $(pct "$(field postfix_spread "$verdict")") |
| mailqueue submission, committed to PostgreSQL | ${mailqueue_rates[*]} | $(field mailqueue "$verdict") | $(pct "$(field mailqueue_spread "$verdict")") |

$result_line
MD
cat "$RESULTS/submission.md"
[ "$refused" = none ]
