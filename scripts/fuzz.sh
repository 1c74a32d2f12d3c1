#!/usr/bin/env bash
# Fuzzes dala's parsers (the filter language, log entries as written and as a dataset opens
# them, hive paths) with cargo-fuzz and libFuzzer, each target for a bounded time:
# `scripts/fuzz.sh [SECONDS]` (default 60).
# Installs the pinned cargo-fuzz into .tools/ when missing. Runs on stable Rust: without a
# sanitizer, a failure is a panic (a broken assertion), a timeout or running out of memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
version=0.13.2
tools="$PWD/.tools"
if ! "$tools/bin/cargo-fuzz" --version 2>/dev/null | grep -qF "$version"; then
  cargo install cargo-fuzz --version "=$version" --locked --root "$tools"
fi
export PATH="$tools/bin:$PATH"
cd fuzz
targets=(filter_parser log_entry_parser snapshot_loader hive_path_parser)
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "fuzzing $target for ${seconds}s"
  log="corpus/$target.log"
  # New inputs go to corpus/ (ignored by git); seeds/ holds the committed starting points.
  status=0
  cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    > "$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -E -A12 'panicked|ERROR|SUMMARY' "$log" >&2 || tail -n 40 "$log" >&2
    echo "fuzz target $target failed (exit $status); its input is in fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
done
