#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine (as root) or a
# developer's box: installs what is missing, starts what is not running,
# then runs `cargo test`. Safe to run again.
#
# PostgreSQL: the server at 127.0.0.1:5432 (user postgres, trust auth) when
# it answers; otherwise a private cluster on port 55432 under
# target/test-postgres, started here. Python: a virtualenv under
# target/test-venv with aiosmtpd, aiosmtplib, the Resend SDK, the Standard
# Webhooks verifier, moto's S3 server, a GCS emulator, dnslib and dkimpy
# (tests-requirements.txt). Node.js: nodemailer, the Resend SDK and
# mailauth under target/test-node.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages that ship daemons (prometheus, the Pushgateway) must not start them.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
}

# Toolchain and system packages.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # Postfix runs only as the tests' private instances: no system mail setup.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt_install build-essential pkg-config curl ca-certificates openssl python3 python3-venv postgresql gnupg zstd \
    prometheus prometheus-pushgateway redis-server redis-tools tinyproxy swaks postfix libsasl2-modules
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    log "installing Rust (rustup)"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# PostgreSQL.
pg_answers() { psql "$1" -qAtc 'SELECT 1' >/dev/null 2>&1; }
if [ -z "${MAILQUEUE_TEST_POSTGRES_URL:-}" ]; then
  if pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
    export MAILQUEUE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    export MAILQUEUE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:55432/postgres"
    if ! pg_answers "$MAILQUEUE_TEST_POSTGRES_URL"; then
      bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
      data="$root/target/test-postgres"
      run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
      mkdir -p "$root/target"
      if [ ! -f "$data/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $data"
        mkdir -p "$data"
        [ "$(id -u)" = 0 ] && chown postgres "$data"
        run_pg "$bindir/initdb" -D "$data" -U postgres -A trust >/dev/null
      fi
      log "starting PostgreSQL on 127.0.0.1:55432"
      run_pg "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
        -o "-p 55432 -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    fi
  fi
fi
pg_answers "$MAILQUEUE_TEST_POSTGRES_URL" || { echo "PostgreSQL is not reachable at $MAILQUEUE_TEST_POSTGRES_URL" >&2; exit 1; }
log "PostgreSQL: $MAILQUEUE_TEST_POSTGRES_URL"

# Python test dependencies.
venv="$root/target/test-venv"
if [ ! -x "$venv/bin/python3" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python3" -c 'import aiosmtpd, aiosmtplib, resend, standardwebhooks, moto.server, gcp_storage_emulator, kubernetes_validate, dnslib, dkim, nacl' >/dev/null 2>&1; then
  log "installing the Python test packages"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests-requirements.txt
fi
export PATH="$venv/bin:$PATH"

# Node.js test dependencies: nodemailer (a client of the submission port),
# the official Resend SDK and mailauth (an independent DKIM verifier).
node_dir="$root/target/test-node"
if [ ! -f "$node_dir/node_modules/nodemailer/package.json" ] \
  || [ ! -f "$node_dir/node_modules/resend/package.json" ] \
  || [ ! -f "$node_dir/node_modules/mailauth/package.json" ]; then
  log "installing the Node.js test packages"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent \
    nodemailer@10.6.1 resend@6.38.0 mailauth@7.1.0
fi
export NODE_PATH="$node_dir/node_modules"

log "running the tests"
exec cargo test --workspace --locked "$@"
