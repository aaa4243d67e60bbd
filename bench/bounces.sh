#!/usr/bin/env bash
# Bounce intake: DSNs parsed and applied per second by the bounce domain's
# MX. `mailqueue serve` on PostgreSQL with a bounce domain holds
# ROUNDS x REPORTS (5 x 10000) emails, one recipient each (scheduled for
# the next day, so that no delivery runs meanwhile); the report_load
# example then sends one Postfix-style `Action: failed` DSN per email to
# its return address over SESSIONS (8) connections at once, each message
# waiting for its 250. Every 250 is a report applied: an `email.bounced`
# event and a suppression, committed. Baseline in the same run: Postfix's
# smtpd taking the same DSNs into its queue and holding them (nothing
# parsed, nothing applied), fed by `smtp-source -d` at the same
# concurrency. Rounds alternate (postfix, mailqueue, mailqueue, postfix,
# ...); a side whose runs spread more than MAX_SPREAD (0.15) is refused and
# the script exits non-zero once the table is written. Target: at least
# 1,000 reports/s. Writes bench/results/bounces.md.
source "$(dirname "$0")/common.sh"
need smtp-source postfix
build_release
REPORTS=${REPORTS:-10000}
SESSIONS=${SESSIONS:-8}
ROUNDS=${ROUNDS:-5}
MAX_SPREAD=${MAX_SPREAD:-0.15}
DOMAIN=bounces.acme.test
SECRET=bench-secret-of-the-bounce-domain
work=$(mktemp -d /tmp/mailqueue-bench-bounces.XXXX)
chmod 755 "$work"
LOAD=$(build_example report_load)

postfix_dir="$work/postfix"
postfix_port=$(free_port)
mq_dir="$work/mailqueue"
mq_port=$(free_port)
mx_port=$(free_port)
fresh_database mq_bench_bounces
mq_env=(DATABASE_URL="$(pg_url_for mq_bench_bounces)" MAILQUEUE_BOUNCE_DOMAIN="$DOMAIN"
  MAILQUEUE_BOUNCE_SECRET="$SECRET" MAILQUEUE_INBOUND_LISTEN="127.0.0.1:$mx_port"
  MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:9" MAILQUEUE_INBOUND_MESSAGES_PER_MINUTE=100000000)
mkdir -p "$mq_dir"
env -i PATH="$PATH" "${mq_env[@]}" "$BIN" migrate >/dev/null
mq_key=$(create_key "$mq_dir" "${mq_env[@]}")
start_server "$mq_dir" "$mq_port" "${mq_env[@]}"
MQ_PID=$SERVER_PID
start_holding_postfix "$postfix_dir" "$postfix_port" "$work"
trap 'stop_holding_postfix "$postfix_dir"; kill $MQ_PID 2>/dev/null || true' EXIT

# The emails the reports are about: one batch request per 100, scheduled
# for the next day; "ID RECIPIENT" a line, one file per round.
log "storing $((ROUNDS * REPORTS)) emails"
python3 - "http://127.0.0.1:$mq_port" "$mq_key" "$((ROUNDS * REPORTS))" "$REPORTS" "$work" <<'PY'
import http.client, json, sys, urllib.parse, datetime
base, key, total, per_round, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port)
later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
jobs = []
for start in range(0, total, 100):
    batch = [{"from": "billing@acme.test", "to": [f"r{i}@example.com"], "subject": "Your invoice",
              "text": "Thanks.", "scheduled_at": later} for i in range(start, min(start + 100, total))]
    conn.request("POST", "/v1/emails/batch", json.dumps(batch),
                 {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    answer = conn.getresponse()
    body = json.loads(answer.read())
    assert answer.status in (200, 202), body
    jobs.extend(f"{e['id']} r{start + n}@example.com" for n, e in enumerate(body["data"]))
for r in range(total // per_round):
    with open(f"{work}/round{r + 1}.jobs", "w") as f:
        f.write("\n".join(jobs[r * per_round:(r + 1) * per_round]) + "\n")
PY

bounced() { metric "$mq_port" 'mailqueue_inbound_reports_total{kind="bounce"}'; }

# run_mailqueue ROUND: the round's DSNs to mailqueue's MX; prints "rate=R".
run_mailqueue() {
  local before out
  before=$(bounced)
  out=$("$LOAD" "127.0.0.1:$mx_port" "$DOMAIN" "$SECRET" "$work/round$1.jobs" "$SESSIONS")
  local applied=$(($(bounced) - ${before:-0}))
  [ "$applied" -eq "$REPORTS" ] || { echo "mailqueue applied $applied of $REPORTS reports" >&2; exit 1; }
  echo "rate=$(field rate "$out")"
}

# run_postfix: as many DSN-sized messages into Postfix's hold queue.
run_postfix() {
  local before start end
  before=$(held_by_postfix "$postfix_dir")
  start=$(now_s)
  smtp-source -d -s "$SESSIONS" -m "$REPORTS" -l 1100 -f "mailer-daemon@relay.test" -t "b-x@$DOMAIN" \
    "127.0.0.1:$postfix_port"
  end=$(now_s)
  local taken=$(($(held_by_postfix "$postfix_dir") - before))
  [ "$taken" -eq "$REPORTS" ] || { echo "postfix held $taken of $REPORTS messages" >&2; exit 1; }
  python3 -c "print(f'rate={$REPORTS / ($end - $start):.0f}')"
}

postfix_rates=() mailqueue_rates=()
for round in $(seq 1 "$ROUNDS"); do
  order="postfix mailqueue"
  [ $((round % 2)) -eq 1 ] || order="mailqueue postfix"
  for side in $order; do
    log "round $round of $ROUNDS: $side, $REPORTS reports over $SESSIONS sessions"
    if [ "$side" = postfix ]; then
      result=$(run_postfix)
      postfix_rates+=("$(field rate "$result")")
    else
      result=$(run_mailqueue "$round")
      mailqueue_rates+=("$(field rate "$result")")
    fi
    log "$side: $result"
  done
done
suppressed=$(psql "$(pg_url_for mq_bench_bounces)" -qAtc "SELECT count(*) FROM suppressions WHERE origin = 'bounce'")
[ "$suppressed" -eq "$((ROUNDS * REPORTS))" ] || { echo "$suppressed suppressions, not $((ROUNDS * REPORTS))" >&2; exit 1; }

verdict=$(two_sides "$MAX_SPREAD" "${postfix_rates[*]}" "${mailqueue_rates[*]}")
record_rate postgres "reports applied/s" "$(field mailqueue "$verdict")"
refused=$(grep -oP 'refused=\K\S+' <<<"$verdict")
rate=$(field mailqueue "$verdict")
if [ "$refused" != none ]; then
  result_line="**Not reported: the runs of $refused disagree** (spread above $(pct "$MAX_SPREAD")); run again on a quieter machine."
elif python3 -c "import sys; sys.exit(0 if $rate >= 1000 else 1)"; then
  result_line="**$rate reports applied per second: target met** (≥ 1,000/s); $(field ratio "$verdict")× Postfix's rate of taking the same messages into its queue."
else
  result_line="**$rate reports applied per second: target missed** (≥ 1,000/s); $(field ratio "$verdict")× Postfix's rate of taking the same messages into its queue."
fi
cat > "$RESULTS/bounces.md" <<MD
### Bounce intake (\`bench/bounces.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). The server, PostgreSQL, Postfix and the clients share
the machine.

Command: \`REPORTS=$REPORTS SESSIONS=$SESSIONS ROUNDS=$ROUNDS bench/bounces.sh\`

Each run sends $REPORTS DSNs of about 1.1 KB (Postfix's layout, \`Action:
failed\`, status 5.1.1) over $SESSIONS connections at once, one message after
the other on each. mailqueue (\`serve\`, PostgreSQL) answers 250 once the
report is parsed and applied: an \`email.bounced\` event and a suppression
committed for an email among $((ROUNDS * REPORTS)) stored (one recipient
each, a fresh email per report), fed by
\`crates/mailqueue-smtp-server/examples/report_load.rs\`. The baseline is
Postfix 3.7's smtpd taking as many messages of the same size into its queue
(fsynced) and holding them, fed by \`smtp-source -d\`. Rounds in turn;
reports per second, median; spread = (max − min) / median (with five
runs or more, of all but the fastest and slowest).

| Server | Runs (messages/s) | Median | Spread |
| --- | --- | ---: | ---: |
| Postfix smtpd, held in its queue | ${postfix_rates[*]} | $(field postfix "$verdict") | $(pct "$(field postfix_spread "$verdict")") |
| mailqueue's MX, parsed and applied | ${mailqueue_rates[*]} | $(field mailqueue "$verdict") | $(pct "$(field mailqueue_spread "$verdict")") |

$result_line
MD
cat "$RESULTS/bounces.md"
[ "$refused" = none ]
