#!/usr/bin/env bash
# WAL archiving, base backup and point-in-time restore benchmark, with its
# baselines in the same run, on a private PostgreSQL cluster holding the
# pgbench database (scale SCALE, 40 by default: about 600 MB):
#   - the WAL rate `pgbench -c 8` produces on this machine;
#   - `mailqueue wal-push` latency per 16 MB segment of that WAL into moto's
#     S3 (p50, p99), and the sustained archive rate it implies, against
#     pgBackRest's `archive-push` (async off) of the same segments into the
#     same moto (through socat's TLS: pgBackRest's S3 driver requires TLS,
#     and moto's own TLS server ends connections without a TLS close);
#   - a base backup: `mailqueue backup postgres --physical` against
#     `pg_basebackup -Ft -z -D -` piped to the same directory, and against
#     pgBackRest's full backup (defaults, and tuned);
#   - PITR restore of the base backup plus PGBENCH_SECONDS (300) of pgbench
#     WAL, against restoring the base backup alone.
# Writes bench/results/pitr.md.
source "$(dirname "$0")/common.sh"
need curl
for tool in pgbackrest socat moto_server; do
  command -v "$tool" >/dev/null 2>&1 || {
    log "installing $tool"
    case $tool in
      pgbackrest | socat) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null ;;
      moto_server) pip install -q 'moto[server]==5.2.1' ;;
    esac
  }
done
build_release
SCALE=${SCALE:-40}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-300}
SEGMENTS=${SEGMENTS:-40}
work=$(mktemp -d /tmp/mailqueue-bench-pitr.XXXX)
chmod 755 "$work"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { runuser -u postgres -- "$@"; }
mkdir -p "$work/corpus" "$work/archive" "$work/locks" "$work/pgbb" "$work/pgbackrest-posix"
chown -R postgres "$work"

# One moto: plain HTTP for mailqueue, and behind socat's TLS for pgBackRest.
s3_port=$(free_port)
s3_tls_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
MOTO_PID=$!
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" -days 2 -subj /CN=127.0.0.1 2>/dev/null
cat "$work/tls.key" "$work/tls.crt" >"$work/tls.pem"
socat "OPENSSL-LISTEN:$s3_tls_port,bind=127.0.0.1,reuseaddr,fork,cert=$work/tls.pem,verify=0" "TCP:127.0.0.1:$s3_port" \
  >"$work/socat.log" 2>&1 &
MOTO_TLS_PID=$!
pg_port=$(free_port)
data="$work/pgdata"
cleanup() {
  as_pg "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  for d in "$work"/restored-*; do [ -d "$d" ] && as_pg "$bindir/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1; done
  kill "$MOTO_PID" "$MOTO_TLS_PID" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -s "http://127.0.0.1:$s3_port/" >/dev/null 2>&1 && curl -sk "https://127.0.0.1:$s3_tls_port/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -s -X PUT "http://127.0.0.1:$s3_port/wal" >/dev/null
curl -s -X PUT "http://127.0.0.1:$s3_port/pgbackrest" >/dev/null

# The environment of every mailqueue command: the directory destination,
# moto's S3, nothing else.
mq_env=(MAILQUEUE_BACKUP_DIR="$work/archive" MAILQUEUE_BACKUP_LOCK_DIR="$work/locks" MAILQUEUE_LOG=warn
  MAILQUEUE_BACKUP_S3_URL="s3://wal/bench" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port")
mq() { env -i PATH="$PATH" HOME=/tmp "${mq_env[@]}" "$BIN" "$@"; }

pb_conf() { # pb_conf FILE REPO-LINES...
  local file=$1
  shift
  {
    echo "[global]"
    printf '%s\n' "$@"
    echo "log-path=$work"
    echo "lock-path=$work/pgbackrest-lock"
    echo "start-fast=y"
    echo "archive-async=n"
    echo "[bench]"
    echo "pg1-path=$data"
    echo "pg1-port=$pg_port"
    echo "pg1-socket-path=$work"
  } >"$file"
  chown postgres "$file"
}
pb_conf "$work/pb-posix.conf" "repo1-path=$work/pgbackrest-posix"
pb_conf "$work/pb-s3.conf" repo1-type=s3 repo1-s3-bucket=pgbackrest repo1-s3-endpoint=127.0.0.1 \
  "repo1-storage-port=$s3_tls_port" repo1-s3-region=us-east-1 repo1-s3-key=testing repo1-s3-key-secret=testing \
  repo1-s3-uri-style=path repo1-storage-verify-tls=n repo1-path=/repo
pb_conf "$work/pb-tuned.conf" "repo1-path=$work/pgbackrest-tuned" process-max=2 compress-type=zst compress-level=3

log "creating a private cluster on port $pg_port"
as_pg "$bindir/initdb" -D "$data" -U postgres -A trust >/dev/null
# Archiving feeds everything the benchmark needs: a corpus of real
# segments, pgBackRest's repositories (its backups check archiving works),
# and mailqueue's directory archive (for its base backups and PITR).
archive_command="cp %p $work/corpus/%f && pgbackrest --config=$work/pb-posix.conf --stanza=bench archive-push %p \
 && pgbackrest --config=$work/pb-tuned.conf --stanza=bench archive-push %p \
 && env ${mq_env[*]} $BIN wal-push %p"
cat >>"$data/postgresql.conf" <<CONF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
wal_level = replica
archive_mode = on
archive_command = '$archive_command'
archive_timeout = 60
max_wal_senders = 4
shared_buffers = 256MB
max_wal_size = 4GB
CONF
as_pg "$bindir/pg_ctl" -D "$data" -l "$work/pg.log" -w start >/dev/null
url="postgres://postgres@127.0.0.1:$pg_port/postgres"
mq_env+=(DATABASE_URL="$url")
for conf in pb-posix pb-tuned pb-s3; do
  as_pg pgbackrest --config="$work/$conf.conf" --stanza=bench stanza-create >/dev/null
done

log "pgbench -i -s $SCALE"
pgbench -q -i -s "$SCALE" "$url" >/dev/null 2>&1
psql -qAt "$url" -c "CHECKPOINT" >/dev/null
db_bytes=$(psql -qAt "$url" -c "SELECT sum(pg_database_size(datname)) FROM pg_database")

# WAL rate of pgbench -c 8.
log "measuring the WAL rate of pgbench -c 8 (60 s)"
lsn0=$(psql -qAt "$url" -c "SELECT pg_current_wal_lsn()")
pgbench -c 8 -j 2 -T 60 "$url" >"$work/pgbench-rate.log" 2>&1
lsn1=$(psql -qAt "$url" -c "SELECT pg_current_wal_lsn()")
wal_rate_bytes=$(psql -qAt "$url" -c "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / 60)")
tps=$(awk '/^tps/ {printf "%.0f", $3; exit}' "$work/pgbench-rate.log")
psql -qAt "$url" -c "SELECT pg_switch_wal()" >/dev/null
wait_archived() {
  local target
  target=$(psql -qAt "$url" -c "SELECT pg_walfile_name(pg_current_wal_lsn()) FROM pg_switch_wal()")
  for _ in $(seq 1 6000); do
    [ "$(psql -qAt "$url" -c "SELECT coalesce(last_archived_wal, '') >= '$target' FROM pg_stat_archiver")" = t ] && return 0
    sleep 0.1
  done
  log "archiving did not catch up"
  exit 1
}
wait_archived

# wal-push latency into moto's S3, against pgBackRest archive-push.
mapfile -t segs < <(ls "$work/corpus" | grep -E '^[0-9A-F]{24}$' | sort | tail -n "$SEGMENTS")
log "timing ${#segs[@]} segments: mailqueue wal-push -u s3, pgbackrest archive-push"
now_ns() { date +%s%N; }
: >"$work/mq.times"
: >"$work/pb.times"
for seg in "${segs[@]}"; do
  t0=$(now_ns)
  mq wal-push -u s3 "$work/corpus/$seg"
  t1=$(now_ns)
  echo $(((t1 - t0) / 1000)) >>"$work/mq.times"
  t0=$(now_ns)
  as_pg pgbackrest --config="$work/pb-s3.conf" --stanza=bench archive-push "$work/corpus/$seg" >/dev/null
  t1=$(now_ns)
  echo $(((t1 - t0) / 1000)) >>"$work/pb.times"
done
stats() { # microseconds per line -> "p50 p99 mean" in ms
  sort -n "$1" | awk '{a[NR] = $1; s += $1} END {
    p50 = a[int((NR - 1) * 0.50) + 1]; p99 = a[int((NR - 1) * 0.99) + 1];
    printf "%.0f %.0f %.0f\n", p50 / 1000, p99 / 1000, s / NR / 1000 }'
}
read -r mq_p50 mq_p99 mq_mean < <(stats "$work/mq.times")
read -r pb_p50 pb_p99 pb_mean < <(stats "$work/pb.times")
seg_bytes=$((16 * 1024 * 1024))
mq_rate=$(awk -v b=$seg_bytes -v ms="$mq_mean" 'BEGIN {printf "%.0f", b / (ms / 1000)}')
pb_rate=$(awk -v b=$seg_bytes -v ms="$pb_mean" 'BEGIN {printf "%.0f", b / (ms / 1000)}')
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# Base backups, each to a directory on the same disk.
log "base backups"
psql -qAt "$url" -c "CHECKPOINT" >/dev/null
timed() { # timed LABEL CMD...: wall seconds into $work/LABEL.secs
  local label=$1 t0 t1
  shift
  t0=$(now_ns)
  "$@"
  t1=$(now_ns)
  awk -v d=$((t1 - t0)) 'BEGIN {printf "%.2f", d / 1e9}' >"$work/$label.secs"
}
timed mq_base mq backup postgres --physical --no-figures >/dev/null
timed mq_base_figures mq backup postgres --physical >/dev/null
timed pgbb bash -c "pg_basebackup -d '$url' -Ft -z -X none -c fast -D - > '$work/pgbb/base.tar.gz'"
timed pb_full as_pg pgbackrest --config="$work/pb-posix.conf" --stanza=bench backup --type=full
timed pb_tuned as_pg pgbackrest --config="$work/pb-tuned.conf" --stanza=bench backup --type=full
mq_base_bytes=$(mq backups list --json | python3 -c 'import json,sys; print([m for m in json.load(sys.stdin) if m["kind"]=="postgres_physical"][-1]["size_bytes"])')
pgbb_bytes=$(stat -c %s "$work/pgbb/base.tar.gz")
pb_bytes=$(du -sb "$work/pgbackrest-posix/backup" | cut -f1)
pb_tuned_bytes=$(du -sb "$work/pgbackrest-tuned/backup" | cut -f1)

# PGBENCH_SECONDS of WAL after the base backup, archived by wal-push alone
# as it goes (the baselines' repositories are done with).
psql -qAt "$url" -c "ALTER SYSTEM SET archive_command = 'env ${mq_env[*]} $BIN wal-push %p'" -c "SELECT pg_reload_conf()" >/dev/null
log "pgbench -c 8 for $PGBENCH_SECONDS s with archiving on"
lsn0=$(psql -qAt "$url" -c "SELECT pg_current_wal_lsn()")
pgbench -c 8 -j 2 -T "$PGBENCH_SECONDS" "$url" >"$work/pgbench-pitr.log" 2>&1
lsn1=$(psql -qAt "$url" -c "SELECT pg_current_wal_lsn()")
replay_bytes=$(psql -qAt "$url" -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
pending_at_end=$(psql -qAt "$url" -c "SELECT (('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 17, 8))::bit(32)::int
  - ('x' || substr(last_archived_wal, 17, 8))::bit(32)::int - 1) FROM pg_stat_archiver")
t0=$(now_ns)
wait_archived
catchup=$(awk -v d=$(($(now_ns) - t0)) 'BEGIN {printf "%.1f", d / 1e9}')

restore() { # restore LABEL [TARGET FLAGS...]
  local label=$1 dir="$work/restored-$1" port
  shift
  install -d -o postgres -m 700 "$dir"
  port=$(free_port)
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  timed "restore_$label" mq restore postgres --pitr --data-dir "$dir" --port "$port" --no-archive --start "$@" >/dev/null
  as_pg "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
  rm -rf "$dir"
}
# The floor: PostgreSQL replaying the same WAL from plain files with `cp`
# as its restore_command (no fetch, no check, no decompression). The WAL is
# unpacked beforehand, outside the timing.
plain="$work/plain-wal"
install -d -o postgres "$plain"
# Segments by the folder of their object (a folder emptied by WAL
# retention stays behind on a directory destination).
find "$work/archive/wal" -mindepth 3 -maxdepth 3 -type f -printf '%h\n' | xargs -n1 basename | sort -u | while read -r name; do
  mq wal-fetch "$name" "$plain/$name"
done
chown -R postgres "$plain"
restore_floor() {
  local dir="$work/restored-floor" port t0
  install -d -o postgres -m 700 "$dir"
  port=$(free_port)
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(now_ns)
  mq restore postgres --pitr --data-dir "$dir" --port "$port" --no-archive >/dev/null
  sed -i "s|^restore_command = .*|restore_command = 'cp $plain/%f %p'|" "$dir/postgresql.auto.conf"
  as_pg "$bindir/pg_ctl" -D "$dir" -l "$work/floor.log" -W start >/dev/null
  # Done once recovery has ended (the unpacked pg_control already reads
  # "in production", as the source cluster was running when copied).
  until [ "$(as_pg psql -h 127.0.0.1 -p "$port" -d postgres -qAtc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
    sleep 0.05
  done
  awk -v d=$(($(now_ns) - t0)) 'BEGIN {printf "%.2f", d / 1e9}' >"$work/restore_floor.secs"
  as_pg "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
  rm -rf "$dir"
}
log "PITR restores"
restore base --target-immediate
restore latest
restore_floor

s_mq=$(cat "$work/mq_base.secs"); s_mqf=$(cat "$work/mq_base_figures.secs"); s_bb=$(cat "$work/pgbb.secs")
s_pb=$(cat "$work/pb_full.secs"); s_pbt=$(cat "$work/pb_tuned.secs")
r_base=$(cat "$work/restore_base.secs"); r_latest=$(cat "$work/restore_latest.secs")
r_floor=$(cat "$work/restore_floor.secs")
if awk -v a="$r_floor" -v b="$r_base" 'BEGIN {exit !(a > 2 * b)}'; then
  floor_note="The floor itself takes $(ratio "$r_floor" "$r_base")× the base alone: here the WAL since the base
($(mb "$replay_bytes") MiB) outweighs the database, and PostgreSQL replays it in one process, so no archive
tool reaches the ≤ 2× target on this workload; what the tool controls is its distance from the floor."
else
  floor_note="The floor stays within 2× of the base alone, so the rest of the gap is the fetch path's."
fi
floor_replay_rate=$(awk -v b="$replay_bytes" -v a="$r_floor" -v c="$r_base" 'BEGIN {printf "%.0f", (a > c ? b / (a - c) : 0)}')
base_rate=$(awk -v b="$db_bytes" -v s="$r_base" 'BEGIN {printf "%.0f", b / s}')
replay_secs=$(awk -v a="$r_latest" -v b="$r_base" 'BEGIN {printf "%.2f", a - b}')
replay_rate=$(awk -v b="$replay_bytes" -v s="$replay_secs" 'BEGIN {printf "%.0f", (s > 0 ? b / s : 0)}')
# The largest database whose restore fits 30 minutes: the base at the
# measured restore rate, after replaying the WAL since the base backup at
# the measured replay rate.
fits() { # fits WAL_BYTES
  awk -v w="$1" -v rr="$replay_rate" -v br="$base_rate" 'BEGIN { t = 1800 - (rr > 0 ? w / rr : 0);
    if (t <= 0) print "none"; else printf "%.0f GB", t * br / 1e9 }'
}
hour_wal=$((wal_rate_bytes * 3600))
day_wal=$((wal_rate_bytes * 86400))

cat >"$RESULTS/pitr.md" <<MD
### Point-in-time recovery (\`bench/pitr.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). A private PostgreSQL $(basename "$(dirname "$bindir")") cluster holding the pgbench
database at scale $SCALE ($(mb "$db_bytes") MiB, all databases), moto as the local S3 (HTTP for
mailqueue; for pgBackRest, whose S3 driver requires TLS, through socat's TLS in front of it), pgBackRest $(pgbackrest version | awk '{print $2}'),
all on this machine. WAL-G is not measured: it is not packaged in Debian 12, and its Go sources
are not in the package registries this machine reaches (Debian's Go is 1.19).

**WAL rate.** \`pgbench -c 8 -j 2 -T 60\`: $tps transactions/s, **$(mb "$wal_rate_bytes") MiB/s of WAL**.

| Archiving one 16 MiB segment (${#segs[@]} real pgbench segments, into moto's S3) | p50 | p99 | mean | Sustained rate (serial) | vs the WAL rate |
| --- | ---: | ---: | ---: | ---: | ---: |
| \`mailqueue wal-push -u s3 %p\` (zstd 1, one process per segment) | $mq_p50 ms | $mq_p99 ms | $mq_mean ms | $(mb "$mq_rate") MiB/s | $(ratio "$mq_rate" "$wal_rate_bytes")× |
| \`pgbackrest archive-push %p\` (async off, defaults) | $pb_p50 ms | $pb_p99 ms | $pb_mean ms | $(mb "$pb_rate") MiB/s | $(ratio "$pb_rate" "$wal_rate_bytes")× |

Targets: p99 ≤ 1000 ms, and at least 3× the WAL rate. During the $PGBENCH_SECONDS s pgbench run below,
\`wal-push\` archiving to the directory as PostgreSQL went ended $pending_at_end segment(s) behind the segment
being written, and had caught up $catchup s after pgbench stopped.

| Base backup of the database above (to a directory on the same disk) | Wall time | Stored | vs mailqueue |
| --- | ---: | ---: | ---: |
| \`mailqueue backup postgres --physical --no-figures\` (zstd 3, streamed, manifest last) | $s_mq s | $(mb "$mq_base_bytes") MiB | 1.00× |
| \`mailqueue backup postgres --physical\` (plus the drill's figures: a full read of every table) | $s_mqf s | | $(ratio "$s_mqf" "$s_mq")× |
| \`pg_basebackup -Ft -z -X none -c fast -D - > base.tar.gz\` | $s_bb s | $(mb "$pgbb_bytes") MiB | $(ratio "$s_bb" "$s_mq")× |
| pgBackRest full backup (defaults: gz 6, one process) | $s_pb s | $(mb "$pb_bytes") MiB | $(ratio "$s_pb" "$s_mq")× |
| pgBackRest full backup (zst 3, process-max 2) | $s_pbt s | $(mb "$pb_tuned_bytes") MiB | $(ratio "$s_pbt" "$s_mq")× |

| Restore with \`restore postgres --pitr --start\` (page cache dropped first) | Wall time | vs base alone |
| --- | ---: | ---: |
| The base backup alone (\`--target-immediate\`: stop once consistent) | $r_base s | 1.00× |
| The base backup + $PGBENCH_SECONDS s of pgbench WAL ($(mb "$replay_bytes") MiB, to the end of the archive) | $r_latest s | $(ratio "$r_latest" "$r_base")× |
| Floor: the same base + WAL, PostgreSQL reading the WAL as plain files (\`restore_command = 'cp …'\`) | $r_floor s | $(ratio "$r_floor" "$r_base")× |

Target: ≤ 2×. Measured rates: the base restores at $(mb "$base_rate") MiB/s of database and WAL replays
(fetched, checked and decompressed one segment per \`wal-fetch\`) at $(mb "$replay_rate") MiB/s, against
$(mb "$floor_replay_rate") MiB/s for PostgreSQL alone reading plain files: mailqueue's restore takes
$(ratio "$r_latest" "$r_floor")× the floor's time. $floor_note
The largest database whose restore fits the 30-minute RTO on this machine is therefore
**$(fits "$replay_bytes")** with $PGBENCH_SECONDS s of such WAL since its base backup. The WAL since the last base
backup counts as much as the database: at the full pgbench rate above, kept up all day, an hour
of WAL ($(mb "$hour_wal") MiB) leaves room for $(fits "$hour_wal"), a day of it ($(mb "$day_wal") MiB) for $(fits "$day_wal").
A write rate that high calls for base backups more often than daily.
MD
log "wrote $RESULTS/pitr.md"
cat "$RESULTS/pitr.md"
