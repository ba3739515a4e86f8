#!/usr/bin/env bash
# The full test command: installs what it needs, then formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "python tools (.venv: moto, pytest, pulumi)"
scripts/bootstrap-python.sh
export PAYHOOK_MOTO_SERVER="$PWD/.venv/bin/moto_server"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
  cargo test --workspace --all-features --doc
else
  cargo test --workspace --all-features --no-fail-fast
fi

if [ -d infra/tests ]; then
  step "infrastructure tests (pytest, Pulumi mocks)"
  .venv/bin/python -m pytest infra/tests -q
fi

step "all green"
