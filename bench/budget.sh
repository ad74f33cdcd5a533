#!/usr/bin/env bash
# What the error budget costs Prometheus. Backfills, with promtool, what
# Governor's budget rule group records over a 30-day window for SLOS SLOs of
# OBJECTIVES objectives each (a bad and a total request rate per objective
# every 5 minutes: 8,640 samples a series), plus one SLO's raw counters of a
# 30-day window scraped every 15 s (172,800 samples a series); starts a real
# Prometheus on that data and evaluates, with stats=all (samples touched) and
# timings, every query the budget makes:
#   - each objective's budget rule (what the budget group evaluates every 5 min),
#   - a rate rule over 10 minutes of raw counters (two per objective),
#   - the operator's one query per observe cycle for every recorded budget,
#   - one direct query over 30 days of raw counters (an SLO without rules).
# The samples are written 0.1 s apart instead of 5 min and 15 s (promtool
# re-reads its input once per 2-hour block): the queries touch the same number
# of samples, over ranges shortened alike.
#   bash bench/budget.sh [SLOS] [OBJECTIVES]
set -euo pipefail
cd "$(dirname "$0")/.."
SLOS="${1:-50}"
OBJECTIVES="${2:-4}"
TOOLS="${GOVERNOR_TOOLS_BIN:-$(bash tests/tools/install.sh | tail -1)}"

work="$(mktemp -d)"
cleanup() {
  [ -n "${prom_pid:-}" ] && kill "$prom_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

end=$(( $(date +%s) / 3600 * 3600 - 3600 ))
python3 - "$SLOS" "$OBJECTIVES" "$end" >"$work/input.om" <<'EOF'
import sys
slos, objectives, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ids = ["latency-p50", "latency-p90", "latency-p99", "latency-p999", "latency-p95", "errors"][:objectives]
w = sys.stdout.write
def at(i, n):  # the i-th of n samples 0.1 s apart, the last at `end`
    return f"{end - (n - 1 - i) / 10:.1f}"
for name, scale in (("governor_slo:bad_events:rate", 0.004), ("governor_slo:events:rate", 1.0)):
    w(f"# TYPE {name} gauge\n")
    for s in range(slos):
        for o in ids:
            labels = f'{{namespace="bench",slo="slo-{s}",objective="{o}"}}'
            for i in range(8640):
                w(f"{name}{labels} {100 * scale + i % 7} {at(i, 8640)}\n")
w("# TYPE governor_slo:error_budget_remaining:ratio gauge\n")
for s in range(slos):
    for o in ids:
        labels = f'{{namespace="bench",slo="slo-{s}",objective="{o}"}}'
        for i in range(3):
            w(f"governor_slo:error_budget_remaining:ratio{labels} 0.6 {at(i, 3)}\n")
# One SLO's raw counters: 10 requests a second, 1 % slower than 100 ms, 0.1 % failing.
base = "http_server_request_duration_seconds"
series = [
    (f'{base}_count{{service="direct",http_response_status_code="200"}}', 149.85),
    (f'{base}_count{{service="direct",http_response_status_code="500"}}', 0.15),
    (f'{base}_bucket{{service="direct",http_response_status_code="200",le="0.1"}}', 148.5),
]
for labels, per_scrape in series:
    for i in range(172800):
        w(f"{labels} {per_scrape * i:.2f} {at(i, 172800)}\n")
w("# EOF\n")
EOF
echo "input: $(du -h "$work/input.om" | cut -f1) of OpenMetrics" >&2
"$TOOLS/promtool" tsdb create-blocks-from openmetrics -q "$work/input.om" "$work/data" >&2
rm "$work/input.om"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global: {evaluation_interval: 1m}\n' >"$work/prometheus.yml"
"$TOOLS/prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --storage.tsdb.retention.time=90d --web.listen-address="127.0.0.1:$port" \
  --log.level=warn 2>"$work/prometheus.log" &
prom_pid=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

python3 - "$port" "$SLOS" "$OBJECTIVES" "$end" <<'EOF'
import json, sys, urllib.parse, urllib.request
port, slos, objectives, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ids = ["latency-p50", "latency-p90", "latency-p99", "latency-p999", "latency-p95", "errors"][:objectives]

def query(q):
    body = urllib.parse.urlencode({"query": q, "time": end, "stats": "all"}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query", body) as r:
        a = json.load(r)
    assert a["status"] == "success" and a["data"]["result"], (q, a)
    s = a["data"]["stats"]
    return s["samples"]["totalQueryableSamples"], s["timings"]["evalTotalTime"]

# 30 days of 5-minute recordings, and of 15 s scrapes, at 0.1 s a sample.
WINDOW, RAW_WINDOW, RATE_RANGE = "864s", "17280s", "4s"

def budget(s, o):
    m = f'{{namespace="bench", slo="slo-{s}", objective="{o}"}}'
    return (f"1 - (sum_over_time(governor_slo:bad_events:rate{m}[{WINDOW}]) / "
            f"(sum_over_time(governor_slo:events:rate{m}[{WINDOW}]) > 0)) / 0.01")

for _ in range(2):  # the first pass warms the page cache
    samples = seconds = 0
    for s in range(slos):
        for o in ids:
            n, t = query(budget(s, o))
            samples, seconds = samples + n, seconds + t
per = slos * objectives
sel = '{service="direct"}'
rate_n, rate_t = query(f'sum(rate(http_server_request_duration_seconds_count{sel}[{RATE_RANGE}]))')
op_n, op_t = query('last_over_time(governor_slo:error_budget_remaining:ratio{namespace=~"bench"}[1s])')
count = f'sum(rate(http_server_request_duration_seconds_count{{service="direct"}}[{RAW_WINDOW}]))'
fast = f'sum(rate(http_server_request_duration_seconds_bucket{{service="direct", le="0.1"}}[{RAW_WINDOW}]))'
direct = (f'label_replace((1 - ({fast} / {count})) * ({count} > 0), "events", "bad", "", "") '
          f'or label_replace({count}, "events", "total", "", "")')
d_n, d_t = query(direct)
k = 1000 * objectives
print(f"{slos} SLOs x {objectives} objectives, 30-day window, budget group every 5 min:")
print(f"  budget rules: {per} evaluations, {samples:,} samples, {seconds:.3f} s "
      f"({samples / per:,.0f} samples and {seconds / per * 1000:.2f} ms each)")
print(f"  rate rule (10 min of raw counters, 2 per objective): {rate_n:,} samples, {rate_t * 1000:.2f} ms")
print(f"  operator's query per observe cycle ({per} recorded budgets): 1 query, {op_n:,} samples, {op_t * 1000:.2f} ms")
print(f"  direct query over 30 days of raw counters (one SLO, one objective): {d_n:,} samples, {d_t * 1000:.1f} ms")
print(f"At 1,000 SLOs x {objectives} objectives, every 5 minutes: {k} budget rules, "
      f"{samples / per * k / 1e6:.1f} M samples, {seconds / per * k:.1f} s of Prometheus time; "
      f"{2 * k} rate rules, {2 * k * rate_n / 1e6:.2f} M samples, {2 * k * rate_t:.2f} s")
EOF
