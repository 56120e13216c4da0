#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target for FUZZ_SECONDS (default 60) each, growing a scratch
# corpus seeded from fuzz/corpus/<target>. Crashers land in build-fuzz/crashes/; copy the ones
# worth keeping into fuzz/corpus/<target>/ so every test build replays them.
set -euo pipefail
build=${1:-build-fuzz}; secs=${2:-60}
cd "$(dirname "$0")/.."
mkdir -p "$build/crashes"
for t in fuzz_record fuzz_index fuzz_manifest fuzz_http fuzz_tree fuzz_s3 fuzz_config fuzz_fleet; do
  work="$build/corpus/$t"; mkdir -p "$work"
  echo "== $t for ${secs}s"
  "$build/fuzz/$t" -max_total_time="$secs" -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
    "$work" "fuzz/corpus/$t" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|crash' || true
done
