#!/usr/bin/env bash
# Creates (or refreshes) the project-local Python virtualenv at <repo>/.venv with the pinned
# packages of tests/emulator/requirements.txt, for the API emulator and the end-to-end tests.
# Idempotent: a second run with unchanged requirements does nothing. Prints the venv path.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$repo/.venv"
req="$repo/tests/emulator/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
