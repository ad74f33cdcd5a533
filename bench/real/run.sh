#!/usr/bin/env bash
# The real-workload benchmark (first stage): the reference service on a real
# PostgreSQL under the open-loop load generator.
#
#   bench/real/run.sh --calibrate [--points 2x10@100,2x1@200] [--seconds 40] [--warmup 5] [--format json]
#
# --calibrate runs each point (replicas x pool size per replica @ requests per
# second) on real service processes and in the simulator with the same
# parameters, and prints sim_p50/p90/p99 against real_p50/p90/p99 and their
# ratios: JSON lines, then a table. PostgreSQL comes from tests/tools/install.sh
# (Debian's postgresql); it runs on loopback in a temporary folder.
# Not built yet: --scenario/--policy (kube-controller-manager, a node agent,
# the real HPA).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ "${1:-}" = "--calibrate" ] || usage
shift

nice -n 10 cargo build -q -p governor-bench-real --bins
exec "${CARGO_TARGET_DIR:-target}/debug/bench-calibrate" "$@"
