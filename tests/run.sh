#!/usr/bin/env bash
# Runs every test of Governor, after installing the real servers the integration
# tests need (tests/tools/install.sh; cached in ~/.cache/governor-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
# A one-shot build (CI, a fresh clone) gains nothing from incremental
# artefacts, which take tens of GB for this workspace's test binaries.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi
echo "==> installing test tools (cached after the first run)"
GOVERNOR_TOOLS_BIN="$(bash tests/tools/install.sh | tail -n 1)"
export GOVERNOR_TOOLS_BIN
echo "==> tools in $GOVERNOR_TOOLS_BIN ($((SECONDS - started)) s)"

# mold links the test binaries several times faster than the default linker.
if command -v mold >/dev/null; then
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C link-arg=-fuse-ld=mold"
fi

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> governor crdgen --check (committed CRD matches the types)"
cargo run --quiet --locked -p governor -- crdgen --check

echo "==> cargo test"
log="${TMPDIR:-/tmp}/governor-test.log"
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "==> %d passed, %d failed, %d skipped\n", p, f, s; printf "tests: %d passed, %d failed\n", p, f }' "$log"
if [ "$status" -ne 0 ]; then
  echo "==> tests FAILED after $((SECONDS - started)) s (log: $log)"
  exit "$status"
fi
echo "==> all tests passed in $((SECONDS - started)) s"
