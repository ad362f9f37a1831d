#!/usr/bin/env bash
# bench/http.sh [BINARY] - the HTTP front's figures for docs/PERFORMANCE.md:
#
#  1. GET /metrics scrape time with 10,000 connections open (sockit bench
#     --mode conns holds them; curl scrapes 20 times over loopback);
#  2. echo over the WebSocket at /ws next to echo over TCP, in one run on one
#     server (bench/ws_echo.c: 50 connections x 16 pipelined 64-byte echoes,
#     5 s each, alternated twice).
#
# Every process started here is stopped by its PID. Prints a small table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/sockit}
work=$(mktemp -d /tmp/sockit-http-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cc -O2 -Wall -o "$work/ws_echo" "$root/bench/ws_echo.c"

# plain sockets below: no TLS on the native listener where the server has it
plain=()
"$bin" serve --help | grep -q -- '--no-tls' && plain=(--no-tls)

"$bin" serve -l 127.0.0.1:0 --http 127.0.0.1:0 --no-auth "${plain[@]}" --threads 2 \
  --root "$work/root" --max-conns 20000 2>"$work/err" &
pids+=($!)
for _ in $(seq 200); do
  grep -q "(http)" "$work/err" && break
  sleep 0.05
done
tcp=$(grep -v '(http)' "$work/err" | sed -n 's/^sockit: listening on \([^ ]*\)$/\1/p' | head -1)
http=$(sed -n 's/^sockit: listening on \([^ ]*\) (http)$/\1/p' "$work/err" | head -1)
echo "server: native $tcp, http $http ($(nproc) CPUs, loops: 2)"

metric() { # the value of a sample line
  curl -s "http://$http/metrics" | awk -v k="$1" '$1 == k {print $2}'
}

# 1. /metrics with 10,000 connections open
"$bin" bench "$tcp" --mode conns --conns 10000 --hold 60 --no-auth "${plain[@]}" \
  >"$work/conns.out" 2>&1 &
pids+=($!)
key="sockit_connections_open{listener=\"$tcp\"}"
for _ in $(seq 600); do
  n=$(metric "$key")
  [[ ${n:-0} -ge 10000 ]] && break
  sleep 0.1
done
echo "connections open: $(metric "$key")"
times=()
for _ in $(seq 20); do
  times+=("$(curl -s -o "$work/metrics.txt" -w '%{time_total}' "http://$http/metrics")")
done
printf '%s\n' "${times[@]}" | sort -n >"$work/times"
echo "/metrics with 10,000 connections: $(wc -c <"$work/metrics.txt") bytes," \
  "median $(sed -n 10p "$work/times") s, max $(tail -1 "$work/times") s (20 scrapes, curl time_total)"
kill -TERM "${pids[1]}" 2>/dev/null || true
wait "${pids[1]}" 2>/dev/null || true
for _ in $(seq 300); do
  [[ $(metric "$key") == 0 ]] && break
  sleep 0.1
done

# 2. echo over TCP and over the WebSocket, the same server, alternated
for round in 1 2; do
  "$work/ws_echo" tcp "$tcp" 50 16 5
  "$work/ws_echo" ws "$http" 50 16 5
done
