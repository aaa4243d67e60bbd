#!/usr/bin/env bash
# Runs every benchmark, then rewrites BENCHMARKS.md from their results.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/accept.sh
bench/deliver.sh
bench/backup.sh
bench/pitr.sh
bench/dispatch.sh
bench/fleet.sh
bench/requeue.sh
bench/webhooks.sh
bench/webhooks_steady.sh
bench/soak.sh
bench/history.sh
bench/submission.sh
bench/bounces.sh
bench/signing.sh
bench/report.sh
