#!/usr/bin/env bash
# bench/chat_redis.sh - chat fan-out on one server and on two servers that
# share the room through Redis (issue 18), in one run, plus redis-benchmark's
# XADD/XREAD figures as the line Redis itself draws (docs/PERFORMANCE.md).
#
#   bench/chat_redis.sh [SOCKIT] [OUT_DIR]
#
# Environment (defaults in brackets):
#   SOCKIT   [build-perf/sockit, else build/sockit]  the binary under test
#            (or the first argument, when it is an executable file)
#   MEMBERS  [100]    members of the one room (spread over the servers)
#   DUR      [10]     seconds per figure
#   WINDOW   [16]     messages the sender may have unanswered
#   RATES    [10000 100]  says per second for the paced latency figures
#            (x MEMBERS deliveries per second each)
#   THREADS2 [CPUs/2] --threads of each of the two servers, so that the two
#            together run as many loops as the one server (which runs one
#            per CPU); 0 is their default (one per CPU each); a list
#            ("1 0") runs the two-server figures once per setting
#   IDLE_ROOMS [0]    rooms the (last) server also holds, one quiet member
#            each, joined before each figure (the cost of rooms nobody
#            speaks in; the servers then exempt 127.0.0.0/8 from the
#            per-address room limit)
#   PORT     [18700]  first port; everything listens on 127.0.0.1 only
#
# Each figure's line says the load average before it and the CPU seconds
# each process used during it (the driver shares the machine). Every
# process is started here, tracked by PID and stopped by PID. Needs cc,
# redis-server and redis-benchmark (Debian redis-server, redis-tools).
set -u
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT_DIR/bench/lib.sh"
if [ $# -gt 0 ] && [ -f "$1" ] && [ -x "$1" ]; then
  SOCKIT=$1
  shift
fi
OUT=${1:-$(mktemp -d /tmp/sockit-chat-redis.XXXXXX)}
mkdir -p "$OUT"
SOCKIT=${SOCKIT:-$ROOT_DIR/build-perf/sockit}
[ -x "$SOCKIT" ] || SOCKIT=$ROOT_DIR/build/sockit
MEMBERS=${MEMBERS:-100}
DUR=${DUR:-10}
WINDOW=${WINDOW:-16}
RATES=${RATES:-${RATE:-10000 100}}
THREADS2=${THREADS2:-$(($(nproc) / 2 > 0 ? $(nproc) / 2 : 1))}
PORT=${PORT:-18700}
IDLE_ROOMS=${IDLE_ROOMS:-0}
export IDLE_ROOMS
EXEMPT=()
((IDLE_ROOMS > 0)) && EXEMPT=(--rate-limit-exempt 127.0.0.0/8)
RPORT=$PORT
P1=$((PORT + 1))
P2=$((PORT + 2))
PIDS=()
SERVERS=() # the sockit and redis processes whose CPU each figure reports

# every sockit and redis process started here, by PID (lib.sh's stop_pids)
stop_all() {
  stop_pids
  SERVERS=()
}
trap stop_all EXIT

# wait_port PORT: until something listens there (10 s)
wait_port() {
  local n=200
  while ((n-- > 0)); do
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
    sleep 0.05
  done
  echo "chat_redis.sh: nothing listens on port $1" >&2
  return 1
}

serve() { # serve PORT [ARGS...]
  local port=$1
  shift
  "$SOCKIT" serve --no-auth -l "127.0.0.1:$port" "${EXEMPT[@]}" "$@" >>"$OUT/servers.log" 2>&1 &
  PIDS+=($!)
  SERVERS+=("sockit:$port=$!")
  wait_port "$port"
}

# cpu_of PID: its user+system CPU seconds so far
cpu_of() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null ||
    echo 0
}

# cpu_all: "name=seconds ..." for every server process
cpu_all() {
  local s out=""
  for s in "${SERVERS[@]}"; do out+="${s%%=*}=$(cpu_of "${s#*=}") "; done
  echo "$out"
}

# fanout LABEL ADDRS [RATE]: paced runs get a deep window (the rate limits).
# Appends the load average before the run and each process's CPU seconds
# during it (driver= is the driver's user+system).
fanout() {
  local label=$1 addrs=$2 rate=${3:-0} window=$WINDOW line load before after s t
  ((rate > 0)) && window=4096
  load=$(cut -d' ' -f1 /proc/loadavg)
  before=$(cpu_all)
  line=$( { TIMEFORMAT='driver_cpu=%U+%S'; time "$OUT/chat_fanout" "$addrs" "$MEMBERS" "$DUR" \
    "$window" "$rate"; } 2>&1 | tr '\n' ' ')
  after=$(cpu_all)
  s=""
  for t in $after; do
    local name=${t%%=*} b
    b=$(echo "$before" | tr ' ' '\n' | grep "^$name=" | cut -d= -f2)
    s+="$name=$(awk -v a="${t#*=}" -v b="${b:-0}" 'BEGIN { printf "%.2f", a - b }') "
  done
  echo "$label rate=$rate window=$window idle_rooms=$IDLE_ROOMS load=$load $line cpu_s: $s" |
    tee -a "$OUT/results.txt"
}

# bench_redis ARGS...: one redis-benchmark figure (its last line, not the progress)
bench_redis() {
  redis-benchmark -p "$RPORT" -q "$@" 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -1
}

command -v redis-server >/dev/null || { echo "chat_redis.sh: needs redis-server" >&2; exit 2; }
cc -O2 -pthread "$ROOT_DIR/bench/chat_fanout.c" -o "$OUT/chat_fanout" || exit 2
: >"$OUT/results.txt"
echo "# sockit $("$SOCKIT" --version 2>/dev/null | head -1); $(nproc) CPUs; members $MEMBERS," \
  "64-byte messages, window $WINDOW, $DUR s each; $(date -u +%Y-%m-%dT%H:%MZ), load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/results.txt"

redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
  --logfile "$OUT/redis.log" &
PIDS+=($!)
wait_port "$RPORT" || exit 1

serve "$P1"
fanout "single-server" "127.0.0.1:$P1"
for rate in $RATES; do fanout "single-server" "127.0.0.1:$P1" "$rate"; done
stop_all

for t2 in $THREADS2; do
  stop_all # a fresh Redis and two fresh servers for each setting
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
    --logfile "$OUT/redis.log" &
  PIDS+=($!)
  SERVERS+=("redis=$!")
  wait_port "$RPORT" || exit 1
  threads=()
  label=two-servers-redis-threads=default
  if ((t2 > 0)); then
    threads=(--threads "$t2")
    label=two-servers-redis-threads=$t2
  fi
  serve "$P1" --chat-redis "redis://127.0.0.1:$RPORT" "${threads[@]}"
  serve "$P2" --chat-redis "redis://127.0.0.1:$RPORT" "${threads[@]}"
  sleep 0.5 # the Redis links come up
  fanout "$label" "127.0.0.1:$P1,127.0.0.1:$P2"
  for rate in $RATES; do fanout "$label" "127.0.0.1:$P1,127.0.0.1:$P2" "$rate"; done
done

if command -v redis-benchmark >/dev/null; then
  body=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') # 64 bytes of text
  redis-cli -p "$RPORT" DEL bench:s >/dev/null 2>&1
  bench_redis -n 100000 -c 1 XADD bench:s MAXLEN '~' 1000 '*' b "$body" |
    sed 's/^.*: /redis-benchmark XADD c=1: /' | tee -a "$OUT/results.txt"
  bench_redis -n 200000 -c 50 XADD bench:s MAXLEN '~' 1000 '*' b "$body" |
    sed 's/^.*: /redis-benchmark XADD c=50: /' | tee -a "$OUT/results.txt"
  bench_redis -n 50000 -c 50 XREAD COUNT 100 STREAMS bench:s 0 |
    sed 's/^.*: /redis-benchmark XREAD COUNT 100 c=50: /' | tee -a "$OUT/results.txt"
fi
stop_all
echo "# results in $OUT/results.txt"
