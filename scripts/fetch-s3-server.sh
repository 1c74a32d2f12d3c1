#!/usr/bin/env bash
# Installs the S3-protocol server that the tests start on 127.0.0.1 (moto's server, from
# PyPI, at the versions pinned in s3-server-requirements.txt) into .s3-server/venv.
# Idempotent: does nothing when the pinned set is already installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.s3-server/venv"
requirements="$root/scripts/s3-server-requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "fetch-s3-server: python3 is required" >&2; exit 1; }
echo "fetch-s3-server: installing moto's S3 server into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$stamp"
