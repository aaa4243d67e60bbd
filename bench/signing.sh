#!/usr/bin/env bash
# DKIM signing benchmark. Two parts, each against a baseline in the same run:
#
# 1. The CPU of one signature: mailqueue's signer (crates/mailqueue-dkim,
#    example sign_cost) over a 2 KiB message, against the cryptography's
#    own floor, `openssl speed rsa2048` and `openssl speed ed25519` on one
#    core. What mailqueue adds beyond the body hash (SHA-256 of the body,
#    measured beside it) is compared with openssl's sign time. Each side
#    runs ROUNDS times; a side whose runs differ by more than MAX_SPREAD is
#    refused.
# 2. Delivery with signing: a backlog of COUNT 2 KiB emails delivered into
#    Postfix's smtp-sink on the embedded store, from a sender without a
#    domain (unsigned), the same carrying a header as long as an Ed25519
#    DKIM-Signature (unsigned, padded: what the signature's bytes cost on
#    the wire, in the sink and in the kernel), and from a verified domain
#    with an Ed25519 key and with an RSA-2048 key, in interleaved rounds;
#    the domain's records are served by a local DNS server (dnslib) that
#    mailqueue checks them against, as an operator's DNS would.
#
# Writes bench/results/signing.md.
source "$(dirname "$0")/common.sh"
need smtp-sink openssl curl
build_release
SIGN_COST=$(build_example sign_cost mailqueue-dkim)
COUNT=${COUNT:-20000}
ROUNDS=${ROUNDS:-3}
MAX_SPREAD=${MAX_SPREAD:-0.2}
CONCURRENCY=${CONCURRENCY:-64}
PY=$ROOT/target/test-venv/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c 'import dnslib' 2>/dev/null || { echo "dnslib is needed (pip install dnslib)" >&2; exit 1; }
work=$(mktemp -d /tmp/mailqueue-bench-signing.XXXX)

# --- 1. the CPU of a signature ------------------------------------------
# openssl_sign_us ALG: microseconds per signature, openssl speed on one core.
openssl_sign_us() {
  openssl speed -seconds 3 "$1" 2>/dev/null |
    awk '/bits/ {print 1e6 / $(NF-1)}' | tail -n 1
}
declare -A runs
for _ in $(seq 1 "$ROUNDS"); do
  runs[openssl_rsa]+=" $(openssl_sign_us rsa2048)"
  runs[openssl_ed25519]+=" $(openssl_sign_us ed25519)"
  line=$("$SIGN_COST" 3)
  log "sign_cost: $line"
  runs[rsa]+=" $(field rsa_us "$line")"
  runs[ed25519]+=" $(field ed25519_us "$line")"
  runs[body_hash]+=" $(field body_hash_us "$line")"
  ED25519_BYTES=$(field ed25519_header_bytes "$line")
done
# best SPREAD "values": the lowest value (the least disturbed run), or
# refused= when the runs differ by more than SPREAD of it.
best() {
  python3 - "$1" "$2" <<'PY'
import sys
spread, values = float(sys.argv[1]), [float(v) for v in sys.argv[2].split()]
lo, hi = min(values), max(values)
print(f"value={lo:.2f} spread={(hi - lo) / lo:.3f} refused={int((hi - lo) / lo > spread)}")
PY
}
declare -A cost
refused_any=0
for k in openssl_rsa openssl_ed25519 rsa ed25519 body_hash; do
  cost[$k]=$(best "$MAX_SPREAD" "${runs[$k]}")
  [ "$(field refused "${cost[$k]}")" = 0 ] || { log "$k: runs disagree (${runs[$k]})"; refused_any=1; }
done
# added ALG: (mailqueue - body hash) / openssl, the target's ratio.
added() {
  python3 -c "print(f'{($(field value "${cost[$1]}") - $(field value "${cost[body_hash]}")) / $(field value "${cost[openssl_$1]}"):.2f}')"
}
cost_row() {
  local ratio
  ratio=$(added "$1")
  [ "$(field refused "${cost[$1]}")$(field refused "${cost[openssl_$1]}")" = 00 ] && ratio="$ratio×" ||
    ratio="refused (runs disagree)"
  echo "| $2 | $(field value "${cost[openssl_$1]}") µs | $(field value "${cost[$1]}") µs | $(field value "${cost[body_hash]}") µs | $ratio | ≤ 1.2× |"
}

# --- 2. delivery with signing --------------------------------------------
start_sink
dns_port=$(free_port)
zone="$work/zone.json"
echo '{}' > "$zone"
"$PY" "$ROOT/crates/mailqueue-testkit/python/dns_server.py" --zone "$zone" > "$work/dns.port" &
dns_pid=$!
trap 'kill $SINK_PID $dns_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$work/dns.port" ] && break; sleep 0.1; done
dns_port=$(head -n 1 "$work/dns.port")
sent_total() { curl -fs "http://127.0.0.1:$1/metrics" | awk '/^mailqueue_emails_sent_total/ {print $2}'; }
signed_total() { curl -fs "http://127.0.0.1:$1/metrics" | awk '/^mailqueue_emails_signed_total/ {print $2}'; }

# publish DOMAIN_JSON: adds the domain's records to the zone.
publish() {
  python3 - "$zone" "$1" <<'PY'
import json, sys
zone_file, domain = sys.argv[1], json.loads(sys.argv[2])
zone = json.load(open(zone_file))
for r in domain["records"]:
    name = f'{r["name"]}.{domain["name"]}.'.lower()
    entry = zone.setdefault(name, {}).setdefault(r["type"], [])
    entry.append([r["priority"], r["value"] + "."] if r["type"] == "MX" else r["value"])
json.dump(zone, open(zone_file + ".tmp", "w"))
import os; os.replace(zone_file + ".tmp", zone_file)
PY
}

# run_mode unsigned|padded|ed25519|rsa ROUND: delivers the backlog; prints rate=.
run_mode() {
  local mode=$1 dir="$work/$1-$2" port key api
  if [ "$mode" = padded ]; then export PAD_HEADER_BYTES=$ED25519_BYTES; else unset PAD_HEADER_BYTES; fi
  port=$(free_port)
  local env=(MAILQUEUE_SMTP_URL="smtp+plain://127.0.0.1:$sink_port" MAILQUEUE_WORKER_CONCURRENCY="$CONCURRENCY"
    MAILQUEUE_DNS_SERVERS="127.0.0.1:$dns_port" MAILQUEUE_BOUNCE_MX_HOST=mx.bench.test)
  mkdir -p "$dir"
  key=$(create_key "$dir" "${env[@]}")
  start_server "$dir" "$port" "${env[@]}"
  api="http://127.0.0.1:$port/v1"
  if [ "$mode" = ed25519 ] || [ "$mode" = rsa ]; then
    # The benchmark's sender is billing@acme.test.
    echo '{}' > "$zone"
    local domain id
    domain=$(curl -fs -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d "{\"name\": \"acme.test\", \"dkim_algorithm\": \"$mode\"}" "$api/domains")
    publish "$domain"
    id=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$domain")
    curl -fs -X POST -H "Authorization: Bearer $key" "$api/domains/$id/verify" >/dev/null
    domain_status() {
      curl -fs -H "Authorization: Bearer $key" "$api/domains/$id" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])'
    }
    for _ in $(seq 1 100); do
      [ "$(domain_status)" = verified ] && break
      sleep 0.2
    done
    [ "$(domain_status)" = verified ] || { echo "the domain did not verify" >&2; exit 1; }
  fi
  LOAD_WINDOW=${LOAD_WINDOW:-25} load_backlog "$mode" "$port" "$key" "$COUNT"
  local cpu0
  cpu0=$(cpu_of "$SERVER_PID")
  until [ "$(sent_total "$port")" = "$COUNT" ]; do sleep 0.5; done
  local signed cpu_ticks
  cpu_ticks=$(($(cpu_of "$SERVER_PID") - cpu0))
  signed=$(signed_total "$port")
  stop_server
  local last
  last=$(python3 -c "import sqlite3; print(sqlite3.connect('$dir/data/mailqueue.db').execute('SELECT max(sent_at) FROM emails').fetchone()[0] / 1000)")
  python3 -c "d = $last - $AT_EPOCH; print(f'rate={$COUNT / d:.0f} signed=${signed:-0} cpu_us={$cpu_ticks * 1e6 / $(getconf CLK_TCK) / $COUNT:.0f}')"
  rm -rf "$dir"
}

declare -A rates cpus
for round in $(seq 1 "$ROUNDS"); do
  for mode in unsigned padded ed25519 rsa; do
    result=$(run_mode "$mode" "$round")
    log "round $round, $mode: $result"
    if [ "$mode" = unsigned ] || [ "$mode" = padded ]; then
      [ "$(field signed "$result")" = 0 ] || { echo "unsigned mode signed mail" >&2; exit 1; }
    else
      [ "$(field signed "$result")" = "$COUNT" ] || { echo "$mode: $(field signed "$result") of $COUNT signed" >&2; exit 1; }
    fi
    rates[$mode]+=" $(field rate "$result")"
    cpus[$mode]+=" $(field cpu_us "$result")"
  done
done
# median SPREAD "values": the median and whether the runs disagree (with
# five runs or more, the fastest and the slowest are left out of the
# spread, as in two_sides).
median() {
  python3 - "$1" "$2" <<'PY'
import statistics, sys
spread, values = float(sys.argv[1]), sorted(float(v) for v in sys.argv[2].split())
m = statistics.median(values)
kept = values[1:-1] if len(values) >= 5 else values
s = (max(kept) - min(kept)) / m
print(f"value={m:.0f} spread={s:.3f} refused={int(s > spread)}")
PY
}
declare -A rate cpu
for mode in unsigned padded ed25519 rsa; do
  rate[$mode]=$(median "$MAX_SPREAD" "${rates[$mode]}")
  cpu[$mode]=$(median "$MAX_SPREAD" "${cpus[$mode]}")
  record_rate sqlite "delivered/s, $mode" "$(field value "${rate[$mode]}")"
done
CORES=$(nproc)
# ceiling ALG: the rate if each email cost, beyond an unsigned one, exactly
# openssl's sign time on one of the machine's cores, as a ratio of unsigned.
ceiling() {
  python3 -c "r = $(field value "${rate[unsigned]}"); f = $(field value "${cost[openssl_$1]}") / 1e6; print(f'{1 / (1 + f * r / $CORES):.2f}')"
}
# ceiling_with_bytes ALG: the rate if each email cost what the padded run
# (a signature's bytes, unsigned) cost, plus one signature at the cheapest
# known cost (openssl's sign time with the body hash, or mailqueue's own
# signer if lower), as a ratio of unsigned.
ceiling_with_bytes() {
  python3 -c "
u = $(field value "${rate[unsigned]}"); p = $(field value "${rate[padded]}")
c = min($(field value "${cost[openssl_$1]}") + $(field value "${cost[body_hash]}"), $(field value "${cost[$1]}")) / 1e6
print(f'{p / u / (1 + c * p / $CORES):.2f}')"
}
# cpu_cell MODE: mailqueue's CPU per email delivered (median), and what it
# adds to unsigned's.
cpu_cell() {
  local c u
  c=$(field value "${cpu[$1]}") u=$(field value "${cpu[unsigned]}")
  [ "$1" = unsigned ] && { echo "$c µs (${cpus[$1]# })"; return; }
  echo "$c µs (${cpus[$1]# }), +$((c - u)) µs"
}
rate_row() {
  local ratio with_bytes=""
  ratio=$(python3 -c "print(f'{$(field value "${rate[$1]}") / $(field value "${rate[unsigned]}"):.2f}')")
  [ "$(field refused "${rate[$1]}")$(field refused "${rate[unsigned]}")" = 00 ] && ratio="$ratio×" ||
    ratio="refused (runs disagree)"
  [ "$1" = ed25519 ] && with_bytes="$(ceiling_with_bytes "$1")×"
  echo "| $2 | $(field value "${rate[$1]}") | ${rates[$1]# } | $(pct "$(field spread "${rate[$1]}")") | $ratio | $(ceiling "$1")× | $with_bytes | $3 | $(cpu_cell "$1") |"
}

cat > "$RESULTS/signing.md" <<MD
### DKIM signing (\`bench/signing.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). Command: \`bench/signing.sh\` (ROUNDS=$ROUNDS, COUNT=$COUNT).

**The CPU of one signature**, on one core, best of $ROUNDS runs of 3 s (a
side whose runs differ by more than $(pct "$MAX_SPREAD") is refused).
mailqueue's signer signs a 2 KiB message as a worker does: relaxed
canonicalization of the headers and the body, the body hash, the signature,
the header written out. The floor is \`openssl speed\`'s sign time for the
same algorithm; the target is that what mailqueue adds beyond the body hash
stays within 1.2× of it.

| Algorithm | openssl speed (floor) | mailqueue's signer | of which the body hash (SHA-256) | (signer − body hash) / floor | Target |
| --- | ---: | ---: | ---: | ---: | ---: |
$(cost_row rsa "RSA-2048, SHA-256")
$(cost_row ed25519 "Ed25519-SHA256")

**Delivery with signing**: $COUNT emails of 2 KiB, accepted through
\`POST /v1/emails/batch\` with one \`scheduled_at\`, delivered by
\`mailqueue serve\` on the embedded store (\`MAILQUEUE_WORKER_CONCURRENCY=$CONCURRENCY\`)
into \`smtp-sink\`; time from the scheduled instant to the last \`sent_at\`.
The sender is on no domain (unsigned, the baseline) or on a domain
verified against a local DNS server, with an Ed25519 or an RSA-2048 key
(every message signed, checked in \`/metrics\`). $ROUNDS interleaved rounds;
the median of each, refused when a mode's runs (with five or more, all but
the fastest and the slowest) differ by more than $(pct "$MAX_SPREAD"). The ceiling is the rate the unsigned run allows if
each email cost exactly openssl's sign time more, spread over the
machine's $CORES cores: what signing at the floor could reach. A signature
also has bytes: the padded run sends the unsigned emails with an \`X-Pad\`
header line as long as an Ed25519 \`DKIM-Signature\` ($ED25519_BYTES bytes), and
the ceiling with the bytes is the padded rate less one signature at the
cheapest cost measured above (openssl's sign time plus the body hash, or
mailqueue's whole signer where that is lower), spread over the cores.
The last column is the CPU time of the \`mailqueue serve\` process from
the end of the load to the last delivery, per email: steadier than the
rate on a shared machine, it shows what signing costs in place, among
the deliveries, beside what one signature costs alone (the first table).

| Sender | Delivered/s (median) | Runs | Spread | vs unsigned | Ceiling at the floor | Ceiling with the signature's bytes | Target | mailqueue's CPU per email (runs) |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |
| no domain, unsigned (baseline) | $(field value "${rate[unsigned]}") | ${rates[unsigned]# } | $(pct "$(field spread "${rate[unsigned]}")") | 1.00× | | | | $(cpu_cell unsigned) |
| no domain, unsigned, with $ED25519_BYTES bytes of padding | $(field value "${rate[padded]}") | ${rates[padded]# } | $(pct "$(field spread "${rate[padded]}")") | $(python3 -c "print(f'{$(field value "${rate[padded]}") / $(field value "${rate[unsigned]}"):.2f}')")× | | | | $(cpu_cell padded) |
$(rate_row ed25519 "verified domain, Ed25519" "≥ 0.9×")
$(rate_row rsa "verified domain, RSA-2048" "reported")
MD
cat "$RESULTS/signing.md"
[ "$refused_any" = 0 ] || log "some signature costs were refused; run again on a quieter machine"
