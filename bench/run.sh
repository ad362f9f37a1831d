#!/usr/bin/env bash
# bench/run.sh - every figure of issue 8's target list, sockit beside its
# peers, in one run, measured with both `sockit bench` and the reference
# kit's independent `loadgen`; prints the kit's summary table and the
# target check (bench/targets.py).
#
#   bench/run.sh [OUT_DIR]          # results in OUT_DIR (default: a new /tmp dir)
#
# Environment (defaults in brackets):
#   SOCKIT      [build-perf/sockit, else build/sockit]  the binary under test
#   KIT         [/work/shared/bench]   the reference kit (copied and built in OUT_DIR)
#   DUR         [3]      seconds measured per echo figure (plus 1 s warm-up)
#   FILE_MB     [1024]   size of the put/get file, made in /dev/shm
#   CONNS       [10000]  held connections; CONNS_BIG [50000] as well, fd limit raised
#   PORT        [18300]  first port; every server listens on 127.0.0.1 only
#
# Each server is started fresh for each figure and stopped by its PID. The
# result lines are "LABEL FIGURE key=value ...": LABEL is the server
# (sockit, epoll, seed, redis), with "~bench" appended when `sockit bench`
# measured it instead of loadgen. Needs: cc, python3, taskset; redis-server
# and redis-benchmark are used when installed.
set -u
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d /tmp/sockit-bench.XXXXXX)}
mkdir -p "$OUT"
SOCKIT=${SOCKIT:-$ROOT_DIR/build-perf/sockit}
[ -x "$SOCKIT" ] || SOCKIT=$ROOT_DIR/build/sockit
KIT=${KIT:-/work/shared/bench}
DUR=${DUR:-3}
FILE_MB=${FILE_MB:-1024}
CONNS=${CONNS:-10000}
CONNS_BIG=${CONNS_BIG:-50000}
PORT=${PORT:-18300}
ADDR=127.0.0.1:$PORT
RES=$OUT/results.txt
PIDS=()

. "$ROOT_DIR/bench/lib.sh"

[ -x "$SOCKIT" ] || { echo "run.sh: no sockit binary (build it, or set SOCKIT)" >&2; exit 2; }
setup_kit "$KIT" "$OUT/kit" || exit 1
LOADGEN=$OUT/kit/loadgen
EPOLL=$OUT/kit/peers/epoll_echo
SEED=$OUT/kit/peers/seed_server.py
KEY=$OUT/key
FROOT=/dev/shm/sockit-bench-root-$$
SRC=/dev/shm/sockit-bench-src-$$.bin
"$SOCKIT" keygen -o "$KEY" >/dev/null 2>&1 || { echo "run.sh: keygen failed" >&2; exit 1; }
trap 'stop_all; rm -rf "$FROOT" "$SRC"' EXIT
trap 'exit 130' INT TERM
raise_fd_limit $((CONNS_BIG + 1000))
: >"$RES"
note "run $(date -u +%FT%TZ) host=$(hostname) cpus=$(nproc) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
note "kernel $(uname -r); loadavg $(cut -d' ' -f1-3 /proc/loadavg); sockit $("$SOCKIT" --version)"

# ---- servers -----------------------------------------------------------------
# loadgen speaks plain sockit/1 only, so sockit serves --no-tls here and
# `sockit bench` is told so (TLS against plain is bench/tls.sh's figure).
serve_sockit() { start_server "$1" "$SOCKIT" serve -l "$ADDR" --no-tls --key-file "$KEY" --root "$FROOT" "${@:2}"; }
serve_epoll() { start_server "$1" "$EPOLL" -l "$ADDR" --root "$FROOT"; }
serve_seed() { start_server "$1" python3 "$SEED" --listen "$ADDR" --root "$FROOT"; }
serve_redis() {
  start_server "$1" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no
}
auth_for() { if [ "$1" = sockit ]; then echo "--key-file $KEY"; else echo "--no-auth"; fi; }

# ---- echo figures ------------------------------------------------------------
# echo_figure FIG CONNS PIPELINE PIN(0/1) TARGET...
echo_figure() {
  local fig=$1 c=$2 p=$3 pin=$4 t pfx=
  shift 4
  [ "$pin" = 1 ] && pfx="taskset -c 0"
  for t in "$@"; do
    if [ "$t" = redis ]; then redis_figure "$fig" "$c" "$p" "$pin"; continue; fi
    "serve_$t" "$pin" || { note "$t $fig: server did not start"; continue; }
    # shellcheck disable=SC2046
    record "$t" "$fig" $pfx "$LOADGEN" --addr "$ADDR" $(auth_for "$t") --mode echo --conns "$c" \
      --pipeline "$p" --size 64 --duration "$DUR" --warmup 1
    [ "$t" = seed ] || record_json "$t~bench" "$fig" $pfx "$SOCKIT" bench "$ADDR" --no-tls $(auth_for "$t") \
      --mode echo --conns "$c" --pipeline "$p" --size 64 --duration "$DUR" --warmup 1 --json
    stop_all
  done
}

redis_figure() {
  local fig=$1 c=$2 p=$3 pin=$4 n pfx=
  command -v redis-benchmark >/dev/null || { note "redis $fig: redis-benchmark not installed"; return; }
  [ "$pin" = 1 ] && pfx="taskset -c 0"
  n=$(( (p > 1 ? 1500000 : c > 1 ? 120000 : 80000) * DUR ))
  serve_redis "$pin" || { note "redis $fig: server did not start"; return; }
  $pfx redis-benchmark -h 127.0.0.1 -p "$PORT" -t ping_mbulk -c "$c" -P "$p" -n "$n" --csv \
    2>/dev/null | python3 "$ROOT_DIR/bench/targets.py" --redis-csv redis "$fig" >>"$RES"
  stop_all
}

# ---- put / get -----------------------------------------------------------------
put_figures() {
  dd if=/dev/urandom of="$SRC" bs=1M count="$FILE_MB" status=none
  prefault
  serve_epoll 0 && record epoll put "$LOADGEN" --addr "$ADDR" --no-auth --mode put --file "$SRC" \
    --name bench-put.bin
  stop_all
  local h
  for h in fastest sha256; do
    local hopt=() lg=()
    [ "$h" = sha256 ] && hopt=(--hash sha256) && lg=(--hash)
    prefault
    serve_sockit 0 && record "sockit" "put_$h" "$LOADGEN" --addr "$ADDR" --key-file "$KEY" \
      --mode put --file "$SRC" --name bench-put.bin "${lg[@]}"
    stop_all
    prefault
    serve_sockit 0 && record_json "sockit~bench" "put_$h" "$SOCKIT" bench "$ADDR" --no-tls --key-file "$KEY" \
      --mode put --file "$SRC" "${hopt[@]}" --json
    stop_all
    prefault
    serve_sockit 0 && record_json "sockit~bench" "get_$h" "$SOCKIT" bench "$ADDR" --no-tls \
      --key-file "$KEY" --mode get --file "$SRC" "${hopt[@]}" --json
    stop_all
  done
  # wall clock, as the transfers are timed; and CPU time, for the CPU per GiB
  openssl speed -elapsed -seconds 3 -bytes 1048576 -evp sha256 2>/dev/null |
    python3 "$ROOT_DIR/bench/targets.py" --openssl openssl put_sha256 >>"$RES"
  openssl speed -seconds 3 -bytes 1048576 -evp sha256 2>/dev/null |
    python3 "$ROOT_DIR/bench/targets.py" --openssl openssl put_sha256_cpu >>"$RES"
  rm -f "$SRC"
}

# ---- held connections ------------------------------------------------------------
conns_figure() {
  local n=$1 t
  for t in sockit epoll; do
    if [ "$n" -le 28000 ]; then
      "serve_$t" 0 && record "$t" "conns$n" "$LOADGEN" --addr "$ADDR" $(auth_for "$t") \
        --mode conns --conns "$n" --hold 3 --server-pid "${PIDS[-1]}"
      stop_all
    fi
    "serve_$t" 0 && record_json "$t~bench" "conns$n" "$SOCKIT" bench "$ADDR" --no-tls $(auth_for "$t") \
      --mode conns --conns "$n" --hold 3 --server-pid "${PIDS[-1]}" --json
    stop_all
  done
}

# ---- chat fan-out (figure 6) -----------------------------------------------------
# 100 members in one room, one of them saying 64-byte messages: as fast as
# its window of 16 allows, and at a fixed 2000 messages/s (200,000
# deliveries/s) for latency without coordinated omission.
chat_figures() {
  local fig rate
  for fig in chat100 chat100@2k; do
    rate=()
    [ "$fig" = chat100@2k ] && rate=(--rate 2000)
    serve_sockit 0 && record_json "sockit~bench" "$fig" "$SOCKIT" bench "$ADDR" --no-tls --key-file "$KEY" \
      --mode chat --conns 100 --senders 1 --size 64 --duration "$DUR" --warmup 1 "${rate[@]}" --json
    stop_all
  done
}

# bench/round2.sh sources this file for the set-up and the figures above
# shellcheck disable=SC2317
[ -n "${RUN_SH_LIB:-}" ] && return 0

echo "run.sh: results in $OUT" >&2
echo_figure echo64_c50_p16 50 16 0 sockit epoll seed redis
echo_figure echo64_c50_p1 50 1 0 sockit epoll redis
echo_figure echo64_c1_p1@cpu0 1 1 1 sockit epoll redis
put_figures
conns_figure "$CONNS"
if [ "$(ulimit -n)" -gt "$((CONNS_BIG + 100))" ]; then
  conns_figure "$CONNS_BIG"
else
  note "conns$CONNS_BIG: skipped, the fd limit is $(ulimit -n) and could not be raised here"
fi
chat_figures
python3 "$OUT/kit/summarize.py" --ref epoll "$RES" | tee "$OUT/summary.md"
echo
python3 "$ROOT_DIR/bench/targets.py" "$RES" | tee -a "$OUT/summary.md"
