#!/usr/bin/env bash
# Backup benchmark on a generated database of at least SIZE_MB (500) MB of
# emails with realistic bodies, in a private PostgreSQL cluster, side by
# side in one run:
#   - `pg-backup.sh -c zstd -e -u s3` against the shell pipeline
#     `pg_dump -Fc | gzip | gpg --encrypt` plus an upload of its file to the
#     same local S3 (moto), and against pgBackRest backing up the cluster;
#   - `mailqueue restore postgres` end to end against `pg_restore -j2` from a
#     local plain dump file;
#   - peak RSS of the backup at 1x and 4x the database size.
# Writes bench/results/backup.md.
source "$(dirname "$0")/common.sh"
need curl
for tool in pgbackrest moto_server; do
  command -v "$tool" >/dev/null 2>&1 || {
    log "installing $tool"
    case $tool in
      pgbackrest) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null ;;
      moto_server) pip install -q 'moto[server]==5.2.1' ;;
    esac
  }
done
build_release
SIZE_MB=${SIZE_MB:-500}
work=$(mktemp -d /tmp/mailqueue-bench-backup.XXXX)
chown postgres "$work"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_port=$(free_port)
data="$work/pgdata"
log "creating a private cluster on port $pg_port"
runuser -u postgres -- "$bindir/initdb" -D "$data" -U postgres -A trust >/dev/null
cat > "$work/pgbackrest.conf" <<CONF
[global]
repo1-path=$work/pgbackrest-repo
log-path=$work/pgbackrest-log
lock-path=$work/pgbackrest-lock
start-fast=y
[bench]
pg1-path=$data
pg1-port=$pg_port
pg1-socket-path=/tmp
CONF
chown postgres "$work/pgbackrest.conf"
runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$work/pg.log" -w -o \
  "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1 -c archive_mode=on -c wal_level=replica \
   -c archive_command='pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push %p' \
   -c shared_buffers=256MB -c max_wal_size=4GB" start >/dev/null
trap 'runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true' EXIT
url() { echo "postgres://postgres@127.0.0.1:$pg_port/$1"; }

fill() {
  local db=$1 copies=$2
  psql "$(url postgres)" -qc "CREATE DATABASE $db"
  env -i PATH="$PATH" DATABASE_URL="$(url "$db")" MAILQUEUE_LOG=warn "$BIN" migrate >/dev/null
  log "generating $((SIZE_MB * copies)) MB of emails in $db"
  psql "$(url "$db")" -q >/dev/null <<SQL
DO \$\$
DECLARE
  batch int := 20000;
  total int := ($SIZE_MB::bigint * $copies * 1024 * 1024 / 1400)::int;
  done int := 0;
  -- Bodies are windows of real English (the GPL's text, as Debian ships it).
  ws text[] := regexp_split_to_array(pg_read_file('/usr/share/common-licenses/GPL-3'), '\s+');
  o int;
BEGIN
  PERFORM setseed(0.42);
  WHILE done < total LOOP
    WITH ids AS (
      INSERT INTO emails (id, status, priority, message_id, created_at, updated_at, next_attempt_at, attempts)
      SELECT gen_random_uuid(), (ARRAY['sent','sent','sent','queued','failed'])[1 + (random() * 4)::int], 1,
             '<' || md5(random()::text) || '@acme.test>', now() - random() * interval '30 days', now(), now(), 1
      FROM generate_series(1, batch) RETURNING id)
    INSERT INTO email_contents (email_id, content)
    SELECT id, jsonb_build_object(
      'from', 'Acme <noreply@acme.test>', 'to', jsonb_build_array('user' || (random() * 1e6)::int || '@example.com'),
      'subject', 'Your order #' || (random() * 1e6)::int || ' has shipped',
      'text', 'Dear customer ' || (random() * 1e6)::int || E',\n\n'
              || array_to_string(ws[s.o:s.o + 159], ' ') || E'\n\nOrder ' || md5(random()::text))
    FROM ids, LATERAL (SELECT 1 + (random() * (cardinality(ws) - 200))::int AS o WHERE ids.id IS NOT NULL) s;
    done := done + batch;
  END LOOP;
END \$\$;
VACUUM ANALYZE;
SQL
  psql "$(url "$db")" -Atc "SELECT pg_database_size('$db') / 1048576"
}

# timed NAME CMD...: wall seconds and peak RSS (MB) of CMD, as "secs rss".
timed() {
  local name=$1
  shift
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
    echo "$name failed:" >&2
    tail -5 "$work/$name.err" >&2
    exit 1
  }
  awk '{printf "%s %.1f", $1, $2 / 1024}' "$work/$name.time"
}

db_mb=$(fill mqbench 1)
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key 'Bench <bench@mailqueue.test>' default default never 2>/dev/null
s3_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >/dev/null 2>&1 &
until curl -fs "http://127.0.0.1:$s3_port" >/dev/null; do sleep 0.2; done
curl -fs -X PUT "http://127.0.0.1:$s3_port/bench" >/dev/null

mq_env=(env -i PATH="$PATH" HOME="$HOME" GNUPGHOME="$GNUPGHOME" MAILQUEUE_LOG=warn
  DATABASE_URL="$(url mqbench)" GPG_RECIPIENT=bench@mailqueue.test
  MAILQUEUE_BACKUP_S3_URL=s3://bench/mq MAILQUEUE_BACKUP_LOCK_DIR="$work/locks"
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
  MAILQUEUE_BIN="$BIN")

log "mailqueue: pg-backup.sh -c zstd -e -u s3"
read -r mq_secs mq_rss <<<"$(timed mailqueue "${mq_env[@]}" "$ROOT/scripts/backup/pg-backup.sh" -c zstd -e -u s3)"
mq_size=$(grep -oP '\(\K[0-9]+(?= bytes)' "$work/mailqueue.out")

log "shell: pg_dump -Fc | gzip | gpg --encrypt, then upload"
read -r sh_secs _ <<<"$(timed shell bash -c "set -o pipefail; pg_dump -Fc '$(url mqbench)' | gzip | \
  gpg --batch --trust-model always --encrypt -r bench@mailqueue.test -o '$work/shell.dump.gz.gpg' && \
  curl -fs -T '$work/shell.dump.gz.gpg' 'http://127.0.0.1:$s3_port/bench/shell.dump.gz.gpg'")"
sh_size=$(stat -c %s "$work/shell.dump.gz.gpg")

log "pgBackRest: full backup of the cluster"
runuser -u postgres -- pgbackrest --config="$work/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
read -r br_secs _ <<<"$(timed pgbackrest runuser -u postgres -- pgbackrest --config="$work/pgbackrest.conf" \
  --stanza=bench --type=full backup)"
br_size=$(du -sb "$work/pgbackrest-repo/backup" | cut -f1)

# pgBackRest is done: restart without WAL archiving, so that archiving the
# WAL of one restore does not slow the next one down.
runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -m fast stop >/dev/null
runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$work/pg.log" -w -o \
  "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1 -c archive_mode=off -c shared_buffers=256MB -c max_wal_size=4GB" \
  start >/dev/null
log "restores (three rounds, order rotating, each after a CHECKPOINT; medians)"
pg_dump -Fc -Z0 -f "$work/plain.dump" "$(url mqbench)"
bin_env=("${mq_env[@]}")
unset 'bin_env[-1]' # MAILQUEUE_BIN is for the scripts only
fresh_target() {
  psql "$(url postgres)" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1" -qc "CHECKPOINT"
}
# The same backup, also kept in a local directory: restoring from there
# measures mailqueue's own pipeline; from moto it includes moto's speed.
"${bin_env[@]}" MAILQUEUE_BACKUP_DIR="$work/local-backups" "$BIN" backup postgres -c zstd -e -r 3650 >/dev/null
pr_all=()
ml_all=()
mr_all=()
restore_plain() {
  fresh_target r_plain
  read -r secs _ <<<"$(timed "pg_restore$1" pg_restore -j2 --no-owner -d "$(url r_plain)" "$work/plain.dump")"
  pr_all+=("$secs")
}
restore_local() {
  fresh_target r_local
  read -r secs _ <<<"$(timed "mq_local$1" "${bin_env[@]}" MAILQUEUE_BACKUP_DIR="$work/local-backups" "$BIN" \
    restore postgres latest --database r_local -j 2)"
  ml_all+=("$secs")
}
restore_s3() {
  fresh_target r_mq
  read -r secs _ <<<"$(timed "mq_restore$1" "${bin_env[@]}" "$BIN" restore postgres latest --database r_mq -s s3 -j 2)"
  mr_all+=("$secs")
}
restore_plain 1; restore_local 1; restore_s3 1
restore_local 2; restore_s3 2; restore_plain 2
restore_s3 3; restore_plain 3; restore_local 3
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
pr_secs=$(median "${pr_all[@]}")
ml_secs=$(median "${ml_all[@]}")
mr_secs=$(median "${mr_all[@]}")

log "4x the database"
db4_mb=$(SIZE_MB=$SIZE_MB fill mqbench4 4)
mq4_env=()
for e in "${mq_env[@]}"; do
  case $e in DATABASE_URL=*) mq4_env+=("DATABASE_URL=$(url mqbench4)") ;; *) mq4_env+=("$e") ;; esac
done
read -r mq4_secs mq4_rss <<<"$(timed mailqueue4 "${mq4_env[@]}" "$ROOT/scripts/backup/pg-backup.sh" -c zstd -e -u s3)"

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
cat > "$RESULTS/backup.md" <<MD
### Backup and restore (\`bench/backup.sh\`, $(date -u +%Y-%m-%d))

Machine: $(machine). A private PostgreSQL cluster (WAL archiving on, for pgBackRest), a
generated \`emails\` database of ${db_mb} MB (pg_database_size), moto as the local S3,
all on this machine.

| Backup | Wall time | Stored size | Speed-up vs shell | Peak RSS |
| --- | ---: | ---: | ---: | ---: |
| \`pg-backup.sh -c zstd -e -u s3\` (mailqueue) | ${mq_secs} s | ${mq_size} B | $(ratio "$sh_secs" "$mq_secs")× | ${mq_rss} MB |
| \`pg_dump -Fc \| gzip \| gpg --encrypt\` + upload | ${sh_secs} s | ${sh_size} B | 1.00× | |
| pgBackRest full backup (defaults; physical, whole cluster) | ${br_secs} s | ${br_size} B | $(ratio "$sh_secs" "$br_secs")× | |

Stored size, mailqueue / shell: **$(ratio "$mq_size" "$sh_size")×**.

| Restore (median of 3, order rotating, each after a CHECKPOINT) | Wall time | vs \`pg_restore -j2\` |
| --- | ---: | ---: |
| \`mailqueue restore postgres latest -j 2\` from the backup directory (read, checksum, decrypt, decompress, restore) | ${ml_secs} s (${ml_all[*]}) | $(ratio "$ml_secs" "$pr_secs")× |
| \`mailqueue restore postgres latest -s s3 -j 2\` from moto's S3 (the same, downloading from moto) | ${mr_secs} s (${mr_all[*]}) | $(ratio "$mr_secs" "$pr_secs")× |
| \`pg_restore -j2\` from a local plain dump file | ${pr_secs} s (${pr_all[*]}) | 1.00× |

| Backup peak RSS | Database | Peak RSS |
| --- | ---: | ---: |
| 1× | ${db_mb} MB | ${mq_rss} MB |
| 4× | ${db4_mb} MB | ${mq4_rss} MB (in ${mq4_secs} s) |
MD
cat "$RESULTS/backup.md"
