#!/usr/bin/env bash
# The full test command: installs what it needs, then formatting, lints, every test, the
# observability-as-code check and the Lambda packages.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

# Strict: a test that needs something from outside the repository (the conformance fixtures,
# moto, Chromium, the Python venv) fails instead of skipping. `PAYHOOK_STRICT_TESTS=0
# scripts/test.sh` lets them skip; they are listed at the end either way.
export PAYHOOK_STRICT_TESTS="${PAYHOOK_STRICT_TESTS:-1}"
# The same rule as payhook_testkit::skip::strict: unset, empty or 0 is lenient.
strict() { case "$PAYHOOK_STRICT_TESTS" in "" | 0) return 1 ;; esac; }
missing=()
need() { missing+=("$1"$'\n      '"$2"); }
check_needs() {
  [ ${#missing[@]} -eq 0 ] && return 0
  printf '\nmissing before the tests can run:\n'
  printf '  - %s\n' "${missing[@]}"
  if strict; then
    echo "(PAYHOOK_STRICT_TESTS=0 scripts/test.sh runs anyway, skipping the tests that need them)"
    exit 1
  fi
  missing=()
}

step "the shared conformance fixtures"
conformance="${PAYHOOK_CONFORMANCE_DIR:-../shared/conformance}"
if [ -d "$conformance" ]; then
  # Absolute, so every test (each runs in its own crate's directory) reads the same folder.
  PAYHOOK_CONFORMANCE_DIR="$(cd "$conformance" && pwd)"
  export PAYHOOK_CONFORMANCE_DIR
  echo "$PAYHOOK_CONFORMANCE_DIR"
else
  need "conformance fixtures: $conformance is not a directory" \
    "put the shared folder (with conformance/ in it) beside this repository, or set PAYHOOK_CONFORMANCE_DIR to a copy"
fi
check_needs

step "python tools (.venv: moto, pytest, Pulumi SDK, cargo-lambda)"
scripts/bootstrap-python.sh
export PATH="$PWD/.venv/bin:$PATH"
export PAYHOOK_MOTO_SERVER="${PAYHOOK_MOTO_SERVER:-$PWD/.venv/bin/moto_server}"
[ -x "$PAYHOOK_MOTO_SERVER" ] ||
  need "moto_server: $PAYHOOK_MOTO_SERVER is not an executable" \
    "scripts/bootstrap-python.sh installs it into .venv (from requirements-dev.txt), or set PAYHOOK_MOTO_SERVER"
.venv/bin/python -c 'import pytest, pulumi, pulumi_aws' 2>/dev/null ||
  need "the Python venv (.venv with pytest and the Pulumi SDK)" \
    "rm -rf .venv && scripts/bootstrap-python.sh"

step "headless Chromium for the dashboard page test"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] ||
  need "chromium (the dashboard page test drives it headless)" \
    "as root: apt-get install -y chromium (scripts/test.sh does this when run as root), or put a chromium on PATH"
check_needs

step "Rust target for the Lambda packages (arm64)"
rustup target add aarch64-unknown-linux-gnu

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "rust tests"
# Every skip is appended here (payhook_testkit::skip) and listed after the tests.
PAYHOOK_SKIP_LOG="$(mktemp)"
export PAYHOOK_SKIP_LOG
trap 'rm -f "$PAYHOOK_SKIP_LOG"' EXIT
tests_status=0
# The Lambda binaries too: the harness test runs them under a Runtime API stand-in.
cargo build --workspace --all-features --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast || tests_status=$?
  cargo test --workspace --all-features --doc || tests_status=$?
else
  cargo test --workspace --all-features --no-fail-fast || tests_status=$?
fi
skips=$(sort -u "$PAYHOOK_SKIP_LOG" | wc -l)
if [ "$skips" -gt 0 ]; then
  printf '\n%s test(s) lacked something from outside the repository:\n' "$skips"
  sort -u "$PAYHOOK_SKIP_LOG" | sed 's/\t/: /; s/^/  - /'
  if strict && [ "$tests_status" -eq 0 ]; then tests_status=1; fi
else
  echo "no test skipped"
fi
[ "$tests_status" -eq 0 ] || exit "$tests_status"

step "payhook check: dashboards, alarms, rules and runbooks against the metric catalogue"
cargo run --quiet -p payhook -- check

step "infrastructure tests (pytest, Pulumi mocks)"
.venv/bin/python -m pytest infra/tests -q

step "Lambda packages: cargo lambda build --release --arm64 --output-format zip"
cargo lambda build --release --arm64 --output-format zip \
  -p payhook-webhook-validator -p payhook-provider-processor -p payhook-event-processor \
  -p payhook-sweeper -p payhook-api-key-authorizer
for bin in webhook-validator provider-processor event-processor sweeper api-key-authorizer; do
  zip="${CARGO_TARGET_DIR:-target}/lambda/$bin/bootstrap.zip"
  test -s "$zip" || { echo "missing $zip"; exit 1; }
done

if [ "$skips" -gt 0 ]; then
  step "green, but $skips test(s) skipped (PAYHOOK_STRICT_TESTS=$PAYHOOK_STRICT_TESTS)"
else
  step "all green"
fi
