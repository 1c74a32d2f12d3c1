#!/usr/bin/env bash
# Installs the official prebuilt libduckdb.so (DuckDB 1.5.6) into .duckdb/lib,
# from the npm package that ships it, and checks it against a pinned sha256.
# Idempotent: does nothing when the library is already there and verified.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.duckdb/lib"
package="@duckdb/node-bindings-linux-x64@1.5.6-r.1"
sha256="3f4962cdd266eab2b479a5b5a4a6d063d279b2954ae814ed00385d553b747633"

verify() { echo "$sha256  $1" | sha256sum --check --status; }

if [[ -f "$dest/libduckdb.so" ]] && verify "$dest/libduckdb.so"; then
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-duckdb: npm is required (apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-duckdb: fetching $package" >&2
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/libduckdb.so
if ! verify "$work/package/libduckdb.so"; then
  echo "fetch-duckdb: checksum mismatch for libduckdb.so from $package" >&2
  exit 1
fi
mkdir -p "$dest"
mv "$work/package/libduckdb.so" "$dest/libduckdb.so.tmp"
mv "$dest/libduckdb.so.tmp" "$dest/libduckdb.so"
echo "fetch-duckdb: installed $dest/libduckdb.so" >&2
