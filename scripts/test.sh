#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/fetch-duckdb.sh
scripts/fetch-s3-server.sh
cargo test --workspace --all-features "$@"
# The engine suite once more where the machine's time zone is not UTC: a time without a zone
# is UTC to dala, whatever the machine's zone.
TZ=America/New_York cargo test --workspace --all-features --test engines
