#!/usr/bin/env bash
# Runs every benchmark and rewrites BENCHMARKS.md from their results.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/accept.sh
bench/deliver.sh
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`bench/run.sh\` (each section by the script it names). Numbers"
  echo "are from one run on the machine stated; the baselines ran in the same run."
  echo
  cat bench/results/accept.md
  echo
  cat bench/results/deliver.md
} > BENCHMARKS.md
cat BENCHMARKS.md
