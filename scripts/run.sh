#!/usr/bin/env bash
# Runs mailqueue on the embedded default (SQLite in ./data, in-process
# queue, API on 0.0.0.0:3000). On a fresh Debian 12 machine (as root) it
# first installs the build tools and Rust. Extra arguments go to `serve`'s
# environment as usual (MAILQUEUE_SMTP_URL=... scripts/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  for pkg in build-essential pkg-config curl ca-certificates; do
    dpkg -s "$pkg" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential pkg-config curl ca-certificates >/dev/null; break; }
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  export PATH="$HOME/.cargo/bin:$PATH"
fi
exec cargo run --release --locked --bin mailqueue -- serve
