#!/usr/bin/env bash
# Dashboard throughput against nginx serving the same rendered page as a static
# file, both on loopback, measured with wrk in the same run.
#   bash bench/dashboard.sh [SLOS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SLOS="${1:-1000}"
SECONDS_EACH="${2:-10}"

need() {
  command -v "$1" >/dev/null 2>&1 && return
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing $2 (Debian)" >&2
  $sudo apt-get install -y -qq "$2" >&2
}
need wrk wrk
need nginx nginx-light

cargo build -q --release -p governor-dashboard --example serve_sample
work="$(mktemp -d)"
cleanup() {
  [ -n "${dash_pid:-}" ] && kill "$dash_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dash_port="$(port)"
nginx_port="$(port)"

target/release/examples/serve_sample "127.0.0.1:$dash_port" "$SLOS" 2>"$work/dash.log" &
dash_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$dash_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
mkdir -p "$work/www"
curl -fsS "http://127.0.0.1:$dash_port/" -o "$work/www/index.html"

cat >"$work/nginx.conf" <<CONF
worker_processes auto;
daemon on;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { text/html html; }
  client_body_temp_path $work/tmp;
  proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp;
  scgi_temp_path $work/tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    index index.html;
  }
}
CONF
mkdir -p "$work/tmp"
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$nginx_port/" >/dev/null 2>&1 && break
  sleep 0.1
done

rps() { wrk -t2 -c32 -d"${SECONDS_EACH}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
bytes="$(wc -c <"$work/www/index.html")"
echo "page: $SLOS SLOs, 50 rows, $bytes bytes uncompressed"
# Alternate twice so drift on a shared machine hits both.
n1="$(rps "http://127.0.0.1:$nginx_port/")"
d1="$(rps "http://127.0.0.1:$dash_port/")"
n2="$(rps "http://127.0.0.1:$nginx_port/")"
d2="$(rps "http://127.0.0.1:$dash_port/")"
python3 - "$n1" "$n2" "$d1" "$d2" <<'PY'
import sys
n1, n2, d1, d2 = map(float, sys.argv[1:])
n, d = (n1 + n2) / 2, (d1 + d2) / 2
print(f"nginx (static file): {n:,.0f} req/s  ({n1:,.0f}, {n2:,.0f})")
print(f"governor dashboard:  {d:,.0f} req/s  ({d1:,.0f}, {d2:,.0f})")
print(f"ratio: {d / n:.2f} of nginx")
PY
