#!/usr/bin/env bash
# Cost against quality: Governor, the oracle and every HPA setting swept
# (hpa-cpu:30 to 90 by 10, hpa-latency:0.5 to 1 by 0.1) on every built-in
# scenario; writes one chart per scenario to docs/pareto/<scenario>.svg and
# prints the figures and the Pareto table (the HPA settings at least as good as
# Governor on both replica-minutes and minutes with P99 over target).
#   bash bench/pareto.sh [SEEDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q -p governor -- simulate --sweep \
  --seeds "${1:-5}" --threads "${2:-2}" --svg docs/pareto
