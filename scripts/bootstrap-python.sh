#!/usr/bin/env bash
# Creates .venv with moto (AWS APIs for the adapter tests), pytest and the Pulumi SDK
# (infrastructure tests). Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.payhook-requirements
want=$(cat requirements-dev.txt infra/requirements.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  if [ -f infra/requirements.txt ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements.txt
  fi
  echo "$want" > "$stamp"
fi
