#!/usr/bin/env bash
# Runs every test of Governor, after installing the real servers the integration
# tests need (tests/tools/install.sh; cached in ~/.cache/governor-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
echo "==> installing test tools (cached after the first run)"
GOVERNOR_TOOLS_BIN="$(bash tests/tools/install.sh | tail -n 1)"
export GOVERNOR_TOOLS_BIN
echo "==> tools in $GOVERNOR_TOOLS_BIN ($((SECONDS - started)) s)"

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> governor crdgen --check (committed CRD matches the types)"
cargo run --quiet --locked -p governor -- crdgen --check

echo "==> cargo test"
cargo test --workspace --locked -- --nocapture 2>&1 | tee "${TMPDIR:-/tmp}/governor-test.log"
echo "==> all tests passed in $((SECONDS - started)) s"
